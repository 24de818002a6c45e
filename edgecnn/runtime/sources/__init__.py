"""Input sources for ``edgecnn run``: image files, folders, globs, video files, cameras, streams, pipelines.

Two kinds of source, with opposite priorities:

* **Finite sources** (:mod:`.files`: image file, folder, glob, video file) never drop a frame.
* **Live sources** (:mod:`.live`: camera index, RTSP/HTTP stream, GStreamer pipeline, picamera2, synthetic test
  pattern) keep only the newest frame and reconnect with back-off.

:mod:`.kinds` holds the table of source kinds that :func:`open_source` dispatches through; :mod:`.base` the
:class:`Frame` and :class:`Source` they share. Credentials in stream URLs are masked (:func:`mask_url`) wherever a
source is named.
"""

from edgecnn.runtime.sources.base import Frame, Source, Transform, mask_url, quiet_opencv
from edgecnn.runtime.sources.files import VIDEO_EXTENSIONS, ImageFilesSource, VideoFileSource
from edgecnn.runtime.sources.kinds import SOURCE_KINDS, OpenOptions, SourceKind, open_source, source_kind
from edgecnn.runtime.sources.live import (
    CAMERA_MAP_ENV,
    PROBE_INDICES,
    STREAM_SCHEMES,
    LiveSource,
    OpenCVSource,
    Picamera2Source,
    SyntheticSource,
    camera_map,
    is_gstreamer_pipeline,
    is_stream_url,
    open_camera,
    probe_cameras,
)

__all__ = [
    "CAMERA_MAP_ENV",
    "PROBE_INDICES",
    "SOURCE_KINDS",
    "STREAM_SCHEMES",
    "VIDEO_EXTENSIONS",
    "Frame",
    "ImageFilesSource",
    "LiveSource",
    "OpenCVSource",
    "OpenOptions",
    "Picamera2Source",
    "Source",
    "SourceKind",
    "SyntheticSource",
    "Transform",
    "VideoFileSource",
    "camera_map",
    "is_gstreamer_pipeline",
    "is_stream_url",
    "mask_url",
    "open_camera",
    "open_source",
    "probe_cameras",
    "quiet_opencv",
    "source_kind",
]
