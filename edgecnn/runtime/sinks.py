"""Where ``edgecnn run`` results go: CSV/JSONL rows, annotated images or video, a preview window.

CSV and JSONL rows are appended one at a time as results are produced (a restarted run keeps earlier rows),
so a run stopped by Ctrl-C, SIGTERM, a power cut or a full disk leaves a file of complete rows (each row is
a single ``write``, cut back on failure). Annotated images and videos are written atomically (temp file +
rename) and never replace a file that exists: a clash gets ``_2``, ``_3``...
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import errno
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import ConfigError
from edgecnn.fileio import atomic_path
from edgecnn.outputs import wrap_os_error
from edgecnn.runtime.pipeline import Result

#: Cells that start with one of these are read as a formula by spreadsheets (OWASP "CSV injection"): a text cell
#: starting with one gets a leading ``'`` unless the writer is made with ``neutralize=False`` (``--csv-raw``).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: The CSV columns holding text that came from outside (file names, labels, messages).
TEXT_FIELDS = frozenset({"source", "label", "topk", "error"})

CSV_FIELDS = ("source", "index", "label", "score", "topk", "status", "error", "preprocess_ms", "inference_ms",
              "postprocess_ms", "latency_ms", "batch")
#: The CSV header: a UTC timestamp, then the result fields.
CSV_COLUMNS = ("time_utc", *CSV_FIELDS)


class RowWriter:
    """Appends one CSV or JSONL row per result; a restarted run (systemd ``Restart=``) keeps every earlier row.

    * The file is opened ``O_APPEND``; a CSV header is written only when the file is new or empty, and an existing
      file's header (or first JSON line) must match this writer's columns, else :class:`ConfigError` before any row.
    * Each row carries ``time_utc`` (ISO 8601, UTC, milliseconds).
    * Each row is one ``os.write`` of the whole encoded line. If the write fails or is short (ENOSPC, EFBIG,
      EIO), the file is truncated back to its size before the row and the error is raised with the path: a row
      is whole or absent.
    * Rows are fsynced at most every ``sync_seconds`` (a disk round trip costs ~1-5 ms: by time, not per N rows,
      so a fast folder run does not pay one per few dozen images; a power cut loses at most that much) and on close.
    """

    #: The CSV header and the text columns neutralized for spreadsheets (the station's rows have their own).
    COLUMNS: tuple[str, ...] = CSV_COLUMNS
    TEXT: frozenset[str] = TEXT_FIELDS

    def __init__(self, path: str | os.PathLike[str], fmt: str, sync_seconds: float = 1.0, *,
                 neutralize: bool = True, follow_symlinks: bool = False) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.neutralize = neutralize
        self.sync_seconds = sync_seconds
        self._synced = time.monotonic()
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fd: int | None = open_append(self.path, follow_symlinks=follow_symlinks)
        except OSError as exc:
            raise wrap_os_error(exc, self.path) from exc
        try:
            self._check_existing()
            if fmt == "csv" and os.fstat(self.fd).st_size == 0:
                self._emit(self._csv_line(self.COLUMNS))
        except BaseException:
            os.close(self.fd)
            self.fd = None
            raise

    def _check_existing(self) -> None:
        """An existing file must hold this writer's kind of rows; a torn last line (another tool) is cut off."""
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        if size == 0:
            return
        head = os.pread(self.fd, 65536, 0)  # through the descriptor opened (never a path a symlink may redirect)
        first = head[: head.find(b"\n") + 1] if b"\n" in head else head
        last_byte = os.pread(self.fd, 1, size - 1)
        what = "--save-csv" if self.fmt == "csv" else "--save-jsonl"
        if self.fmt == "csv":
            expected = self._csv_line(self.COLUMNS).encode()
            if first != expected:
                got = first.decode("utf-8", "replace").strip()[:120]
                raise ConfigError(
                    f"{what} {self.path} exists with other columns ({got!r}); expected the header "
                    f"{','.join(self.COLUMNS)!r}. Rows are appended to an existing file only when its columns match: "
                    "give a new file name.")
        else:
            try:
                row = json.loads(first)
                ok = isinstance(row, dict) and "source" in row and "status" in row
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"{what} {self.path} exists and is not an edgecnn JSON-lines result file; rows are "
                                  "appended only to such a file: give a new file name.")
        if last_byte != b"\n":  # a line cut by a crash of something else: not a row, drop it
            start = max(0, size - (1 << 20))
            tail = os.pread(self.fd, size - start, start)
            keep = start + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
            os.ftruncate(self.fd, keep)
            from edgecnn.console import warn

            warn(f"{self.path} ended with a partial line ({size - keep} bytes); removed it before appending.")

    @staticmethod
    def _csv_line(values: Any) -> str:
        return csv_line(values)

    def _emit(self, text: str) -> None:
        assert self.fd is not None
        # a file name that is not valid UTF-8 keeps its bytes (surrogateescape): see csv_line / json_line
        data = text.encode("utf-8", "surrogateescape")
        before = os.fstat(self.fd).st_size
        try:
            n = os.write(self.fd, data)
            if n != len(data):  # a short write to a regular file means the disk or the size limit is full
                raise OSError(errno.ENOSPC, f"only {n} of {len(data)} bytes written")
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, before)
            raise wrap_os_error(exc, self.path) from exc

    def write(self, result: Result) -> None:
        row = {"time_utc": _utc_now(), **result.row()}
        if self.fmt == "csv":
            row["topk"] = ";".join(f"{lbl}:{'' if s is None else f'{s:.4f}'}" for lbl, s in row["topk"])
            row["score"] = "" if row["score"] is None else f"{row['score']:.6f}"
            self._emit(csv_line([csv_cell(row[k], self.neutralize) if k in self.TEXT else row[k]
                                 for k in self.COLUMNS]))
        else:
            self._emit(json_line(row))
        self.rows += 1
        now = time.monotonic()
        if now - self._synced >= self.sync_seconds:
            assert self.fd is not None
            os.fsync(self.fd)
            self._synced = now

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.fsync(fd)
            except OSError as exc:
                raise wrap_os_error(exc, self.path) from exc
            finally:
                os.close(fd)


def csv_cell(value: Any, neutralize: bool = True) -> str:
    """A text cell as written to a result CSV: a cell that a spreadsheet would run as a formula (starting with
    ``= + - @``, a tab, CR or LF, or their full-width forms) gets a leading ``'`` (OWASP's advice; the quote shows the
    value as text). ``neutralize=False`` (``--csv-raw``) writes it as it is."""
    text = "" if value is None else str(value)
    if neutralize and text.startswith(FORMULA_START):
        return "'" + text
    return text


def csv_line(values: Any) -> str:
    """One CSV record: RFC 4180 quoting, ``\n`` ends it. A field holding ``\r`` or ``\n`` is quoted (Python's csv
    quotes ``\n`` but not a lone ``\r``, which readers take for a line end: the row would split in two), so a file
    name never tears or forges a row. Undecodable bytes of a file name stay as lone surrogates, written back as the
    original bytes by the caller's ``surrogateescape`` encoding: the name is kept exactly."""
    values = list(values)
    buf = io.StringIO()
    quote_all = any(isinstance(v, str) and ("\r" in v or "\n" in v) for v in values)
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerow(values)
    return buf.getvalue()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def json_line(row: dict[str, Any]) -> str:
    """One JSON line: NaN/Inf become ``null`` (the row's status says why), so every line is valid JSON; a file
    name that is not valid UTF-8 is written with its undecodable bytes as ``\\udcNN`` escapes, which ``json.loads``
    reads back to the ``surrogateescape`` string: ``os.fsencode(row["source"])`` is the exact name."""
    text = json.dumps(_finite(row), ensure_ascii=False, allow_nan=False)
    if any("\udc80" <= c <= "\udcff" for c in text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text + "\n"


def open_append(path: str | os.PathLike[str], follow_symlinks: bool = False) -> int:
    """Open a result log for appending: created ``0o666 & ~umask`` when new, never through a symlink unless
    ``follow_symlinks`` (``O_NOFOLLOW``), and only a regular file (a FIFO or a device is refused before it could
    block or fill memory).

    Raises:
        OSError: as ``os.open`` (ELOOP for a symlink), or EINVAL naming what the path is instead of a file.
    """
    import stat

    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        st = None
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"not a regular file ({_file_kind(st.st_mode)}); expected a file path",
                      str(path))
    fd = os.open(path, flags, 0o666)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"not a regular file ({_file_kind(st.st_mode)}); expected a file path", str(path))
    os.set_blocking(fd, True)
    return fd


def _file_kind(mode: int) -> str:
    import stat

    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "not a regular file"


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def free_path(path: Path, taken: set[Path] | None = None) -> Path:
    """``path``, or ``stem_2.ext``, ``stem_3.ext``... : the first name neither on disk nor in ``taken``."""
    taken = taken or set()
    out, n = path, 2
    while out in taken or os.path.lexists(out):
        out = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return out


class ParquetWriter:
    """Rows with the CSV's columns in a Parquet file (needs pyarrow: ``pip install 'edgecnn[ray]'``).

    Parquet cannot be appended row by row, so rows are written in row groups to a temporary file beside
    ``path``, which is renamed into place by :meth:`close`; a run that dies leaves no truncated file.
    ``topk`` is a list of ``{label, score}`` structs and ``score`` is null for skipped inputs.
    """

    def __init__(self, path: str | os.PathLike[str], group_rows: int = 8192) -> None:
        from edgecnn.errors import require

        pa = require("pyarrow", "ray", "for --save-parquet")
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.group_rows = group_rows
        self.rows = 0
        self._buffer: list[dict[str, Any]] = []
        self._pa = pa
        self.schema = self._schema(pa)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(str(self._tmp), self.schema)

    def _schema(self, pa: Any) -> Any:
        """The columns (the station's rows have their own)."""
        return pa.schema([
            ("source", pa.string()), ("index", pa.int64()), ("label", pa.string()), ("score", pa.float64()),
            ("topk", pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())]))),
            ("status", pa.string()), ("error", pa.string()), ("preprocess_ms", pa.float64()),
            ("inference_ms", pa.float64()), ("postprocess_ms", pa.float64()), ("latency_ms", pa.float64()),
            ("batch", pa.int64()),
        ])

    def write(self, result: Result) -> None:
        row = result.row()
        row["topk"] = [{"label": lbl, "score": s} for lbl, s in row["topk"]]
        for key in ("source", "label", "error"):  # Parquet strings are UTF-8: a name's undecodable bytes as \xNN
            if isinstance(row[key], str) and any("\udc80" <= c <= "\udcff" for c in row[key]):
                row[key] = os.fsencode(row[key]).decode("utf-8", "backslashreplace")
        self._buffer.append(row)
        self.rows += 1
        if len(self._buffer) >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(self._pa.Table.from_pylist(self._buffer, schema=self.schema))
            self._buffer = []

    def close(self) -> None:
        """Write what is buffered and publish the file."""
        if self._ctx is None:
            return
        self._flush()
        self._writer.close()
        ctx, self._ctx = self._ctx, None
        ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the temporary file: a failed job publishes no Parquet file."""
        if self._ctx is None:
            return
        try:
            self._writer.close()
        finally:
            ctx, self._ctx = self._ctx, None
            try:
                ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
            except RuntimeError:
                pass


def annotate(rgb: np.ndarray, result: Result, min_side: int = 256) -> np.ndarray:
    """A BGR copy of the image with the top-k labels drawn on it (small images are upscaled first)."""
    import cv2

    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    if min(h, w) < min_side:
        f = min_side / min(h, w)
        img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_NEAREST)
        h, w = img.shape[:2]
    scale = max(0.4, min(h, w) / 500)
    thick = max(1, round(scale * 2))
    lines = [f"{lbl} {s:.2f}" for lbl, s in result.topk] or [result.label or "?"]
    y = 0
    for i, text in enumerate(lines):
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y += th + base + 4
        cv2.rectangle(img, (0, y - th - base - 4), (tw + 8, y + 2), (0, 0, 0), -1)
        color = (0, 255, 0) if i == 0 else (200, 200, 200)
        cv2.putText(img, text, (4, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    return img


class ImageSaver:
    """Writes annotated images under a folder, mirroring the input folder's layout.

    Two inputs never share an output file: inputs that map to the same name (``a.gif`` and ``a.webp``
    both saved as PNG, or same-named files of a glob without a common folder) get ``_2``, ``_3``, ...
    """

    def __init__(self, folder: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.abspath(root)) if root and Path(root).is_dir() else None
        self.count = 0
        self._used: set[Path] = set()

    def write(self, rgb: np.ndarray, result: Result) -> None:
        src = Path(os.path.abspath(result.source))
        rel = src.relative_to(self.root) if self.root and src.is_relative_to(self.root) else Path(src.name)
        suffix = src.suffix.lower() if src.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".png"
        out = free_path(self.folder / rel.with_suffix(suffix), self._used)
        self._used.add(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        import cv2

        with atomic_path(out) as tmp:
            if not cv2.imwrite(str(tmp), annotate(rgb, result)):
                raise OSError(f"cannot write {out}")
        self.count += 1

    def close(self) -> None:
        pass


class VideoSaver:
    """Writes an annotated video (MJPG .avi, readable everywhere); renamed into place when the run ends.

    The video is written at the source's frame rate. A live source drops frames while inference is busy
    (its results' indices skip), so each annotated frame is repeated to cover the frames dropped after it:
    the video then plays in real time instead of fast-forward.
    """

    def __init__(self, folder: str | os.PathLike[str], name: str, fps: float) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = Path(name).stem if Path(name).suffix else "stream"
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "stream"
        self.path = free_path(self.folder / f"{stem}_annotated.avi")
        self.fps = fps or 30.0
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self.writer: Any = None  # cv2.VideoWriter, opened with the first frame
        self.count = 0
        self._pending: np.ndarray | None = None  # the last annotated frame, written once the next index is known
        self._last_index: int | None = None

    def write(self, rgb: np.ndarray, result: Result) -> None:
        img = annotate(rgb, result, min_side=0)
        import cv2

        if self.writer is None:
            h, w = img.shape[:2]
            self.writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"MJPG"), float(self.fps), (w, h))
            self.size = (w, h)
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size)
        if self._pending is not None and self._last_index is not None:
            self._emit(self._pending, max(1, result.index - self._last_index))
        self._pending, self._last_index = img, result.index

    def _emit(self, img: np.ndarray, times: int) -> None:
        assert self.writer is not None
        for _ in range(times):
            self.writer.write(img)
            self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            if self._pending is not None:
                self._emit(self._pending, 1)
                self._pending = None
            self.writer.release()
            self.writer = None
            self._ctx.__exit__(None, None, None)
        elif self._ctx is not None:
            try:
                self._ctx.__exit__(RuntimeError, RuntimeError("no frames"), None)
            except RuntimeError:
                pass
        self._ctx = None


def display_available() -> tuple[bool, str]:
    """(whether a window can be opened, why not)."""
    import cv2

    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY/WAYLAND_DISPLAY is not set)"
    try:
        cv2.namedWindow("edgecnn", cv2.WINDOW_NORMAL)
    except cv2.error:
        return False, "this OpenCV build has no GUI support (opencv-python-headless); pip install opencv-python"
    return True, ""


class Window:
    """A preview window; ``q`` or Esc asks the run to stop."""

    def __init__(self) -> None:
        self.closed = False

    def show(self, rgb: np.ndarray, result: Result) -> bool:
        """Show a frame; returns False when the user asked to quit."""
        import cv2

        cv2.imshow("edgecnn", annotate(rgb, result, min_side=320))
        key = cv2.waitKey(1) & 0xFF
        return key not in (ord("q"), 27)

    def close(self) -> None:
        if not self.closed:
            import cv2

            self.closed = True
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
