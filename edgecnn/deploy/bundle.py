"""``edgecnn bundle SOURCE --target TARGET -o FILE``: one tar.gz that installs a station on a box with no network.

SOURCE is an artifact (``.tflite``/``.onnx`` with ``golden.npz`` beside it), an export folder, a deploy profile
from ``bench --pick`` (``.json``) or a station file (``.toml``, its model through the station loader). TARGET is a
device profile whose ``[install]`` table names the board's wheel platform tags, Python and runtime extra.

The bundle (one top folder, ``edgecnn-<id>/``)::

    install                 POSIX sh: runs installer/installer.py with the box's python3 (needs only venv)
    installer/              installer.py, releases.py, ed25519.py: standard library only
    wheels/                 edgecnn's wheel + the one runtime extra's wheels for the target's platform and Python
    model/                  the artifact, golden.npz, the deploy profile and station file (when given; their paths
                            to the model rewritten to the bundled files, placeholders kept)
    unit/edgecnn.service    the systemd unit as it reads under the default prefix (the box writes its own)
    MANIFEST.json           SHA-256 and size of every file, id, version, target, source run, runtime options
    MANIFEST.sig            Ed25519 signature of MANIFEST.json's bytes (base64), with --sign KEY

Size (~400 lines): what SOURCE and TARGET stand for (four kinds of source, the profile's tags and extra) and the
build itself; wheels, keys and the box side live in their own modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError, DataError, ModelError

BUNDLE_SCHEMA = "edgecnn.bundle/1"
#: Artifacts a bundle ships: files an edge runtime runs (their backend's extra is the bundle's runtime extra).
ARTIFACT_SUFFIXES = (".tflite", ".onnx")
SHIPPED_MODULES = ("installer.py", "releases.py", "ed25519.py")
INSTALL_SH = """#!/bin/sh
# edgecnn offline installer: sh install [--prefix /opt/edgecnn] [--no-service] [--user U] [--trust KEY.pub]
# Needs only python3 with its venv module (Debian: apt install python3-venv). No network is used.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
if ! command -v python3 >/dev/null 2>&1; then
    echo "Error: python3 not found; this bundle needs python3 with venv (Debian: apt install python3 python3-venv)." >&2
    exit 1
fi
exec python3 "$here/installer/installer.py" "$@"
"""


@dataclass
class Target:
    """A bundle target resolved from a device profile."""

    name: str
    platforms: list[str]
    python: str
    machine: str
    extra: str
    runtime: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Source:
    """What SOURCE resolved to."""

    kind: str
    path: Path
    artifact: Path
    golden: Path
    deploy_profile: Path | None = None
    station_file: Path | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] | None = None


@dataclass
class BundleResult:
    """A written bundle."""

    path: Path
    id: str
    target: str
    size_bytes: int
    wheels: int
    manifest: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- source
def resolve_source(source: str | os.PathLike[str], target_name: str | None = None) -> Source:
    """Find the artifact, golden set, deploy profile and station file SOURCE stands for.

    Raises:
        ConfigError / ModelError / DataError: SOURCE missing, of an unknown kind, or without a golden.npz.
    """
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"SOURCE not found: {path}; expected a station file, a deploy profile (.json from "
                          "bench --pick), an export folder or an artifact (.tflite/.onnx).")
    if path.is_dir():
        return _with_golden(Source("export", path, _pick_from_export(path, target_name), path / "golden.npz"))
    suffix = path.suffix.lower()
    if suffix == ".json":
        from edgecnn.runtime.deploy import load_deploy_profile

        prof = load_deploy_profile(path, check_device=False)
        runtime = {"backend": prof.backend, "threads": prof.threads, "batch": prof.batch, "providers": prof.providers,
                   "delegate": prof.delegate, "delegate_options": prof.delegate_options}
        measured = {k: prof.measured.get(k) for k in ("p50_ms", "p99_ms", "mean_ms", "runs", "runtime",
                                                     "runtime_version", "accuracy")}
        measured["device"] = (prof.device or {}).get("label") or (prof.device or {}).get("hostname")
        src = Source("deploy-profile", path, prof.artifact, prof.artifact.parent / "golden.npz", deploy_profile=path,
                     runtime=runtime, measured=measured)
        return _with_golden(src)
    if suffix == ".toml":
        inner = _station_model(path)
        src = resolve_source(inner, target_name)
        src.kind, src.path, src.station_file = "station", path, path
        return src
    if suffix in ARTIFACT_SUFFIXES:
        return _with_golden(Source("artifact", path, path, path.parent / "golden.npz"))
    raise ConfigError(f"Expected SOURCE as a station file (.toml), a deploy profile (.json), an export folder or an "
                      f"artifact (.tflite/.onnx); received {path.name}.")


def _with_golden(src: Source) -> Source:
    if not src.golden.is_file():
        raise DataError(f"No golden.npz beside {src.artifact.name} ({src.golden.parent}); the box's self-check needs "
                        "it. Export with held-out data (edgecnn export RUN --check-data DIR) writes one.")
    return src


def _pick_from_export(folder: Path, target_name: str | None) -> Path:
    """The artifact of an export folder that suits the target (its profile's format and precision first)."""
    report = folder / "export_report.json"
    rows: list[tuple[str, str, Path]] = []
    if report.is_file():
        data = json.loads(report.read_text(encoding="utf-8"))
        for r in data.get("artifacts") or data.get("results") or []:
            p = folder / Path(r.get("path", "")).name
            if p.is_file() and r.get("passed", True) and p.suffix in ARTIFACT_SUFFIXES:
                rows.append((r["format"], r.get("precision", ""), p))
    else:
        rows = [(p.suffix.lstrip("."), "", p) for p in sorted(folder.iterdir()) if p.suffix in ARTIFACT_SUFFIXES]
    if not rows:
        raise ModelError(f"Export folder {folder} holds no .tflite/.onnx artifact that passed its gate; export one or "
                         "give the artifact as SOURCE.")
    want_fmt, want_prec = None, None
    if target_name:
        from edgecnn.devices import load_profile

        prof = load_profile(target_name)
        want_fmt, want_prec = prof.backend, prof.precision
    for fmt, prec, p in rows:
        if fmt == want_fmt and prec == want_prec:
            return p
    for fmt, _prec, p in rows:
        if fmt == want_fmt:
            return p
    return rows[0][2]


class _Placeholders(dict):
    """An environment in which every ``{NAME}`` stays as written: a bundle ships the station file's placeholders,
    never the build machine's secrets (the box fills them from its unit's EnvironmentFile)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return "{" + key + "}"


def _station_model(path: Path) -> Path:
    """The model (or deploy profile) a station file names, read through the station loader."""
    from edgecnn.station.schema import load_station

    station = load_station(path, environ=_Placeholders())
    found = station.profile or station.model
    if found is None:
        raise ConfigError(f"Station file {path} names no model or profile; a bundle needs one of them.")
    return Path(found)


def _copy_station_file(station: Path, src: Source, dest: Path) -> None:
    """The station file beside the bundled model, its top-level ``model``/``profile`` renamed to the bundled files
    (everything else, placeholders included, byte for byte)."""
    import re

    names = {"model": src.artifact.name, "profile": "deploy.json" if src.deploy_profile else None}
    out, in_table = [], False
    for line in station.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.lstrip().startswith("["):
            in_table = True
        m = re.match(r"^(\s*)(model|profile)(\s*=\s*)(\"[^\"]*\"|'[^']*')(.*)$", line.rstrip("\n"))
        if m and not in_table and names.get(m.group(2)):
            line = f'{m.group(1)}{m.group(2)}{m.group(3)}"{names[m.group(2)]}"{m.group(5)}\n'
        out.append(line)
    dest.write_text("".join(out), encoding="utf-8")


# ---------------------------------------------------------------------- target
def resolve_target(name: str, artifact_format: str, python: str | None = None) -> Target:
    """The bundle target of device profile ``name`` for an artifact of ``artifact_format``.

    Raises:
        ConfigError: unknown profile, or one with no wheel platform (no bundle possible, and why).
    """
    from edgecnn.deploy.wheels import expand_platforms, machine_of
    from edgecnn.devices import load_profile

    prof = load_profile(name)
    if not prof.install_platforms or not prof.install_python:
        raise ConfigError(f"Target {prof.name} cannot be bundled: its device profile names no wheel platforms "
                          f"([install] platforms/python). {prof.install_notes.strip().splitlines()[0] if prof.install_notes.strip() else ''}")
    if python is not None and not _is_version(python):
        raise ConfigError(f"Expected --python as MAJOR.MINOR (e.g. 3.11); received {python!r}.")
    from edgecnn.runtime.backends import BACKENDS

    backend = BACKENDS.get(artifact_format)
    if backend is None or artifact_format == "keras":
        raise ConfigError(f"A bundle ships a .tflite or .onnx artifact; received a {artifact_format} one.")
    # the target's own extra when it runs this format (tflite-legacy for tflite), else the backend's
    fits = prof.install_extra is not None and (prof.install_extra == backend.extra
                                               or prof.install_extra.startswith(backend.extra + "-"))
    extra = prof.install_extra if fits else backend.extra
    notes = []
    if not fits:
        notes.append(f"{prof.name}'s profile installs edgecnn[{prof.install_extra}]; a bundle ships the one runtime "
                     f"this {artifact_format} artifact needs: edgecnn[{extra}] (CPU).")
    gpu_providers = [p for p in prof.providers if p.startswith(("Tensorrt", "CUDA"))]
    if gpu_providers and machine_of(expand_platforms(prof.install_platforms)) == "aarch64":
        notes.append(f"{prof.name}: NVIDIA's GPU onnxruntime for Jetson is not on the public package registry (it comes "
                     "from NVIDIA's JetPack index), so this bundle runs ONNX on the CPU provider; install NVIDIA's "
                     "onnxruntime-gpu wheel into the release's venv on the box for TensorRT/CUDA.")
    elif gpu_providers:
        notes.append(f"{prof.name}: the GPU runtime (onnxruntime-gpu with CUDA and cuDNN, GBs of wheels that must match "
                     "the box's driver) is not bundled: this bundle runs ONNX on the CPU provider; pip install "
                     "onnxruntime-gpu into the release's venv for TensorRT/CUDA.")
    runtime: dict[str, Any] = {}
    if prof.backend == artifact_format:
        runtime = {"backend": prof.backend, "threads": prof.threads, "batch": prof.batch,
                   "delegate": prof.delegate, "delegate_options": prof.delegate_options or None}
        providers = [p for p in prof.providers if not p.startswith(("Tensorrt", "CUDA"))]
        runtime["providers"] = providers or None
    platforms = expand_platforms(prof.install_platforms)
    return Target(name=prof.name, platforms=platforms, python=python or prof.install_python,
                  machine=machine_of(platforms), extra=extra, runtime=runtime, notes=notes)


def _is_version(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 2 and all(p.isdigit() for p in parts)


# ---------------------------------------------------------------------- build
def build_bundle(source: str | os.PathLike[str], target: str, output: str | os.PathLike[str],
                 python: str | None = None, wheelhouse: str | os.PathLike[str] | None = None,
                 sign: str | os.PathLike[str] | None = None, force: bool = False) -> BundleResult:
    """Build the offline bundle of ``source`` for ``target`` at ``output`` (a ``.tar.gz``, written atomically).

    Raises:
        EdgeCNNError subclasses: bad SOURCE/TARGET/--python, a wheel the target lacks (one line naming it), an
            existing output without ``force``, an unusable signing key.
    """
    from edgecnn import __version__
    from edgecnn.deploy import wheels
    from edgecnn.errors import ArtifactExistsError
    from edgecnn.fileio import atomic_path, sha256_file, staging_dir
    from edgecnn.modelcard import load_card
    from edgecnn.outputs import check_outputs
    from edgecnn.parity import check_golden_matches, load_golden

    t0 = time.perf_counter()
    output = Path(output)
    if not output.name.endswith((".tar.gz", ".tgz")):
        raise ConfigError(f"Expected -o FILE ending in .tar.gz; received {output.name}.")
    check_outputs({"-o": output}, {"SOURCE": source, "--wheelhouse": wheelhouse, "--sign": sign})
    if output.exists() and not force:
        raise ArtifactExistsError(f"{output} exists; pass --force to replace it.")
    if wheelhouse is not None and not Path(wheelhouse).is_dir():
        raise ConfigError(f"Expected --wheelhouse as a folder of wheels; {wheelhouse} is not a folder.")
    src = resolve_source(source, target)
    card = load_card(src.artifact)
    if card is None:
        raise ModelError(f"{src.artifact.name} carries no model card; bundle an artifact written by edgecnn export.")
    fmt = str(card.artifact.get("format") or src.artifact.suffix.lstrip("."))
    fmt = "onnx" if fmt.startswith("onnx") else "tflite" if fmt.startswith("tflite") else fmt
    tgt = resolve_target(target, fmt, python)
    check_golden_matches(src.artifact, card, load_golden(src.golden))  # a golden of another model: refused here
    if sign is not None:
        from edgecnn.deploy.keys import sign as _sign

        _sign(sign, b"probe")  # a bad key fails before minutes of downloading

    stage = staging_dir(output)
    try:
        payload = stage / "payload"
        (payload / "wheels").mkdir(parents=True)
        (payload / "model").mkdir()
        (payload / "installer").mkdir()
        edgecnn_wheel = wheels.build_edgecnn_wheel(stage, Path(wheelhouse) if wheelhouse else None)
        root = wheels.project_root()
        constraints = root / "constraints.txt" if root else None
        requirement = f"edgecnn[{tgt.extra}]=={__version__}"
        unpinned = wheels.download_target(edgecnn_wheel, tgt.extra, payload / "wheels", tgt.platforms, tgt.python,
                                          tgt.machine, constraints, Path(wheelhouse) if wheelhouse else None)
        shutil.copy2(src.artifact, payload / "model" / src.artifact.name)
        shutil.copy2(src.golden, payload / "model" / "golden.npz")
        deploy_rel = None
        if src.deploy_profile is not None:
            deploy_rel = "model/deploy.json"
            _copy_deploy_profile(src.deploy_profile, src.artifact.name, payload / deploy_rel)
        station_rel = None
        if src.station_file is not None:
            station_rel = "model/station.toml"
            _copy_station_file(src.station_file, src, payload / station_rel)
        here = Path(__file__).resolve().parent
        for name in SHIPPED_MODULES:
            shutil.copy2(here / name, payload / "installer" / name)
        (payload / "install").write_text(INSTALL_SH, encoding="utf-8")
        os.chmod(payload / "install", 0o755)
        files = {str(p.relative_to(payload)): {"sha256": sha256_file(p), "size": p.stat().st_size}
                 for p in sorted(payload.rglob("*")) if p.is_file()}
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
        bundle_id = f"{tgt.name}-{__version__}-{digest}"
        unit_rel = "unit/edgecnn.service"
        _write_default_unit(payload, unit_rel, src, tgt, bundle_id, deploy_rel, station_rel)
        files[unit_rel] = {"sha256": sha256_file(payload / unit_rel), "size": (payload / unit_rel).stat().st_size}
        wheel_list = sorted(p.name for p in (payload / "wheels").glob("*.whl"))
        manifest = {
            "schema": BUNDLE_SCHEMA,
            "id": bundle_id,
            "version": __version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "target": {"name": tgt.name, "platforms": tgt.platforms, "python": tgt.python, "machine": tgt.machine,
                       "extra": tgt.extra},
            "requirement": requirement,
            "unpinned": unpinned,
            "source": {"kind": src.kind, "path": str(Path(source).resolve()),
                       "run": (card.provenance or {}).get("run") or (card.provenance or {}).get("source"),
                       "source_sha256": (card.provenance or {}).get("source_sha256")},
            "artifact": {"path": f"model/{src.artifact.name}", "format": fmt,
                         "precision": card.artifact.get("precision"), "sha256": files[f"model/{src.artifact.name}"]["sha256"]},
            "golden": "model/golden.npz",
            "deploy_profile": deploy_rel,
            "station_file": station_rel,
            "runtime": {**tgt.runtime, **{k: v for k, v in src.runtime.items() if v is not None}},
            "profile_measured": src.measured,
            "wheels": wheel_list,
            "notes": tgt.notes,
            "files": files,
        }
        raw = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
        (payload / "MANIFEST.json").write_bytes(raw)
        if sign is not None:
            import base64

            from edgecnn.deploy.keys import sign as _sign

            (payload / "MANIFEST.sig").write_text(base64.b64encode(_sign(sign, raw)).decode("ascii") + "\n",
                                                  encoding="ascii")
        top = f"edgecnn-{bundle_id}"
        with atomic_path(output) as tmp:
            with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
                for p in sorted(payload.rglob("*")):
                    info = tar.gettarinfo(str(p), arcname=f"{top}/{p.relative_to(payload)}")
                    info.uid = info.gid = 0
                    info.uname = info.gname = "root"
                    if p.is_file():
                        with open(p, "rb") as fh:
                            tar.addfile(info, fh)
                    else:
                        tar.addfile(info)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return BundleResult(path=output, id=bundle_id, target=tgt.name, size_bytes=output.stat().st_size,
                        wheels=len(wheel_list), manifest=manifest, seconds=time.perf_counter() - t0, notes=tgt.notes)


def _copy_deploy_profile(profile: Path, artifact_name: str, dest: Path) -> None:
    """The deploy profile with its artifact path made relative to the bundle (``model/``); figures unchanged."""
    data = json.loads(profile.read_text(encoding="utf-8"))
    data["artifact"] = {**data["artifact"], "path": artifact_name}
    data["artifact"].pop("abs_path", None)
    dest.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_default_unit(payload: Path, rel: str, src: Source, tgt: Target, bundle_id: str,
                        deploy_rel: str | None, station_rel: str | None) -> None:
    """The unit as it reads when installed under the default prefix (the box's own writer, paths rewritten)."""
    from edgecnn.deploy.releases import DEFAULT_PREFIX, STATE_DIR
    from edgecnn.deploy.selfcheck import render_unit

    release = f"{DEFAULT_PREFIX}/releases/{bundle_id}"
    manifest = {"id": bundle_id, "target": {"name": tgt.name}, "deploy_profile": deploy_rel,
                "station_file": station_rel, "artifact": {"path": f"model/{src.artifact.name}"}}
    text = render_unit(payload.resolve(), manifest, None, f"{DEFAULT_PREFIX}/{STATE_DIR}")
    out = payload / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ("# The unit as `sh install` writes it under the default prefix, for reading; the installer renders the\n"
              "# box's own (its --prefix and --user) with the same writer after the self-check.\n")
    out.write_text(header + text.replace(str(payload.resolve()), release), encoding="utf-8")
