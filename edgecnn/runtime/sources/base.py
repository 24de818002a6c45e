"""What every source yields and shares: :class:`Frame`, the :class:`Source` base, URL masking, quiet OpenCV probing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from edgecnn.lazy import cv2

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass
class Frame:
    """One input: an image from a file or a frame from a video/camera/stream.

    Attributes:
        index: 0-based position in the source (for live sources: the capture sequence number).
        source: File path, or the (masked) source name for videos and live sources.
        image: RGB uint8 HxWx3, or None when it was not kept or could not be decoded.
        tensor: The preprocessed model input (uint8 HxWxC) when a transform ran on a worker thread.
        error: Why this input could not be decoded (it is then skipped and reported).
        t_capture: ``time.perf_counter()`` when the frame was captured or decoding started.
        pre_ms: Milliseconds spent decoding/converting/resizing it.
    """

    index: int
    source: str
    image: np.ndarray | None = None
    tensor: np.ndarray | None = None
    error: str | None = None
    t_capture: float = field(default_factory=time.perf_counter)
    pre_ms: float = 0.0


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own ``[ WARN:0@...]`` lines while probing cameras/streams; our error says it once."""
    try:
        from cv2.utils import logging as cv_logging

        previous = cv_logging.getLogLevel()
        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError, cv2.error):
        yield
        return
    try:
        yield
    finally:
        cv_logging.setLogLevel(previous)


def mask_url(text: str) -> str:
    """Hide ``user:password@`` and secret query/property values in a URL or pipeline string (one value: a password
    may hold any character); :func:`edgecnn.masking.mask_secrets` does the work."""
    from edgecnn.masking import mask_secrets

    return mask_secrets(text, whole=True)


class Source:
    """Base class: iterate :class:`Frame` objects; ``stop()`` ends iteration early from any thread."""

    live: bool = False
    kind: str = "source"

    def __init__(self, name: str) -> None:
        self.name = name
        self.total: int | None = None
        self.fps: float | None = None
        self.dropped = 0
        self.reconnects = 0
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()

    def describe(self) -> str:
        return f"{self.kind} {self.name}"
