"""Releases on a box: ``PREFIX/releases/<id>/``, the ``current`` and ``previous`` links, switch, rollback, prune.

Standard library only: this module is shipped inside every bundle and imported by its installer, which runs on a
bare ``python3``; ``edgecnn station releases|status|rollback`` imports the same module from the installed edgecnn.

Layout::

    PREFIX/.lock                     flock(2): one installer or rollback at a time
    PREFIX/current  -> releases/ID   the release the service runs (a relative symlink)
    PREFIX/previous -> releases/ID   the one before it: what ``rollback`` switches to
    PREFIX/service.json              the unit the installer installed (name, path), when it installed one
    PREFIX/state/                    a bundled station's state (sequence number, spools, captures): outside the
                                     releases, so it survives updates and rollbacks; owned by the service account
    PREFIX/releases/ID/              one bundle installed: MANIFEST.json, model files, venv/, edgecnn.service,
                                     status.json (written last: a release without it is incomplete)

Crash safety: a link is switched by making a temporary symlink beside it and ``rename(2)``-ing it over the old
one, so ``current`` always names a release whose ``status.json`` says it passed its on-box self-check (or does not
exist yet, on a first install). ``previous`` is switched before ``current``; a kill between the two leaves
``previous == current``, which the next switch or rollback handles.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # inside edgecnn, errors print as one red line through the CLI; in a bundle, the installer prints them
    from edgecnn.errors import EdgeCNNError as _Base
except ImportError:  # pragma: no cover - the bundle's installer on a bare python3
    _Base = Exception  # type: ignore[misc,assignment]

STATUS = "status.json"
STATUS_SCHEMA = "edgecnn.release/1"
SERVICE_STATE = "service.json"
STATE_DIR = "state"
DEFAULT_PREFIX = "/opt/edgecnn"
DEFAULT_KEEP = 3


class ReleaseError(_Base):  # type: ignore[misc,valid-type]
    """A release operation cannot be done (nothing to roll back to, an unknown prefix, a held lock)."""

    exit_code = 1


@dataclass
class Release:
    """One folder under ``PREFIX/releases``."""

    id: str
    path: Path
    status: dict[str, Any] | None = None
    current: bool = False
    previous: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Installed to the end (status written), passed or not."""
        return self.status is not None

    @property
    def passed(self) -> bool:
        return bool(self.status and self.status.get("passed"))

    @property
    def checked_utc(self) -> str:
        return str((self.status or {}).get("checked_utc") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "current": self.current, "previous": self.previous,
                "complete": self.complete, "passed": self.passed, "status": self.status}


# ---------------------------------------------------------------------- small file helpers (no edgecnn here)
def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file beside ``path``, fsync, rename over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def locked(prefix: Path) -> Iterator[None]:
    """Hold ``PREFIX/.lock`` exclusively (one install or rollback at a time); a second one is refused at once."""
    import fcntl

    prefix.mkdir(parents=True, exist_ok=True)
    fd = os.open(prefix / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReleaseError(f"Another install or rollback holds {prefix / '.lock'}; wait for it to finish "
                               "and run this again.") from None
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- reading
def releases_dir(prefix: Path) -> Path:
    return Path(prefix) / "releases"


def state_dir(prefix: Path) -> Path:
    """``PREFIX/state``: the state folder of a bundled station, kept across releases."""
    return Path(prefix) / STATE_DIR


def make_state_dir(prefix: Path, user: str | None = None) -> Path:
    """Make ``PREFIX/state`` (mode 0750) when missing; as root, hand it to ``user`` when that account exists (the
    unit's ``ProtectSystem=strict`` lets the service write only there, as that account)."""
    path = state_dir(prefix)
    path.mkdir(mode=0o750, exist_ok=True)
    if user and hasattr(os, "geteuid") and os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return path
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.lchown(name, pw.pw_uid, pw.pw_gid)
    return path


def link_target(prefix: Path, name: str) -> str | None:
    """The release id a link (``current``/``previous``) points to, or None."""
    link = Path(prefix) / name
    try:
        target = os.readlink(link)
    except OSError:
        return None
    parts = Path(target).parts
    return parts[-1] if parts else None


def read_status(release: Path) -> dict[str, Any] | None:
    status = read_json(Path(release) / STATUS)
    return status if status and status.get("schema") == STATUS_SCHEMA else None


def list_releases(prefix: str | os.PathLike[str]) -> list[Release]:
    """Every release folder, oldest check first (incomplete ones last); marks ``current`` and ``previous``."""
    prefix = Path(prefix)
    root = releases_dir(prefix)
    if not root.is_dir():
        return []
    cur, prev = link_target(prefix, "current"), link_target(prefix, "previous")
    out = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        out.append(Release(id=p.name, path=p, status=read_status(p), current=p.name == cur,
                           previous=p.name == prev and p.name != cur))
    out.sort(key=lambda r: (not r.complete, r.checked_utc, r.id))
    return out


def check_prefix(prefix: str | os.PathLike[str]) -> Path:
    """``prefix`` as a Path, refused with one line when it holds no edgecnn install."""
    prefix = Path(prefix)
    if not releases_dir(prefix).is_dir():
        raise ReleaseError(f"Expected an edgecnn install at {prefix} (a releases/ folder, made by a bundle's "
                           f"`sh install --prefix {prefix}`); found none. Give the --prefix the bundle was installed to.")
    return prefix


# ---------------------------------------------------------------------- switching
def set_link(prefix: Path, name: str, release_id: str) -> None:
    """Point ``PREFIX/name`` at ``releases/<release_id>`` in one ``rename(2)``."""
    prefix = Path(prefix)
    tmp = prefix / f".{name}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(os.path.join("releases", release_id), tmp)
    os.replace(tmp, prefix / name)
    fsync_dir(prefix)


def switch(prefix: Path, release_id: str, fault: Any = None) -> str | None:
    """Make ``release_id`` current (it must have passed its self-check); the old current becomes ``previous``.

    Returns:
        The release that was current before (None on a first install).
    """
    rel = releases_dir(prefix) / release_id
    status = read_status(rel)
    if not status or not status.get("passed"):
        raise ReleaseError(f"Release {release_id} has not passed its on-box self-check; refusing to make it current.")
    old = link_target(prefix, "current")
    if old == release_id:
        return old
    if old is not None and (releases_dir(prefix) / old).is_dir():
        set_link(prefix, "previous", old)
    if fault:
        fault("install:previous-linked")
    set_link(prefix, "current", release_id)
    return old


def rollback(prefix: str | os.PathLike[str], to: str | None = None) -> dict[str, Any]:
    """Switch ``current`` back to ``previous`` (or to the release ``to``), atomically, and restart the service.

    Falls back to the newest other release that passed when ``previous`` is missing or unusable.

    Raises:
        ReleaseError: no install here, or no other release that passed its self-check.
    """
    prefix = check_prefix(prefix)
    t0 = time.perf_counter()
    with locked(prefix):
        releases = {r.id: r for r in list_releases(prefix)}
        cur = link_target(prefix, "current")
        if to is not None:
            if to not in releases:
                raise ReleaseError(f"Expected a release id of {prefix} ({', '.join(releases) or 'none'}); received {to!r}.")
            target = releases[to]
            if not target.passed:
                raise ReleaseError(f"Release {to} did not pass its on-box self-check; refusing to make it current.")
        else:
            prev = link_target(prefix, "previous")
            target = releases.get(prev) if prev and prev != cur else None
            if target is None or not target.passed:
                others = [r for r in releases.values() if r.passed and r.id != cur]
                if not others:
                    raise ReleaseError(f"Nothing to roll back to at {prefix}: no release other than the current "
                                       f"one ({cur}) passed its self-check.")
                target = others[-1]
        old = switch(prefix, target.id)
        service = restart_service(prefix)
    return {"from": old, "to": target.id, "seconds": time.perf_counter() - t0, "service": service}


def prune(prefix: str | os.PathLike[str], keep: int = DEFAULT_KEEP) -> list[str]:
    """Remove the oldest releases beyond ``keep``; never ``current`` or ``previous``; incomplete ones go first.

    Raises:
        ReleaseError: ``keep`` < 2 (current and the one before it are always kept) or no install here.
    """
    if keep < 2:
        raise ReleaseError(f"Expected --keep >= 2 (the current release and the one before it are always kept); "
                           f"received {keep}.")
    prefix = check_prefix(prefix)
    removed = []
    with locked(prefix):
        remove_trash(prefix)
        rels = list_releases(prefix)
        protected = {r.id for r in rels if r.current or r.previous}
        others = [r for r in rels if r.id not in protected]
        newest = sorted((r for r in others if r.passed), key=lambda r: r.checked_utc, reverse=True)
        kept = {r.id for r in newest[:max(0, keep - len(protected))]}
        for r in others:  # failed and incomplete releases (stale: the lock is ours) go first
            if r.id not in kept:
                remove_release(r.path)
                removed.append(r.id)
        fsync_dir(releases_dir(prefix))
    return removed


def remove_release(path: Path) -> None:
    """Delete a release so that no kill leaves a half-deleted one that still looks complete: it is renamed to a
    hidden ``.trash-*`` folder first (one ``rename(2)``; listings skip hidden folders), then removed."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.rename(path, trash)
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def remove_trash(prefix: Path) -> None:
    """Finish removals a kill interrupted (``releases/.trash-*``)."""
    for p in releases_dir(prefix).glob(".trash-*"):
        shutil.rmtree(p, ignore_errors=True)


def status(prefix: str | os.PathLike[str]) -> dict[str, Any]:
    """What runs at ``prefix``: the current and previous release, their self-check figures, the service."""
    prefix = check_prefix(prefix)
    rels = list_releases(prefix)
    cur = next((r for r in rels if r.current), None)
    prev = next((r for r in rels if r.previous), None)
    return {"prefix": str(prefix), "current": cur.to_dict() if cur else None,
            "previous": prev.to_dict() if prev else None, "releases": len(rels),
            "service": read_json(prefix / SERVICE_STATE)}


# ---------------------------------------------------------------------- the systemd unit
def install_service(prefix: Path, unit_text: str, unit_dir: Path = Path("/etc/systemd/system"),
                    name: str = "edgecnn.service") -> dict[str, Any]:
    """Install the current release's unit, then ``daemon-reload``, ``enable`` and ``restart`` it.

    The unit names files inside ``releases/<id>`` (systemd resolves no symlink of ours), so a switch or rollback
    rewrites it and restarts the service.

    Raises:
        ReleaseError: systemctl missing, or a systemctl step failed (its message).
    """
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        raise ReleaseError("systemctl not found: this box has no systemd. The release is installed and current; "
                           "start it yourself, or pass --no-service.")
    unit_dir.mkdir(parents=True, exist_ok=True)
    path = unit_dir / name
    tmp = path.with_name(f".{name}.tmp-{os.getpid()}")
    tmp.write_text(unit_text, encoding="utf-8")
    os.replace(tmp, path)
    fsync_dir(unit_dir)
    for args in (["daemon-reload"], ["enable", name], ["restart", name]):
        res = subprocess.run([systemctl, *args], capture_output=True, text=True)
        if res.returncode:
            raise ReleaseError(f"systemctl {' '.join(args)} failed: {(res.stderr or res.stdout).strip()[-300:]}")
    state = {"unit": name, "path": str(path)}
    write_json_atomic(prefix / SERVICE_STATE, state)
    return state


def restart_service(prefix: Path) -> dict[str, Any] | None:
    """Re-install the current release's unit and restart it, when the installer installed one (else None)."""
    state = read_json(prefix / SERVICE_STATE)
    if not state:
        return None
    cur = link_target(prefix, "current")
    unit = releases_dir(prefix) / str(cur) / "edgecnn.service"
    if not unit.is_file():
        raise ReleaseError(f"The current release {cur} has no edgecnn.service to install; reinstall its bundle.")
    return install_service(prefix, unit.read_text(encoding="utf-8"), Path(state["path"]).parent, state["unit"])


def describe_status(status: dict[str, Any] | None) -> str:
    """One line of a release's on-box self-check: passed with its figures (beside the profile's), failed and why,
    or incomplete."""
    if not status:
        return "incomplete (an interrupted install; the next install removes it)"
    sc = status.get("selfcheck") or {}
    par, lat = sc.get("parity") or {}, sc.get("latency") or {}
    if not status.get("passed"):
        return f"FAILED self-check: {sc.get('reason')}"
    text = f"passed {status.get('checked_utc')}: max |Δp| {par.get('max_abs', 0):.1e}, agreement " \
           f"{100 * (par.get('agreement') or 0):.0f}%"
    if lat:
        text += f", p50 {lat.get('p50_ms', 0):.2f} ms, p99 {lat.get('p99_ms', 0):.2f} ms"
    prof = sc.get("profile_measured") or {}
    if prof.get("p50_ms") is not None:
        text += f" (profile: p50 {prof['p50_ms']:.2f}, p99 {prof.get('p99_ms') or 0:.2f} ms)"
    return text
