"""The table of source kinds: what ``--source``/``--camera`` text means, tried in order, and how each kind opens.

:data:`SOURCE_KINDS` is the one place a source kind is named. :func:`open_source` walks it: the first row whose
``matches`` accepts the text opens it. A new kind of input is added by adding one row.
"""

from __future__ import annotations

import glob as globlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import DataError, SourceError
from edgecnn.imaging import IMAGE_EXTENSIONS, is_image_file, list_images
from edgecnn.lazy import cv2
from edgecnn.runtime.sources.base import Source, Transform, mask_url
from edgecnn.runtime.sources.files import (
    LIST_SUFFIXES,
    PARQUET_SUFFIXES,
    VIDEO_EXTENSIONS,
    ImageFilesSource,
    VideoFileSource,
    read_path_list,
    read_path_table,
)
from edgecnn.runtime.sources.live import (
    LiveSource,
    OpenCVSource,
    Picamera2Source,
    SyntheticSource,
    gstreamer_available,
    is_gstreamer_pipeline,
    is_stream_url,
    open_camera,
    started,
)


@dataclass(frozen=True)
class OpenOptions:
    """Settings every kind may use when it opens (each reads the ones that apply to it)."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    workers: int = 2
    transform: Transform | None = None
    keep_image: bool = False
    reconnect_tries: int = 5


@dataclass(frozen=True)
class SourceKind:
    """One row of the table.

    Attributes:
        name: The kind's name (``camera``, ``stream``, ``folder``...).
        spec: How a user writes it, for help and errors.
        live: Whether it is read on a capture thread keeping only the newest frame.
        matches: Whether a ``--source`` text is this kind.
        open: Open the text as this kind.
    """

    name: str
    spec: str
    live: bool
    matches: Callable[[str], bool]
    open: Callable[[str, OpenOptions], Source]


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _open_picamera2(text: str, o: OpenOptions) -> Source:
    num = int(text.split(":", 1)[1]) if ":" in text else 0
    src: LiveSource = Picamera2Source(num, o.width, o.height, o.fps, reconnect_tries=o.reconnect_tries)
    src.start()
    return src


def _open_synthetic(text: str, o: OpenOptions) -> Source:
    parts = text.split(":")
    try:
        rate = float(parts[1]) if len(parts) > 1 and parts[1] else 30.0
        w, h = (int(v) for v in parts[2].lower().split("x")) if len(parts) > 2 else (o.width or 320, o.height or 240)
    except ValueError as exc:
        raise SourceError(f"Expected synthetic[:FPS[:WxH]]; received {text!r}.") from exc
    src = SyntheticSource(rate, w, h, reconnect_tries=o.reconnect_tries)
    src.start()
    return src


def _open_stream(text: str, o: OpenOptions) -> Source:
    return started(OpenCVSource(text, f"stream {mask_url(text)}", api=cv2.CAP_FFMPEG, reconnect_tries=o.reconnect_tries),
                   f"Cannot open stream {mask_url(text)}: check the URL, credentials and network.")


def _open_pipeline(text: str, o: OpenOptions) -> Source:
    if not gstreamer_available():
        raise SourceError(
            "This OpenCV build has no GStreamer support (opencv-python wheels have none); install the system "
            "OpenCV (apt install python3-opencv) and create the venv with --system-site-packages."
        )
    return started(OpenCVSource(text, f"pipeline {mask_url(text)}", api=cv2.CAP_GSTREAMER,
                                reconnect_tries=o.reconnect_tries),
                   f"Cannot open GStreamer pipeline {mask_url(text)}; test it with gst-launch-1.0.")


def _open_glob(text: str, o: OpenOptions) -> Source:
    files = sorted(Path(p) for p in globlib.glob(os.path.expanduser(text), recursive=True))
    files = [p for p in files if p.is_file() and is_image_file(p)]
    if not files:
        raise DataError(f"No image files match {text!r} (extensions {sorted(IMAGE_EXTENSIONS)}).")
    return ImageFilesSource(files, text, o.workers, o.transform, o.keep_image)


def _open_folder(text: str, o: OpenOptions) -> Source:
    path = _path(text)
    files = list_images(path)
    if not files:
        raise DataError(f"No images in folder {path} (looked recursively for {sorted(IMAGE_EXTENSIONS)}).")
    return ImageFilesSource(files, str(path), o.workers, o.transform, o.keep_image)


def _is_file_with(text: str, suffixes: frozenset[str]) -> bool:
    path = _path(text)
    return path.exists() and not path.is_dir() and path.suffix.lower() in suffixes


#: Every kind of input, in the order a ``--source`` text is tried.
SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind("camera", "N (camera index)", True, str.isdigit,
               lambda t, o: open_camera(int(t), o.width, o.height, o.fps, o.reconnect_tries)),
    SourceKind("picamera2", "picamera2[:N]", True, lambda t: t.lower() == "picamera2" or t.lower().startswith("picamera2:"),
               _open_picamera2),
    SourceKind("synthetic", "synthetic[:FPS[:WxH]]", True,
               lambda t: t.lower() == "synthetic" or t.lower().startswith("synthetic:"), _open_synthetic),
    SourceKind("stream", "rtsp:// | http(s):// | ... URL", True, is_stream_url, _open_stream),
    SourceKind("pipeline", "GStreamer pipeline ending in appsink", True, is_gstreamer_pipeline, _open_pipeline),
    SourceKind("glob", "GLOB (quoted)", False, lambda t: any(ch in t for ch in "*?[") and not _path(t).exists(), _open_glob),
    SourceKind("folder", "FOLDER (recursive)", False, lambda t: _path(t).is_dir(), _open_folder),
    SourceKind("list", "LIST.txt (one image path per line)", False, lambda t: _is_file_with(t, LIST_SUFFIXES),
               lambda t, o: ImageFilesSource(read_path_list(_path(t)), str(_path(t)), o.workers, o.transform,
                                             o.keep_image)),
    SourceKind("parquet", "FILE.parquet (a 'path' column)", False, lambda t: _is_file_with(t, PARQUET_SUFFIXES),
               lambda t, o: ImageFilesSource(read_path_table(_path(t)), str(_path(t)), o.workers, o.transform,
                                             o.keep_image)),
    SourceKind("image", "IMAGE file", False, lambda t: _is_file_with(t, IMAGE_EXTENSIONS),
               lambda t, o: ImageFilesSource([_path(t)], str(_path(t)), 1, o.transform, o.keep_image)),
    SourceKind("video", "VIDEO file", False, lambda t: _is_file_with(t, VIDEO_EXTENSIONS),
               lambda t, o: VideoFileSource(_path(t))),
)


def source_kind(text: str) -> SourceKind | None:
    """The first kind whose pattern accepts ``text`` (None when none does)."""
    return next((k for k in SOURCE_KINDS if k.matches(text)), None)


def open_source(
    source: str | os.PathLike[str] | None = None,
    camera: int | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    workers: int = 2,
    transform: Transform | None = None,
    keep_image: bool = False,
    reconnect_tries: int = 5,
) -> Source:
    """Open whatever ``--source``/``--camera`` names, through :data:`SOURCE_KINDS`.

    Args:
        source: Image file, folder (recursive), glob, video file, stream URL, GStreamer pipeline,
            ``picamera2[:N]``, ``synthetic[:FPS[:WxH]]``, or a camera index as text.
        camera: Camera index (mutually exclusive with ``source``).
        width, height, fps: Capture settings for cameras.
        workers: Decoding threads for folders and globs.
        transform: Preprocessing run on the decoding threads for image files (RGB → model input).
        keep_image: Keep decoded RGB images of files (for ``--save``/``--show``).
        reconnect_tries: Reopen attempts of a live source before giving up.

    Raises:
        SourceError: both or neither given, unknown/undecodable/unopenable source.
        DataError: empty folder or glob.
    """
    if source is not None and camera is not None:
        raise SourceError("Expected --camera or --source, not both; received both.")
    if source is None and camera is None:
        raise SourceError("Expected an input: --source FILE|FOLDER|GLOB|VIDEO|URL|PIPELINE or --camera N.")
    if camera is not None:
        return open_camera(int(camera), width, height, fps, reconnect_tries)
    options = OpenOptions(width, height, fps, workers, transform, keep_image, reconnect_tries)
    text = str(source)
    kind = source_kind(text)
    if kind is not None:
        return kind.open(text, options)
    path = _path(text)
    if not path.exists():
        raise SourceError(f"Source not found: {text} (expected a file, folder, glob, URL or camera index).")
    raise SourceError(
        f"Unknown source type {path.name!r}: expected an image ({sorted(IMAGE_EXTENSIONS)}), a video "
        f"({sorted(VIDEO_EXTENSIONS)}), a list of paths ({sorted(LIST_SUFFIXES)}) or a Parquet table of paths "
        f"({sorted(PARQUET_SUFFIXES)})."
    )
