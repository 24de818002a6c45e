"""Atomic file writing: temp file in the same folder, fsync, rename. A killed run leaves no truncated file."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask is process-wide, not something to toggle per file


def umask_mode(is_dir: bool = False) -> int:
    """The mode a plain ``open``/``mkdir`` gives under this process's umask: 0644/0755 under 022.

    ``tempfile.mkstemp``/``mkdtemp`` make 0600/0700 on purpose; whatever is published from them (models,
    reports, run and export folders) is set to this instead, so a service running as another user, a web
    server or ``rsync -a`` can read it. Secrets (spools with credentials, signing keys) stay 0600.
    """
    return (0o777 if is_dir else 0o666) & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    Use it for writers that want a filename (Keras ``model.save``, ``np.savez``, matplotlib ``savefig``).
    The temporary name keeps the final suffix so suffix-sniffing writers behave.
    """
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temps(path.parent)  # what a killed process left here (once per folder and process)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}{TEMP_MARK}{os.getpid()}-", suffix=f".tmp{path.suffix}",
                               dir=path.parent)  # O_EXCL|O_NOFOLLOW: a fresh file, never a planted link
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, umask_mode())  # mkstemp makes 0600; a model file should be readable like any other
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


#: The mark in every temporary file name edgecnn writes beside an output (``.NAME.edgecnn-tmp-PID-XXXX.tmpSUFFIX``):
#: the owner's pid tells a later run (or ``edgecnn clean``) whether it may remove the file.
TEMP_MARK = ".edgecnn-tmp-"
_swept: set[str] = set()


def _temp_owner(name: str) -> int | None:
    """The pid in an edgecnn temporary file's name, or None when the name is not one."""
    if not name.startswith(".") or TEMP_MARK not in name:
        return None
    rest = name.split(TEMP_MARK, 1)[1]
    pid = rest.split("-", 1)[0]
    return int(pid) if pid.isdigit() and "-" in rest else None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """edgecnn temporary files and staging folders in ``folder`` whose owner process is gone (never followed
    through a symlink; only names edgecnn makes: ``.NAME.edgecnn-tmp-PID-*`` files, ``.NAME.staging-PID-*``
    folders)."""
    out: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return out
    for entry in entries:
        pid = _temp_owner(entry.name)
        if pid is not None:
            if entry.is_file(follow_symlinks=False) and not _pid_alive(pid):
                out.append(Path(entry.path))
        elif entry.name.startswith(".") and ".staging-" in entry.name and entry.is_dir(follow_symlinks=False):
            try:
                owner = int(entry.name.rsplit(".", 1)[-1].split("-")[1])
            except (IndexError, ValueError):
                continue  # not a name edgecnn makes
            if not _pid_alive(owner):
                out.append(Path(entry.path))
    return sorted(out)


def sweep_temps(folder: str | os.PathLike[str], force: bool = False) -> list[Path]:
    """Remove :func:`stale_temps` of ``folder``; once per folder and process unless ``force``. Returns them."""
    import shutil

    key = os.path.abspath(folder)
    if key in _swept and not force:
        return []
    _swept.add(key)
    removed = []
    for p in stale_temps(folder):
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed


def clean(paths: list[str | os.PathLike[str]], recursive: bool = False) -> list[Path]:
    """``edgecnn clean``: remove what killed edgecnn processes left in these folders (temporary files and staging
    folders whose owner pid is no longer running); folders below too with ``recursive``. Returns what was removed.

    Raises:
        OSError: a path that is not a folder (ENOTDIR) or does not exist (ENOENT).
    """
    removed: list[Path] = []
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            raise OSError(errno.ENOTDIR if root.exists() else errno.ENOENT,
                          "expected a folder to clean" if root.exists() else "no such folder", str(root))
        folders = [root]
        if recursive:
            for dirpath, dirnames, _ in os.walk(root):  # never follows symlinked folders
                dirnames[:] = [d for d in dirnames if ".staging-" not in d]
                folders += [Path(dirpath) / d for d in dirnames]
        for folder in folders:
            removed += sweep_temps(folder, force=True)
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it is renamed onto ``path`` when the block exits cleanly."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 text."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write bytes."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write JSON (UTF-8, indented, non-ASCII kept)."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


#: The largest small file edgecnn reads whole (a card, a labels file, a list of paths, a TOML or JSON profile).
MAX_SMALL_FILE = 256_000_000


def read_known_size(fh: IO[bytes], size: int, limit: int) -> bytes | None:
    """The bytes of an open regular file that ``fstat`` said has ``size`` bytes, or None if it grows past ``limit``.

    Asks for ``size + 1`` bytes, then reads on in 1 MB steps only if the file grew: ``read(n)`` reserves n bytes
    first, so asking for the limit reserves it however small the file is (three image reader threads asking for
    528 MB each ran out of a 1.5 GB address-space cap).
    """
    parts = [fh.read(size + 1)]
    total = len(parts[0])
    while total > size:
        if total > limit:
            return None
        chunk = fh.read(1 << 20)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    if total > limit:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_regular(path: str | os.PathLike[str], limit: int = MAX_SMALL_FILE) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. A named pipe, a device or a socket is refused
    without blocking (``O_NONBLOCK``, then ``fstat``), and so is a file that is, or grows, larger than ``limit``.

    Raises:
        OSError: as ``open`` (ENOENT...), or EINVAL/EFBIG naming what the path is; the CLI prints one line.
    """
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a named pipe" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket")
            raise OSError(errno.EINVAL, f"it is {kind}, not a regular file", os.fsdecode(path))
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"{st.st_size:,} bytes, over the {limit:,} bytes read here", os.fsdecode(path))
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = read_known_size(fh, st.st_size, limit)
        if data is None:
            raise OSError(errno.EFBIG, f"grew past the {limit:,} bytes read here", os.fsdecode(path))
        return data
    finally:
        os.close(fd)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------- the one folder written outside the given ones
CACHE_DIR_ENV = "EDGECNN_CACHE_DIR"


def cache_dir() -> Path:
    """edgecnn's cache folder (built-in datasets): ``$EDGECNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgecnn``, else
    ``~/.cache/edgecnn``. Nothing else is written outside the folders a command is given (see the README)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and os.path.isabs(os.path.expanduser(xdg)) else Path.home() / ".cache"
    return base / "edgecnn"


# ---------------------------------------------------------------------- folders published whole
def staging_dir(target: str | os.PathLike[str], kind: str = "staging") -> Path:
    """A fresh hidden folder beside ``target`` (same file system, so it can be renamed onto it)."""
    import tempfile

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-{os.getpid()}-", dir=target.parent))
    os.chmod(staged, umask_mode(is_dir=True))  # mkdtemp makes 0700, and the folder is published as it is
    return staged


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def publish_dir(staged: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Make the finished folder ``staged`` appear at ``target`` in one step, then remove what was there.

    At every moment ``target`` is either the previous folder or the new one: a new target is one ``rename``;
    an existing one is swapped atomically (``renameat2(RENAME_EXCHANGE)``), or, where the file system cannot
    swap, moved aside to ``.NAME.old-*`` and restored by :func:`recover_dir` if the process dies in between.
    """
    import shutil
    import tempfile

    staged, target = Path(staged), Path(target)
    if not os.path.lexists(target):
        os.rename(staged, target)
        _fsync_dir(target.parent)
        return target
    if _exchange(staged, target):
        _fsync_dir(target.parent)
        shutil.rmtree(staged, ignore_errors=True)  # it now holds the previous folder
        return target
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    os.rename(staged, target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return target


def link_tree(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Hard-link ``src`` (file or folder tree) at ``dst``; copies where links are impossible (another device)."""
    import shutil

    src, dst = Path(src), Path(dst)

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b, follow_symlinks=False)
        except OSError:
            shutil.copy2(a, b, follow_symlinks=False)

    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    else:
        link(str(src), str(dst))


def recover_dir(target: str | os.PathLike[str]) -> list[Path]:
    """Clean up after a process killed while staging or publishing ``target``; returns what was removed.

    Leftover ``.NAME.staging-*`` folders (never published) are removed; a ``.NAME.old-*`` folder is put back when
    ``target`` is missing (killed between the two renames of :func:`publish_dir`), else removed.
    """
    import shutil

    target = Path(target)
    parent = target.parent
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for p in sorted(parent.glob(f".{glob.escape(target.name)}.*-*")):
        kind = p.name[len(target.name) + 2:].split("-", 1)[0]
        if kind == "old" and not os.path.lexists(target):
            os.rename(p, target)
            continue
        if kind in ("old", "staging") and p.is_dir() and not _owner_alive(p):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _owner_alive(path: Path) -> bool:
    """Whether the process that made this staging folder (pid in its name) is still running (not us)."""
    try:
        pid = int(path.name.rsplit(".", 1)[-1].split("-")[1])
    except (IndexError, ValueError):
        return False
    return pid != os.getpid() and _pid_alive(pid)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------- test hook
_FAULT_HITS: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Test hook: ``EDGECNN_FAULT_POINT=name`` kills this process here (``EDGECNN_FAULT_SIGNAL``: KILL, TERM, INT),
    the ``EDGECNN_FAULT_AFTER``-th time (default 1st) the point is reached.

    Used by ``tests/faults`` to stop a command at a known stage; does nothing unless the variable names this point.
    """
    if os.environ.get("EDGECNN_FAULT_POINT") != name:
        return
    _FAULT_HITS[name] = _FAULT_HITS.get(name, 0) + 1
    if _FAULT_HITS[name] < int(os.environ.get("EDGECNN_FAULT_AFTER", "1")):  # the Nth time this point is reached
        return
    import signal

    sig = getattr(signal, "SIG" + os.environ.get("EDGECNN_FAULT_SIGNAL", "KILL").upper())
    os.kill(os.getpid(), sig)
    if sig == signal.SIGKILL:
        __import__("time").sleep(5)  # never go on past the point (a caught signal is handled at the next bytecode)


def path_size(path: str | os.PathLike[str]) -> int:
    """Bytes of a file, or of every file under a folder (a SavedModel): the one size of an artifact.

    ``converters`` keeps its own copy, since it never imports edgecnn (rule 1).
    """
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


#: The one size unit: a megabyte is 10**6 bytes everywhere (export, info, bench, demo; sizes and memory).
MB = 1_000_000


def human_size(n: float) -> str:
    """``4.6 MB``: bytes in decimal units (B, kB, MB, GB), the same figure every command prints."""
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
