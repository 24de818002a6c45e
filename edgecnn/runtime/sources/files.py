"""Finite sources (image files, folders, globs, video files): never drop a frame.

Folders and globs are decoded (and preprocessed) by a pool of worker threads, in order, a bounded window ahead of
the consumer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from edgecnn.errors import DataError, SourceError
from edgecnn.imaging import bgr_to_rgb, decode_image
from edgecnn.lazy import cv2
from edgecnn.runtime.sources.base import Frame, Source, Transform

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".3gp", ".ts", ".mjpeg", ".mjpg"})


class ImageFilesSource(Source):
    """Image files decoded in order by worker threads; an undecodable file yields a Frame with ``error``."""

    kind = "images"

    def __init__(self, files: list[Path], name: str, workers: int = 2, transform: Transform | None = None,
                 keep_image: bool = False, prefetch: int = 64) -> None:
        super().__init__(name)
        self.files = files
        self.total = len(files)
        self.workers = max(1, workers)
        self.transform = transform
        self.keep_image = keep_image or transform is None
        self.prefetch = max(prefetch, self.workers * 4)

    def _load(self, index: int) -> Frame:
        path = self.files[index]
        t0 = time.perf_counter()
        frame = Frame(index=index, source=str(path), t_capture=t0)
        try:
            # OpenCV's decoders release the GIL, which only pays with several workers; one image (or one
            # worker) decodes with Pillow, the same pixels (tested per format) without importing OpenCV.
            rgb = decode_image(path, opencv=self.workers > 1)
            if self.transform is not None:
                frame.tensor = self.transform(rgb)
            if self.keep_image:
                frame.image = rgb
        except DataError as exc:
            frame.error = str(exc)
        frame.pre_ms = (time.perf_counter() - t0) * 1000.0
        return frame

    def __iter__(self) -> Iterator[Frame]:
        if self.workers == 1:
            for i in range(len(self.files)):
                if self._stop.is_set():
                    return
                yield self._load(i)
            return
        # Work is handed out in chunks: one future per file costs a thread hand-off per image, which on
        # small images costs more than the decoding it parallelises.
        from concurrent.futures import ThreadPoolExecutor

        chunk = max(1, min(self.CHUNK, -(-len(self.files) // (self.workers * 2))))
        with ThreadPoolExecutor(self.workers, thread_name_prefix="edgecnn-decode") as pool:
            pending: deque = deque()
            nxt = 0
            try:
                while True:
                    while (nxt < len(self.files) and len(pending) * chunk < self.prefetch
                           and not self._stop.is_set()):
                        pending.append(pool.submit(self._load_many, nxt, min(nxt + chunk, len(self.files))))
                        nxt += chunk
                    if not pending or self._stop.is_set():
                        return
                    yield from pending.popleft().result()
            finally:
                for fut in pending:
                    fut.cancel()

    CHUNK = 8

    def _load_many(self, start: int, stop: int) -> list[Frame]:
        return [self._load(i) for i in range(start, stop) if not self._stop.is_set()]


class VideoFileSource(Source):
    """A video file read frame by frame (no frame is dropped)."""

    kind = "video"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        self.cap = cv2.VideoCapture(str(path))
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok or first is None:
            self.cap.release()
            raise SourceError(
                f"Cannot decode video {path}: OpenCV could not read a frame (corrupt file or unsupported codec)."
            )
        self._first = first
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = n if n > 0 else None
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 30.0

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        frame = self._first
        try:
            while frame is not None and not self._stop.is_set():
                t0 = time.perf_counter()
                yield Frame(index=index, source=self.name, image=bgr_to_rgb(frame), t_capture=t0)
                index += 1
                ok, frame = self.cap.read()
                if not ok:
                    break
        finally:
            self.cap.release()

    def close(self) -> None:
        super().close()


#: Suffixes of a file that lists image paths (``--source LIST.txt``) and of a Parquet table of them.
LIST_SUFFIXES = frozenset({".txt", ".lst"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
#: Columns of a Parquet path table that hold the paths, tried in this order.
PATH_COLUMNS = ("path", "source", "image", "file")


def _resolve_listed(entries: list[str], base: Path) -> list[Path]:
    """Listed paths as given; a relative one is relative to the folder of the list (as YOLO's data lists)."""
    out = []
    for entry in entries:
        p = Path(entry).expanduser()
        out.append(p if p.is_absolute() else base / p)
    return out


def read_path_list(path: Path) -> list[Path]:
    """Image paths of a text list: one per line, in the list's order; blank lines and ``#`` comments ignored.

    A listed path that is missing or not an image is kept: its run row says ``skipped`` and why, so every listed
    input has a row.

    Raises:
        DataError: unreadable or empty list.
    """
    try:  # a listed name that is not valid UTF-8 is kept as its bytes (surrogateescape), as os.listdir gives it
        from edgecnn.fileio import read_regular

        text = read_regular(path).decode("utf-8", "surrogateescape")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read the path list {path}: {exc}. Expected a UTF-8 text file, one image path "
                        f"per line.") from exc
    entries = [ln.strip() for ln in text.splitlines()]
    files = _resolve_listed([e for e in entries if e and not e.startswith("#")], path.parent)
    if not files:
        raise DataError(f"The path list {path} names no images; expected one image path per line.")
    return files


def read_path_table(path: Path) -> list[Path]:
    """Image paths of a Parquet table's path column (``path``, ``source``, ``image`` or ``file``), in row order.

    Raises:
        MissingDependencyError: pyarrow is not installed.
        DataError: unreadable file, no path column, or no rows.
    """
    from edgecnn.errors import require

    require("pyarrow", "ray", "to read a Parquet list of paths")
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        column = next((c for c in PATH_COLUMNS if c in schema.names), None)
        if column is None:
            raise DataError(f"Expected a column named one of {list(PATH_COLUMNS)} holding image paths in {path}; "
                            f"it has {schema.names}.")
        values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several types for a bad file)
        raise DataError(f"Cannot read {path} as Parquet: {str(exc).splitlines()[0]}.") from exc
    if any(not isinstance(v, str) or not v for v in values):
        raise DataError(f"Expected non-empty text paths in column {column!r} of {path}; found a null or non-text "
                        f"value.")
    if not values:
        raise DataError(f"{path} has no rows; expected one image path per row.")
    return _resolve_listed(values, path.parent)
