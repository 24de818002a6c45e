"""The box side of a bundle: ``sh install [--prefix /opt/edgecnn] [--no-service] [--user U] [--trust KEY.pub]``.

Standard library only, and shipped inside every bundle (``installer/installer.py`` beside ``releases.py`` and
``ed25519.py``): it runs on a bare ``python3`` with ``venv``, with no network. Steps, each a fault point
(``EDGECNN_FAULT_POINT=install:<step>``, the protocol of :func:`edgecnn.fileio.fault_point`, copied here since this
file cannot import edgecnn):

1. ``verified``: the Python and machine match the bundle's target; ``MANIFEST.json``'s signature verifies against
   ``--trust KEY.pub`` (Ed25519, :mod:`ed25519`); every file's SHA-256 and size match and no file is unlisted.
2. ``copied``: ``PREFIX/releases/<id>/`` made (free space checked first) and the model files copied in.
3. ``venv`` and ``wheels``: a venv from the box's ``python3``, then the bundled wheels only (``pip --no-index``,
   pip's configuration files and environment ignored).
4. ``selfchecked``: the on-box self-check in that venv (:mod:`edgecnn.deploy.selfcheck`: the export parity gate
   against ``golden.npz`` on this box's runtime, and a short benchmark).
5. ``status``: ``status.json`` written (the release is complete); on a failed check the venv is removed, ``current``
   is untouched, one line says why, exit 1.
6. ``previous-linked``, ``switched``: ``previous`` then ``current`` switched atomically (:func:`releases.switch`).
7. ``service``: the unit installed and restarted, unless ``--no-service``. ``PREFIX/state`` (a bundled station's
   state folder, kept across releases) is made before the switch and owned by the service's account.

A kill at any step leaves ``current`` on a complete, checked release (or absent on a first install); running the
same command again resumes (an installed venv is reused) or cleans up what the killed run left.

Size (~400 lines): the whole box side of an install in one file that a bare ``python3`` runs (verification, the
build, the self-check call, the switch), since it cannot import edgecnn; releases and Ed25519 live beside it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__:
    from . import ed25519, releases
else:  # run as a script from an unpacked bundle: the modules beside this file
    import ed25519  # type: ignore[no-redef]
    import releases  # type: ignore[no-redef]

MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
BUNDLE_SCHEMA = "edgecnn.bundle/1"
STAGE = ".stage.json"
#: What the box copies into a release: everything but the wheels (installed into the venv) and the installer.
NOT_COPIED = ("wheels/", "installer/", "install")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9@+=:,./_-]+$")
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
#: The unit writer's default account (edgecnn.devices.DEFAULT_SERVICE_USER), made by install when missing.
DEFAULT_SERVICE_USER = "edgecnn"


class InstallError(releases.ReleaseError):
    """The bundle cannot be installed here (bad signature, changed file, wrong box, failed self-check, full disk)."""


def fault_point(name: str) -> None:
    """``EDGECNN_FAULT_POINT=name`` kills this process here (the protocol of :func:`edgecnn.fileio.fault_point`)."""
    if os.environ.get("EDGECNN_FAULT_POINT") != name:
        return
    import signal

    sig = getattr(signal, "SIG" + os.environ.get("EDGECNN_FAULT_SIGNAL", "KILL").upper())
    os.kill(os.getpid(), sig)
    time.sleep(5)


def say(msg: str) -> None:
    print(f"edgecnn install: {msg}", flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------- 1. verify
def load_manifest(bundle: Path) -> tuple[dict[str, Any], bytes]:
    path = bundle / MANIFEST
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise InstallError(f"Expected an unpacked edgecnn bundle with {MANIFEST} at {bundle}; cannot read it ({exc}). "
                           "Unpack the whole .tar.gz and run its install script.") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != BUNDLE_SCHEMA:
        got = manifest.get("schema") if isinstance(manifest, dict) else type(manifest).__name__
        raise InstallError(f"{path} is not an edgecnn bundle manifest: expected schema {BUNDLE_SCHEMA!r}, received {got!r}.")
    return manifest, raw


def verify_signature(bundle: Path, raw_manifest: bytes, trust: Path | None) -> str:
    """Check ``MANIFEST.sig`` against ``trust``; returns what was checked, in words."""
    sig_path = bundle / SIGNATURE
    if trust is None:
        return "signature not checked (no --trust)" if sig_path.exists() else "unsigned"
    try:
        key = ed25519.public_key_from_pem(trust.read_bytes())
    except OSError as exc:
        raise InstallError(f"Cannot read the trusted key --trust {trust}: {exc.strerror or exc}.") from None
    except ed25519.BadSignature as exc:
        raise InstallError(f"--trust {trust}: {exc}; give the .pub file written by `edgecnn bundle --new-key`.") from None
    if not sig_path.is_file():
        raise InstallError(f"The bundle is not signed ({SIGNATURE} missing) but --trust {trust.name} was given: "
                           "refusing it. Build it with `edgecnn bundle ... --sign KEY`.")
    try:
        signature = base64.b64decode(sig_path.read_text(encoding="ascii").strip(), validate=True)
        ed25519.verify(key, raw_manifest, signature)
    except (ValueError, ed25519.BadSignature) as exc:
        raise InstallError(f"Signature check failed: {SIGNATURE} does not verify with {trust.name} ({exc}); "
                           "this bundle was not signed by that key or was changed after signing. Refusing it.") from None
    return f"signature verified with {trust.name}"


def verify_files(bundle: Path, manifest: dict[str, Any]) -> int:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise InstallError(f"{MANIFEST} lists no files; the bundle is damaged. Build it again.")
    for rel, entry in sorted(files.items()):
        path = bundle / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise InstallError(f"{MANIFEST} names a path outside the bundle ({rel!r}); refusing it.")
        if not path.is_file():
            raise InstallError(f"The bundle lacks {rel}, which {MANIFEST} lists; unpack the whole .tar.gz again.")
        if path.stat().st_size != entry.get("size") or sha256_file(path) != entry.get("sha256"):
            raise InstallError(f"{rel} does not match {MANIFEST} (SHA-256 differs): the file was changed or damaged "
                               "after the bundle was built. Refusing it; get the bundle again.")
    listed = set(files) | {MANIFEST, SIGNATURE}
    extra = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and str(p.relative_to(bundle)) not in listed)
    if extra:
        raise InstallError(f"The bundle holds files {MANIFEST} does not list ({', '.join(extra[:3])}); refusing it. "
                           "Unpack the .tar.gz into an empty folder.")
    return len(files)


def check_box(manifest: dict[str, Any]) -> None:
    target = manifest.get("target") or {}
    want_py = str(target.get("python", ""))
    have_py = ".".join(map(str, sys.version_info[:2]))
    if want_py and want_py != have_py:
        raise InstallError(f"This bundle is for Python {want_py} ({target.get('name')}); this box's python3 is "
                           f"{have_py}. Build one for it: edgecnn bundle ... --target {target.get('name')} --python {have_py}.")
    want_m, have_m = str(target.get("machine", "")), platform.machine()
    aliases = {"arm64": "aarch64", "amd64": "x86_64"}
    if want_m and aliases.get(have_m.lower(), have_m.lower()) != want_m:
        raise InstallError(f"This bundle is for {want_m} ({target.get('name')}); this box is {have_m}. "
                           "Build a bundle for this box's target.")


# ---------------------------------------------------------------------- 2-5. build and check the release
def clean_env() -> dict[str, str]:
    """The environment of the venv's commands: no PYTHONPATH/PYTHONHOME, no pip configuration or index."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON")) or k in ("PYTHONUNBUFFERED",)}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONNOUSERSITE="1")
    return env


def run(cmd: list[str], what: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=clean_env(), timeout=timeout)
    if res.returncode:
        text = (res.stderr or res.stdout).strip()
        if "No space left" in text:
            raise OSError(errno.ENOSPC, "No space left on device", what)
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise InstallError(f"{what} failed: {last[0].strip()[:400]}")
    return res


def needed_bytes(bundle: Path, manifest: dict[str, Any]) -> int:
    """Free space the release needs: the model files, and ~3× the wheels once unpacked into the venv."""
    files = manifest["files"]
    wheels = sum(e["size"] for rel, e in files.items() if rel.startswith("wheels/"))
    other = sum(e["size"] for rel, e in files.items() if not rel.startswith(("wheels/", "installer/")))
    return 3 * wheels + other + 32 * 1024 * 1024


def check_space(prefix: Path, need: int) -> None:
    probe = prefix
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise InstallError(f"Not enough free space at {prefix}: the release needs about {need / 1e6:.0f} MB, "
                           f"{free / 1e6:.0f} MB free. Nothing was changed; free space (edgecnn station releases "
                           f"--prefix {prefix} --keep 2 prunes old releases) and run this again.")


def copy_payload(bundle: Path, manifest: dict[str, Any], dest: Path) -> None:
    for rel in sorted(manifest["files"]):
        if rel.startswith(NOT_COPIED):
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(bundle / rel, out)
    for name in (MANIFEST, SIGNATURE):
        if (bundle / name).is_file():
            shutil.copy2(bundle / name, dest / name)


def build_venv(bundle: Path, manifest: dict[str, Any], rel_dir: Path) -> None:
    venv = rel_dir / "venv"
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", venv], "python3 -m venv (is python3-venv installed?)")
    fault_point("install:venv")
    py = venv / "bin" / "python"
    run([py, "-m", "pip", "install", "--no-index", "--find-links", bundle / "wheels", "--only-binary=:all:",
         "-q", manifest["requirement"]], "Installing the bundled wheels (pip --no-index)")


def self_check(rel_dir: Path, user: str | None, prefix: Path) -> dict[str, Any]:
    out = rel_dir / "selfcheck.json"
    py = rel_dir / "venv" / "bin" / "python"
    res = subprocess.run([str(py), "-m", "edgecnn.deploy.selfcheck", str(rel_dir), "--out", str(out),
                          *(["--user", user] if user else [])],
                         capture_output=True, text=True, env=clean_env(), timeout=3600)
    result = releases.read_json(out)
    if result is None:
        text = (res.stderr or res.stdout).strip().splitlines()
        raise InstallError(f"The on-box self-check could not run: {(text[-1] if text else 'no output')[:400]}")
    return result


def _stage(rel_dir: Path) -> dict[str, Any]:
    return releases.read_json(rel_dir / STAGE) or {}


def install(bundle: Path, prefix: Path, service: bool = True, user: str | None = None,
            trust: Path | None = None) -> dict[str, Any]:
    """Install the unpacked bundle at ``bundle`` under ``prefix``; see the module docstring for the steps.

    Raises:
        InstallError: refused (signature, changed file, wrong box, full disk) or failed self-check.
    """
    t0 = time.perf_counter()
    manifest, raw = load_manifest(bundle)
    check_box(manifest)
    signed = verify_signature(bundle, raw, trust)
    count = verify_files(bundle, manifest)
    if user is not None and not _USER_NAME.match(user):
        raise InstallError(f"Expected --user as an account name (letters, digits, _ . -); received {user!r}.")
    prefix = Path(os.path.abspath(prefix))
    if not _SAFE_PATH.match(str(prefix)):
        raise InstallError(f"Expected --prefix with letters, digits and @+=:,./_- only (it goes into a systemd unit); "
                           f"received {str(prefix)!r}.")
    rid = str(manifest["id"])
    manifest_sha = hashlib.sha256(raw).hexdigest()
    say(f"bundle {rid} for {manifest['target']['name']}: {count} files verified, {signed}")
    fault_point("install:verified")

    rel_dir = releases.releases_dir(prefix) / rid
    if not (rel_dir / releases.STATUS).is_file() and not rel_dir.is_dir():
        check_space(prefix, needed_bytes(bundle, manifest))  # before anything is made: a full disk changes nothing
    with releases.locked(prefix):
        root = releases.releases_dir(prefix)
        root.mkdir(exist_ok=True)
        _clean_stale(prefix, keep=rid)
        status = releases.read_status(rel_dir)
        if status and status.get("passed") and status.get("manifest_sha256") == manifest_sha:
            say(f"release {rid} is already installed and checked; switching to it")
        else:
            status = _build_and_check(bundle, manifest, manifest_sha, rel_dir, prefix, user)
        releases.make_state_dir(prefix, user or DEFAULT_SERVICE_USER)  # kept across releases (a station's state)
        old = releases.switch(prefix, rid, fault=fault_point)
        fault_point("install:switched")
        unit = None
        if service:
            _ensure_account(user or DEFAULT_SERVICE_USER)
            releases.make_state_dir(prefix, user or DEFAULT_SERVICE_USER)  # owned by the account just made
            unit = releases.install_service(prefix, (rel_dir / "edgecnn.service").read_text(encoding="utf-8"))
        fault_point("install:service")
    sc = status["selfcheck"]
    seconds = time.perf_counter() - t0
    return {"id": rid, "prefix": str(prefix), "previous": old, "seconds": seconds, "selfcheck": sc, "service": unit}


def _build_and_check(bundle: Path, manifest: dict[str, Any], manifest_sha: str, rel_dir: Path, prefix: Path,
                     user: str | None) -> dict[str, Any]:
    stage = _stage(rel_dir)
    resumable = stage.get("manifest_sha256") == manifest_sha and stage.get("stage") == "wheels"
    try:
        if resumable and (rel_dir / "venv" / "bin" / "python").exists():
            say(f"resuming {rel_dir.name}: its venv was installed by an interrupted run")
        else:
            if rel_dir.exists():
                shutil.rmtree(rel_dir)
            rel_dir.mkdir()
            releases.fsync_dir(rel_dir.parent)
            copy_payload(bundle, manifest, rel_dir)
            fault_point("install:copied")
            say(f"building the venv from {sum(1 for f in manifest['files'] if f.startswith('wheels/'))} bundled wheels "
                "(no network)")
            build_venv(bundle, manifest, rel_dir)
            releases.write_json_atomic(rel_dir / STAGE, {"manifest_sha256": manifest_sha, "stage": "wheels"})
            fault_point("install:wheels")
        say("on-box self-check: parity against golden.npz and a short benchmark")
        sc = self_check(rel_dir, user, prefix)
        fault_point("install:selfchecked")
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            shutil.rmtree(rel_dir, ignore_errors=True)
            raise InstallError(f"The disk at {prefix} filled up while installing {rel_dir.name}; the partial release "
                               "was removed and current is unchanged. Free space and run this again.") from None
        raise
    status = {"schema": releases.STATUS_SCHEMA, "id": rel_dir.name, "version": manifest.get("version"),
              "target": manifest["target"]["name"], "manifest_sha256": manifest_sha, "passed": bool(sc.get("passed")),
              "checked_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "selfcheck": sc,
              "source": manifest.get("source"), "python": ".".join(map(str, sys.version_info[:3])),
              "machine": platform.machine()}
    if not status["passed"]:
        shutil.rmtree(rel_dir / "venv", ignore_errors=True)  # a failed release is kept as a record, without its venv
        releases.write_json_atomic(rel_dir / releases.STATUS, status)
        raise InstallError(f"On-box self-check failed for {rel_dir.name}: {sc.get('reason')}; current is unchanged "
                           f"({releases.link_target(prefix, 'current') or 'nothing installed'}).")
    releases.write_json_atomic(rel_dir / releases.STATUS, status)
    with contextlib.suppress(FileNotFoundError):
        (rel_dir / STAGE).unlink()
    fault_point("install:status")
    return status


def _clean_stale(prefix: Path, keep: str) -> None:
    """Remove what killed runs left: temporary links and incomplete releases other than the one being installed."""
    for p in prefix.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            p.unlink()
    releases.remove_trash(prefix)
    for r in releases.list_releases(prefix):
        if not r.complete and r.id != keep and not r.current and not r.previous:
            releases.remove_release(r.path)


def _ensure_account(user: str) -> None:
    """The service's account exists: the default one (``edgecnn``) is made as a system account when missing."""
    import pwd

    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if user != DEFAULT_SERVICE_USER or useradd is None or os.geteuid() != 0:
        raise InstallError(f"The service account {user!r} does not exist on this box; create it (sudo useradd --system "
                           f"--no-create-home --shell /usr/sbin/nologin {user}) or pass --user / --no-service. The "
                           "release is installed and current.")
    run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], f"useradd {user}")


def _figures(sc: dict[str, Any]) -> str:
    par, lat = sc.get("parity") or {}, sc.get("latency") or {}
    text = f"parity {'passed' if sc.get('passed') else 'FAILED'} ({par.get('samples')} golden inputs, max |dp| " \
           f"{par.get('max_abs', float('nan')):.2e}, top-1 agreement {100 * par.get('agreement', 0):.1f}%)"
    if lat:
        text += f"; p50 {lat.get('p50_ms', 0):.2f} ms, p99 {lat.get('p99_ms', 0):.2f} ms here"
    prof = sc.get("profile_measured") or {}
    if prof.get("p50_ms") is not None:
        text += f" (profile measured p50 {prof['p50_ms']:.2f} ms, p99 {prof.get('p99_ms', 0):.2f} ms elsewhere)"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install", description="Install this edgecnn bundle on this box, offline.")
    parser.add_argument("--prefix", default=releases.DEFAULT_PREFIX, help="Install root (default /opt/edgecnn).")
    parser.add_argument("--no-service", action="store_true", help="Do not install or restart the systemd unit.")
    parser.add_argument("--user", help="Account the service runs as (default: the unit writer's dedicated "
                        "edgecnn system account, made when missing).")
    parser.add_argument("--trust", type=Path, help="Ed25519 public key (.pub); refuse the bundle unless its "
                        "manifest signature verifies with it.")
    args = parser.parse_args(argv)
    bundle = Path(__file__).resolve().parent.parent
    try:
        result = install(bundle, Path(args.prefix), service=not args.no_service, user=args.user, trust=args.trust)
    except InstallError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"Error: No space left{where}; current is unchanged. Free space and run install again.", file=sys.stderr)
        else:
            print(f"Error: {exc.strerror or exc}{where}; current is unchanged. Run install again.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted; current is unchanged. Run install again to finish.", file=sys.stderr)
        return 130
    say(f"{result['id']} is current at {result['prefix']}/current (was {result['previous'] or 'nothing'}) in "
        f"{result['seconds']:.1f} s: {_figures(result['selfcheck'])}")
    if result["service"]:
        say(f"service {result['service']['unit']} installed and restarted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
