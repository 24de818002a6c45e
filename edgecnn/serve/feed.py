"""A source classified by edgecnn's Pipeline, run as a one-source station: ``edgecnn serve MODEL --source X``.

:class:`PipelineFeed` implements :class:`~edgecnn.serve.handle.StationHandle` over
:meth:`edgecnn.classifier.Classifier.stream`: every classified frame becomes a
:class:`~edgecnn.station.events.FrameEvent` (the whole frame as one region) for the observers, and a change of the
top-1 label becomes a :class:`~edgecnn.station.events.Decision`. It has no rules, outputs or regions: the station
engine (:mod:`edgecnn.station`) is the full version; this one lets a model with a camera be watched and scraped
without a station file, and lets the live view be tested with a real source.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from edgecnn.serve.handle import ModelIdentity, SourceHealth
from edgecnn.station.events import WHOLE_FRAME, Decision, FrameEvent, Region, RegionPrediction


class PipelineFeed:
    """Classify ``source`` on a thread and hand each frame to the observers.

    Args:
        classifier: A loaded classifier used only by this feed (a stream must not share one with ``predict``).
        source: Anything ``edgecnn run --source`` takes (a video, ``synthetic:FPS:WxH``, a camera URL...).
        identity: The model's identity (shown and exported).
        name: The source's name in the view (default: the source's masked name).
        loop: Start a finite source (a video, a folder) again when it ends.
        topk: Labels per prediction.
        camera: A camera index instead of ``source``.
        max_fps: Classify at most this many frames a second (a video file plays at about its real rate instead of
            as fast as the model runs).
    """

    def __init__(self, classifier: Any, source: str, identity: ModelIdentity, name: str | None = None,
                 loop: bool = False, topk: int = 3, camera: int | None = None, max_fps: float | None = None) -> None:
        self.classifier = classifier
        self.source = source
        self.camera = camera
        self.identity = identity
        self.name = name
        self.loop = loop
        self.topk = topk
        self.max_fps = max_fps
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self.error = ""
        self.last_at = 0.0
        self.fps = 0.0
        self.running = False
        self._observers: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: Any = None
        self._seq = 0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ StationHandle
    def sources(self) -> list[SourceHealth]:
        return [SourceHealth(name=self.name or "source", connected=self.running, fps=self.fps,
                             last_frame_at=self.last_at, frames=self.frames, dropped=self.dropped,
                             reconnects=self.reconnects, error=self.error)]

    def outputs(self) -> list:
        return []

    def model(self) -> ModelIdentity:
        return self.identity

    def add_observer(self, observer: Any) -> None:
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: Any) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    # ------------------------------------------------------------------ lifetime
    def start(self) -> PipelineFeed:
        """Open the source (errors raise here, before serving) and classify it on a thread."""
        self._stream = self._open()
        if not self.name:  # a file shows as its name, a stream as its masked URL
            import os

            from edgecnn.masking import mask_secrets

            src = str(self.source) if self.source is not None else ""
            self.name = os.path.basename(src) if src and os.path.isfile(src) else mask_secrets(self._stream.name,
                                                                                              whole=True)
        self._thread = threading.Thread(target=self._run, name="edgecnn-feed", daemon=True)
        self.running = True
        self._thread.start()
        return self

    def _open(self) -> Any:
        return self.classifier.stream(self.source, camera=self.camera, keep_images=True, topk=self.topk)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.running = False

    def _run(self) -> None:
        stream = self._stream
        try:
            while not self._stop.is_set():
                self._consume(stream)
                if not self.loop or self._stop.is_set():
                    break
                stream = self._stream = self._open()
        except Exception as exc:  # noqa: BLE001  (reported by /readyz and the page, never a traceback)
            from edgecnn.masking import mask_secrets

            self.error = mask_secrets(f"{type(exc).__name__}: {exc}")
        finally:
            self.running = False

    def _consume(self, stream: Any) -> None:
        label = None
        window: list[float] = []
        period = 1.0 / self.max_fps if self.max_fps else 0.0
        due = time.monotonic()
        with stream:
            for p in stream:
                if self._stop.is_set():
                    stream.stop()
                    break
                if period:
                    due += period
                    self._stop.wait(max(0.0, due - time.monotonic()))
                    due = max(due, time.monotonic() - period)
                now = time.time()
                window = [t for t in window if now - t < 2.0] + [now]
                self.fps = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else 0.0
                self.dropped = stream.dropped
                self.last_at = now
                lat = stream.stats.latencies_ms
                self._emit(p, now, label, self.frames, lat[-1] if lat else 0.0)
                self.frames += 1
                label = p.label

    def _emit(self, p: Any, now: float, previous: str | None, frame: int, latency_ms: float) -> None:
        img = p.image
        h, w = (img.shape[0], img.shape[1]) if img is not None else (0, 0)
        name = self.name or "source"
        region = Region(WHOLE_FRAME, 0, 0, w, h)
        captured = now - latency_ms / 1000.0  # the pipeline's capture-to-result time
        pred = RegionPrediction(source=name, region=WHOLE_FRAME, frame=frame, captured_at=captured, label=p.label,
                                score=float(p.score), topk=tuple((lbl, float(s)) for lbl, s in p.topk),
                                class_index=p.class_index, latency_ms=latency_ms, probs=p.probs)
        decisions: tuple[Decision, ...] = ()
        if p.label != previous:
            self._seq += 1
            decisions = (Decision(seq=self._seq, time=time.time(), source=name, region=WHOLE_FRAME,
                                  verdict=p.label, label=p.label, score=float(p.score), votes=1, window=1,
                                  changed=previous is not None, frame=frame, captured_at=captured,
                                  model_sha256=self.identity.sha256),)
        event = FrameEvent(source=name, frame=frame, captured_at=captured, image=img, regions=(region,),
                           predictions=(pred,), decisions=decisions, fps=self.fps)
        with self._lock:
            observers = list(self._observers)
        for obs in observers:
            try:
                obs.on_frame(event)
            except Exception:  # noqa: BLE001  (observers must not raise; one that does is not our inference's problem)
                pass


__all__ = ["PipelineFeed"]
