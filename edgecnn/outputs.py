"""Output paths are checked before any work starts: no input is ever an output, and every output can be written.

Every command that writes (``run --save-csv/--save-jsonl/--save``, ``export --out``, ``train --project``,
``bench --report``, ``evaluate --report/--json``, ``parity --json``, ``devices service --output``) calls
:func:`check_outputs` with its outputs and its inputs before loading a model or reading data, so a typo
can never turn a model, an image or a previous run's log into an output, and a read-only or full disk is
reported in one line before an hour of training or benchmarking instead of after it.

The module also words OS failures (:func:`os_error_message`): the CLI frame prints one line naming the path
and what to do for every ``OSError``/``MemoryError`` that reaches it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import ConfigError, EdgeCNNError

PathLike = str | os.PathLike[str]


class OutputConflictError(ConfigError):
    """An output path is one of the command's inputs, or two outputs are the same file (exit 2)."""


class OutputSymlinkError(ConfigError):
    """An output path is a symlink the command was not told to follow (exit 2)."""


class OutputPathError(EdgeCNNError):
    """An output cannot be written: read-only, no permission, no space, a file where a folder is needed (exit 1)."""


@dataclass(frozen=True)
class _Where:
    option: str
    path: Path
    real: Path
    ident: tuple[int, int] | None  # (st_dev, st_ino) when it exists
    is_dir: bool


def _where(option: str, path: PathLike) -> _Where:
    p = Path(path).expanduser()
    real = Path(os.path.realpath(p))
    try:
        st = os.stat(p)
        ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        is_dir = os.path.isdir(p)
    except OSError:
        ident, is_dir = None, False
    return _Where(option, p, real, ident, is_dir)


def _same(a: _Where, b: _Where) -> bool:
    return a.real == b.real or (a.ident is not None and a.ident == b.ident)


def _inside(child: _Where, folder: _Where) -> bool:
    return folder.is_dir and (child.real == folder.real or folder.real in child.real.parents)


def check_outputs(
    outputs: Mapping[str, PathLike | None],
    inputs: Mapping[str, PathLike | Iterable[PathLike] | None] | None = None,
    *,
    folders: Iterable[str] = (),
    writable: bool = True,
    follow_symlinks: bool | None = None,
) -> None:
    """Refuse outputs that are inputs or each other, and outputs that cannot be written; before any work.

    Args:
        outputs: Option name (``"--save-csv"``) → path (None: not given). Files unless named in ``folders``.
        inputs: Option name (``"MODEL"``, ``"--source"``) → path or paths the command reads (files or folders).
        folders: The output options that are folders (``--save``, ``--out``, ``--project``).
        writable: Also check that each output can be written here (off for outputs of another machine, such as
            the paths inside a systemd unit).
        follow_symlinks: True lets an output path be a symlink (``--follow-symlinks``); False refuses one and names
            the flag; None (a command without the flag) refuses one and asks for the real path.

    Raises:
        OutputConflictError: an output resolves (path, symlink or hard link) to an input, lies inside an input
            folder while being a folder of outputs itself, contains an input file it would write over, or is the
            same as another output (exit 2).
        OutputPathError: an output's folder cannot be created or written (read-only file system, permissions,
            a file in the way, no space left), or a file output is an existing folder (exit 1).
        OutputSymlinkError: an output path is a symlink (dangling or not) and ``follow_symlinks`` is not True: a
            link planted where a log goes would make edgecnn create or append to its target (exit 2).
    """
    folder_opts = set(folders)
    outs = [_where(k, v) for k, v in outputs.items() if v not in (None, "")]
    ins: list[_Where] = []
    for k, v in (inputs or {}).items():
        if v in (None, ""):
            continue
        values = [v] if isinstance(v, str | os.PathLike) else list(v)  # type: ignore[arg-type]
        ins += [_where(k, x) for x in values if x not in (None, "")]
    for o in outs:
        for i in ins:
            if _same(o, i):
                raise OutputConflictError(
                    f"{o.option} {o.path} is the same file as the input {i.option} {i.path}; writing it would destroy "
                    f"the input. Choose another {o.option} path.")
            if o.option in folder_opts and not i.is_dir and i.ident is not None and o.real == i.real.parent:
                raise OutputConflictError(
                    f"{o.option} {o.path} is the folder of the input {i.option} {i.path}; outputs written there would "
                    f"mix with (and could replace) the inputs. Choose another folder.")
            if o.option in folder_opts and _inside(o, i) and i.path.is_dir():
                raise OutputConflictError(
                    f"{o.option} {o.path} is inside the input folder {i.option} {i.path}; outputs written there would be "
                    f"read as inputs by the next run. Choose a folder outside it.")
            if o.option not in folder_opts and _inside(o, i) and _is_image_name(o.path):
                raise OutputConflictError(
                    f"{o.option} {o.path} is inside the input folder {i.option} {i.path}; choose a path outside it.")
    for a_i, a in enumerate(outs):
        for b in outs[a_i + 1:]:
            if _same(a, b):
                raise OutputConflictError(
                    f"{a.option} and {b.option} are the same path ({a.path}); each output needs its own file.")
    for k, v in outputs.items():
        if v not in (None, "") and not follow_symlinks and os.path.islink(Path(v).expanduser()):
            target = os.readlink(Path(v).expanduser())
            fix = ("pass --follow-symlinks if that is intended" if follow_symlinks is False
                   else "give the real path instead")
            raise OutputSymlinkError(f"{k} {v} is a symlink (to {target}); outputs never follow a symlink they did not "
                                     f"expect: {fix}.")
    for o in outs if writable else ():
        _check_writable(o, is_folder=o.option in folder_opts)


def _is_image_name(path: Path) -> bool:
    from edgecnn.imaging import IMAGE_EXTENSIONS

    return path.suffix.lower() in IMAGE_EXTENSIONS


def _check_writable(o: _Where, is_folder: bool) -> None:
    p = o.path
    if p.exists():
        if is_folder and not p.is_dir():
            raise OutputPathError(f"{o.option} {p} is a file; expected a folder (or a path that does not exist yet).")
        if not is_folder and p.is_dir():
            raise OutputPathError(f"{o.option} {p} is a folder; expected a file path, e.g. {p / 'results'}"
                                  f"{'.csv' if 'csv' in o.option else ''}.")
        target = p if is_folder else p.parent
        if not is_folder and not os.access(p, os.W_OK):
            _raise_unwritable(o, p, _access_errno(p))
    else:
        target = p.parent
    # the nearest folder that exists must be a writable folder (the rest is created below it)
    probe = Path(os.path.abspath(target))
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{o.option} {p}: {probe} is a file, not a folder; choose a path whose folders are "
                              "folders.")
    if not os.access(probe, os.W_OK | os.X_OK):
        _raise_unwritable(o, probe, _access_errno(probe))
    try:
        st = os.statvfs(probe)
    except OSError:
        return
    if st.f_flag & os.ST_RDONLY:
        _raise_unwritable(o, probe, errno.EROFS)
    if st.f_bavail == 0 and os.geteuid() != 0 or st.f_bfree == 0:
        raise OutputPathError(f"{o.option} {p}: no space left on the file system holding {probe}; free some space or "
                              "write elsewhere.")


def _access_errno(path: Path) -> int:
    try:
        st = os.statvfs(path)
        if st.f_flag & os.ST_RDONLY:
            return errno.EROFS
    except OSError:
        pass
    return errno.EACCES


def _raise_unwritable(o: _Where, where: Path, code: int) -> None:
    if code == errno.EROFS:
        raise OutputPathError(f"{o.option} {o.path}: {where} is on a read-only file system; choose a writable "
                              "location.")
    raise OutputPathError(f"{o.option} {o.path}: no permission to write in {where}; choose a folder you can write "
                          "to, or fix its permissions.")


# ---------------------------------------------------------------------- OS failures in one line
_ADVICE = {
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.ENOSPC: "no space left on the device; free some space or write somewhere else",
    errno.EDQUOT: "disk quota exceeded; free some space or write somewhere else",
    errno.EFBIG: "the file grew past the size limit (ulimit -f) or the file system's maximum; raise the limit or "
                 "write somewhere else",
    errno.EACCES: "permission denied; choose a path you can write to or fix its permissions",
    errno.EPERM: "operation not permitted; choose a path you can write to or fix its permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.EISDIR: "it is a folder, where a file was expected; give a file path",
    errno.ENOENT: "it does not exist; check the path",
    errno.ENAMETOOLONG: "the path is too long; use a shorter one",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n)",
    errno.ENOMEM: "out of memory; use a smaller --img-size/--batch or free memory",
    errno.EIO: "input/output error from the device; check the disk",
}


def os_error_message(exc: OSError | MemoryError) -> str:
    """One line for an OS failure: what failed, on which path, and what to do."""
    if isinstance(exc, MemoryError):
        detail = str(exc).strip()
        detail = f" ({detail.splitlines()[0][:160]})" if detail else ""
        return (f"Out of memory{detail}; use a smaller --img-size, --batch or dataset, or free memory, and run "
                "the command again.")
    code = exc.errno
    paths = [str(p) for p in (exc.filename, exc.filename2) if p not in (None, "")]
    what = exc.strerror or str(exc).strip() or type(exc).__name__
    where = f" {paths[0]}" + (f" → {paths[1]}" if len(paths) > 1 else "") if paths else ""
    advice = _ADVICE.get(code or -1, "")
    if not paths and not exc.strerror:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"OS error: {text}" + (f"; {advice}." if advice else ".")
    return f"Cannot write or read{where}: {what}" + (f" — {advice}." if advice else ".")


def wrap_os_error(exc: OSError, path: PathLike) -> OSError:
    """The same OS error with ``path`` attached (``os.write`` and friends do not name the file)."""
    new = OSError(exc.errno, exc.strerror or str(exc), str(path))
    new.__cause__ = exc
    return new


__all__ = ["OutputConflictError", "OutputPathError", "OutputSymlinkError", "check_outputs", "os_error_message", "wrap_os_error"]
