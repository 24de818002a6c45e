"""One station source on its own thread (:class:`SourceReader`): frames in, its regions cropped and resized to the
model's input, the newest ready in its slot for the engine (:mod:`edgecnn.station.engine`) to take."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecnn.errors import ConfigError, EdgeCNNError
from edgecnn.station.events import WHOLE_FRAME, Region

if TYPE_CHECKING:
    from edgecnn.runtime.backends import Backend
    from edgecnn.station.config import SourceConfig

#: A live source that delivered nothing for this long is reported down (an Alarm ``source_down``).
STALL_S = 5.0


@dataclass
class Ready:
    """One captured frame of one source, cropped and resized: what the engine classifies."""

    frame: int
    captured_at: float
    regions: tuple[Region, ...]
    tensors: list[np.ndarray]
    image: np.ndarray | None


class SourceReader:
    """One source on its own thread: read, crop regions, resize, keep the newest in a slot."""

    def __init__(self, config: SourceConfig, backend: Backend, options: Any, wake: threading.Condition,
                 keep_image: bool) -> None:
        self.config = config
        self.name = config.name
        self._backend = backend
        self._options = options
        self._wake = wake
        self._keep_image = keep_image
        self.slot: Ready | None = None
        self.frames = 0  # taken by the engine
        self.captured = 0
        self.dropped = 0
        self.error = ""
        self.fatal: EdgeCNNError | None = None
        self.done = False
        self.connected = False
        self.last_frame_at = 0.0
        self._times: deque[float] = deque(maxlen=30)
        self._source: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"edgecnn-source-{self.name}", daemon=True)
        self._size: tuple[int, int] | None = None
        self._block = False
        self.reopens = 0  # failed first opens retried
        self._boxes: tuple[Region, ...] = ()

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        self._thread.start()

    def _open(self) -> Any:
        from edgecnn.runtime.sources import open_source

        c, o = self.config, self._options
        return open_source(c.source, c.camera, c.width or o.width, c.height or o.height, c.fps or o.fps, workers=1,
                           keep_image=True, reconnect_tries=o.reconnect_tries)

    def _open_with_retries(self) -> Any:
        """Open the source; a live one that cannot be opened yet (a camera still booting, a stream not up) is
        tried again ``reconnect_tries`` times with back-off, as a running one is reconnected."""
        from edgecnn.errors import SourceError

        failures = 0
        while True:
            try:
                return self._open()
            except SourceError as exc:
                kind = None
                if self.config.source is not None:
                    from edgecnn.runtime.sources import source_kind

                    kind = source_kind(str(self.config.source))
                failures += 1
                live = self.config.camera is not None or (kind is not None and kind.live)
                if not live or failures > self._options.reconnect_tries:
                    raise
                self.error = str(exc)
                self.reopens += 1
                if self._stop.wait(min(0.5 * 2 ** (failures - 1), 8.0)):
                    raise

    def _run(self) -> None:
        try:
            self._source = source = self._open_with_retries()
            self.error = ""
            self.connected = True
            # a file (images, a video) is read as fast as the engine takes it, every frame classified; with the
            # source's fps set, a video is paced like a camera (and frames the engine had no time for are dropped)
            pace = None if source.live else self.config.fps
            self._block = not source.live and not pace
            limit = self.config.fps if source.live else None  # a live source faster than its fps: frames skipped
            period = 1.0 / pace if pace else 0.0
            next_t = time.perf_counter()
            last_taken = 0.0
            for frame in source:
                if self._stop.is_set():
                    break
                if frame.image is None:
                    continue
                now = time.perf_counter()
                if limit and now - last_taken < 0.95 / limit:
                    self.dropped += 1
                    continue
                last_taken = now
                captured_at = time.time() - (now - frame.t_capture)
                self._deliver(frame.index, captured_at, frame.image)
                if period:
                    next_t += period
                    delay = next_t - time.perf_counter()
                    if delay > 0:
                        if self._stop.wait(delay):
                            break
                    else:
                        next_t = time.perf_counter()
        except ConfigError as exc:
            self.fatal = exc
            self.error = str(exc)
        except EdgeCNNError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001  (a reader must never die silently)
            self.error = f"{self.name} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        finally:
            self.connected = False
            self.done = True
            with self._wake:
                self._wake.notify_all()

    def _regions(self, width: int, height: int) -> tuple[Region, ...]:
        if self._size != (width, height):
            from edgecnn.station.schema import check_region_fits

            check_region_fits(self.config, width, height)
            self._size = (width, height)
            self._boxes = tuple(Region(r.name, *r.resolve(width, height)) for r in self.config.regions) or (
                Region(WHOLE_FRAME, 0, 0, width, height),)
        return self._boxes

    def _deliver(self, index: int, captured_at: float, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        regions = self._regions(w, h)
        tensors = [self._backend.preprocess(image[r.y0:r.y1, r.x0:r.x1]) for r in regions]
        ready = Ready(index, captured_at, regions, tensors, image if self._keep_image else None)
        with self._wake:
            while self._block and self.slot is not None and not self._stop.is_set():
                self._wake.wait(0.05)
            if self.slot is not None:
                self.dropped += 1
            self.slot = ready
            self.captured += 1
            self.last_frame_at = captured_at
            self._wake.notify_all()

    # ------------------------------------------------------------------ the engine's side
    def take(self) -> Ready | None:
        """The newest frame not taken yet (call with the wake condition held)."""
        ready, self.slot = self.slot, None
        if ready is not None:
            self.frames += 1
            self._times.append(time.perf_counter())
        return ready

    @property
    def fps(self) -> float:
        t = self._times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    @property
    def reconnects(self) -> int:
        return self.reopens + int(getattr(self._source, "reconnects", 0) or 0)

    @property
    def total_dropped(self) -> int:
        return self.dropped + int(getattr(self._source, "dropped", 0) or 0)

    def describe(self) -> str:
        from edgecnn.runtime.sources import mask_url

        what = mask_url(str(self.config.source)) if self.config.source is not None else f"camera {self.config.camera}"
        return f"{self.name} ({'***' if self.config.secret else what})"

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._source is not None:
            self._source.stop()
        self._thread.join(timeout)
        if self._source is not None and not self._thread.is_alive():
            try:
                self._source.close()
            except Exception:  # noqa: BLE001  (closing a dead stream must not hide the run's result)
                pass


__all__ = ["STALL_S", "Ready", "SourceReader"]
