"""Live sources (camera index, RTSP/HTTP stream, GStreamer pipeline, picamera2, synthetic test pattern).

They are read on a capture thread that keeps only the newest frame: latency over completeness. When a live
source stops delivering it is reopened with exponential back-off for a bounded number of tries; after that
iteration raises :class:`~edgecnn.errors.SourceError`.

Tests and demos can map a camera index to a video file: ``EDGECNN_CAMERA_MAP="0=/path/clip.avi,1=..."``;
the file is then read like a camera (paced at its frame rate, reopened when it ends).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import MissingDependencyError, SourceError
from edgecnn.imaging import bgr_to_rgb
from edgecnn.lazy import cv2
from edgecnn.runtime.sources.base import Frame, Source, quiet_opencv

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
CAMERA_MAP_ENV = "EDGECNN_CAMERA_MAP"
PROBE_INDICES = range(10)


class LiveSource(Source):
    """A live source read on a capture thread that keeps only the newest frame.

    Subclasses implement :meth:`open` (returning a reader callable giving a BGR/RGB frame or None at
    failure/end) and :meth:`release`. Reconnection: when the reader fails, the source is reopened after
    ``backoff * 2**k`` seconds (capped at ``max_backoff``), at most ``reconnect_tries`` times in a row.
    """

    kind = "live"
    live = True
    rgb_frames = False  # True when the reader already returns RGB

    def __init__(self, name: str, reconnect_tries: int = 5, backoff: float = 0.5, max_backoff: float = 8.0,
                 pace_fps: float | None = None) -> None:
        super().__init__(name)
        self.reconnect_tries = reconnect_tries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.pace_fps = pace_fps
        self._cond = threading.Condition()
        self._latest: tuple[int, np.ndarray, float] | None = None
        self._seq = 0
        self._failure: str | None = None
        self._done = False
        self._thread: threading.Thread | None = None
        self._reader: Callable[[], np.ndarray | None] | None = None

    # -- subclass hooks
    def open(self) -> Callable[[], np.ndarray | None]:
        raise NotImplementedError

    def release(self) -> None:
        pass

    # -- machinery
    def start(self) -> None:
        """Open the source (errors raise here, in the caller's thread) and start the capture thread."""
        if self._thread is None:
            self._reader = self.open()
            self._thread = threading.Thread(target=self._capture_loop, name="edgecnn-capture", daemon=True)
            self._thread.start()

    def _capture_loop(self) -> None:
        reader = self._reader
        period = 1.0 / self.pace_fps if self.pace_fps else 0.0
        next_t = time.perf_counter()
        failures = 0
        try:
            while not self._stop.is_set():
                frame = reader() if reader is not None else None
                if frame is None:
                    if self._stop.is_set():
                        break
                    self.release()
                    reader = None
                    while reader is None:
                        failures += 1
                        if failures > self.reconnect_tries:
                            self._fail(f"{self.describe()} stopped delivering frames and did not come back after "
                                       f"{self.reconnect_tries} reconnect attempts.")
                            return
                        delay = min(self.backoff * 2 ** (failures - 1), self.max_backoff)
                        from edgecnn.console import warn

                        warn(f"{self.describe()} stopped delivering; reconnecting in {delay:.1f}s "
                             f"(attempt {failures}/{self.reconnect_tries}).")
                        if self._stop.wait(delay):
                            return
                        try:
                            reader = self.open()
                        except Exception:  # noqa: BLE001  (any failed reopen is one failed attempt)
                            reader = None
                    self.reconnects += 1
                    next_t = time.perf_counter()
                    continue
                failures = 0
                now = time.perf_counter()
                with self._cond:
                    self._latest = (self._seq, frame, now)
                    self._seq += 1
                    self._cond.notify_all()
                if period:
                    next_t += period
                    delay = next_t - time.perf_counter()
                    if delay > 0:
                        self._stop.wait(delay)
                    else:
                        next_t = time.perf_counter()
        except Exception as exc:  # noqa: BLE001  (a capture thread must never die silently: the run would "end")
            self._fail(f"{self.describe()} failed while capturing: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        finally:
            self.release()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _fail(self, message: str) -> None:
        with self._cond:
            self._failure = message
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        last = -1
        while True:
            with self._cond:
                while not self._stop.is_set() and self._failure is None and not self._done and (
                    self._latest is None or self._latest[0] == last
                ):
                    self._cond.wait(0.1)
                if self._failure is not None:
                    raise SourceError(self._failure)
                if self._stop.is_set() or self._latest is None or self._latest[0] == last:
                    return
                seq, raw, t_cap = self._latest
            if last >= 0 and seq > last + 1:
                self.dropped += seq - last - 1
            last = seq
            t0 = time.perf_counter()
            image = raw if self.rgb_frames else bgr_to_rgb(raw)
            yield Frame(index=seq, source=self.name, image=image, t_capture=t_cap,
                        pre_ms=(time.perf_counter() - t0) * 1000.0)

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)


class OpenCVSource(LiveSource):
    """A camera index, a stream URL, a GStreamer pipeline or a camera mapped to a video file, via OpenCV."""

    def __init__(self, target: int | str, name: str, api: int | None = None, width: int | None = None,
                 height: int | None = None, fps: float | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.target = target
        self.api = cv2.CAP_ANY if api is None else api
        self.width, self.height, self.req_fps = width, height, fps
        self.cap: cv2.VideoCapture | None = None

    def open(self) -> Callable[[], np.ndarray | None]:
        with quiet_opencv():
            cap = cv2.VideoCapture(self.target, self.api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"Cannot open {self.describe()}.")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.req_fps:
            cap.set(cv2.CAP_PROP_FPS, self.req_fps)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else (self.req_fps or 30.0)
        self.cap = cap

        def read() -> np.ndarray | None:
            ok, frame = cap.read()
            return frame if ok and frame is not None else None

        return read

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class Picamera2Source(LiveSource):
    """A Raspberry Pi CSI camera through picamera2 (installed from apt on Raspberry Pi OS)."""

    def __init__(self, camera_num: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None, **kwargs: Any) -> None:
        super().__init__(f"picamera2:{camera_num}", **kwargs)
        self.camera_num = camera_num
        self.size = (width or 640, height or 480)
        self.fps = fps or 30.0
        self.cam: Any = None

    def open(self) -> Callable[[], np.ndarray | None]:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise MissingDependencyError(
                "picamera2 is not installed: sudo apt install python3-picamera2 and create the venv with "
                "--system-site-packages (Raspberry Pi OS)."
            ) from exc
        try:
            cam = Picamera2(self.camera_num)
            config = cam.create_video_configuration(
                main={"size": self.size, "format": "RGB888"}, controls={"FrameRate": float(self.fps)}, buffer_count=2
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:  # noqa: BLE001  (libcamera raises RuntimeError/IndexError/OSError)
            raise SourceError(f"Cannot open {self.describe()}: {exc}") from exc
        self.cam = cam

        def read() -> np.ndarray | None:
            try:
                return cam.capture_array("main")  # "RGB888" is BGR in memory, as OpenCV expects
            except Exception:  # noqa: BLE001
                return None

        return read

    def release(self) -> None:
        if self.cam is not None:
            try:
                self.cam.stop()
                self.cam.close()
            except Exception:  # noqa: BLE001
                pass
            self.cam = None


class SyntheticSource(LiveSource):
    """A moving test pattern produced at a fixed frame rate (like GStreamer's ``videotestsrc``).

    Spec: ``synthetic`` or ``synthetic:FPS`` or ``synthetic:FPS:WxH`` (e.g. ``synthetic:30:640x480``).
    """

    rgb_frames = True

    def __init__(self, fps: float = 30.0, width: int = 320, height: int = 240, **kwargs: Any) -> None:
        super().__init__(f"synthetic:{fps:g}:{width}x{height}", pace_fps=fps, **kwargs)
        self.fps = fps
        self.size = (width, height)

    def open(self) -> Callable[[], np.ndarray | None]:
        w, h = self.size
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        state = {"i": 0}

        def read() -> np.ndarray | None:
            i = state["i"]
            state["i"] += 1
            return np.roll(base, i * 4 % w, axis=1)

        return read


# ====================================================================== cameras, streams, pipelines
def camera_map() -> dict[int, str]:
    """``EDGECNN_CAMERA_MAP`` as {index: video path} (camera stand-ins for tests and demos)."""
    out: dict[int, str] = {}
    for item in filter(None, (s.strip() for s in os.environ.get(CAMERA_MAP_ENV, "").split(","))):
        key, _, value = item.partition("=")
        if key.strip().isdigit() and value:
            out[int(key)] = value.strip()
    return out


def probe_cameras(indices: range = PROBE_INDICES) -> list[int]:
    """Camera indices that open on this machine (mapped stand-ins included)."""
    found = set()
    for idx, path in camera_map().items():
        if Path(path).exists():
            found.add(idx)
    for idx in indices:
        if idx in found:
            continue
        if os.name == "posix" and not Path(f"/dev/video{idx}").exists():
            continue
        with quiet_opencv():
            cap = cv2.VideoCapture(idx, _camera_api())
            if cap.isOpened():
                found.add(idx)
            cap.release()
    return sorted(found)


def _camera_api() -> int:
    return cv2.CAP_V4L2 if os.name == "posix" and Path("/dev").exists() and os.uname().sysname == "Linux" else cv2.CAP_ANY


def open_camera(index: int, width: int | None = None, height: int | None = None, fps: float | None = None,
                reconnect_tries: int = 5) -> LiveSource:
    """A camera by index (V4L2 on Linux, buffer size 1), or its ``EDGECNN_CAMERA_MAP`` stand-in."""
    if index < 0:
        raise SourceError(f"Expected a camera index >= 0; received {index}.")
    mapped = camera_map().get(index)
    if mapped is not None:
        cap = cv2.VideoCapture(mapped)
        ok = cap.isOpened()
        file_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) if ok else 0.0
        cap.release()
        src = OpenCVSource(mapped, f"camera {index} (mapped to {mapped})", reconnect_tries=reconnect_tries,
                           pace_fps=fps or (file_fps if 0 < file_fps < 1000 else 30.0))
    else:
        src = OpenCVSource(index, f"camera {index}", api=_camera_api(), width=width, height=height, fps=fps,
                           reconnect_tries=reconnect_tries)
    try:
        src.start()
    except SourceError:
        others = [i for i in probe_cameras() if i != index]
        hint = f"cameras that open: {others}" if others else "no camera opens on this machine (checked indices 0-9)"
        raise SourceError(f"Cannot open camera {index} (/dev/video{index}); {hint}.") from None
    return src


def is_stream_url(text: str) -> bool:
    return text.lower().startswith(STREAM_SCHEMES)


def is_gstreamer_pipeline(text: str) -> bool:
    return " ! " in text or text.rstrip().endswith("appsink") or "appsink" in text.split("!")[-1]


def gstreamer_available() -> bool:
    info = cv2.getBuildInformation()
    m = re.search(r"GStreamer:\s*(\S+)", info)
    return bool(m and m.group(1).upper().startswith("YES"))


def started(src: LiveSource, failure: str) -> LiveSource:
    """Start a live source; a failure to open becomes ``failure`` (which never shows credentials)."""
    try:
        src.start()
    except SourceError:
        raise SourceError(failure) from None
    return src
