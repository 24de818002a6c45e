"""The live view's observer: the newest annotated JPEG of each source, and the recent decisions.

:class:`LiveView` implements :class:`edgecnn.station.events.Observer`. On the engine's thread ``on_frame`` only
stores a reference to the event (newest wins), appends its decisions to a ring and counts it for ``/metrics``:
no copy, no drawing, no encoding. Its own encoder thread draws the label, score and region boxes on a copy and
encodes a JPEG, and only for sources that someone is watching, at most ``stream_fps`` times a second. Each MJPEG
client (:meth:`LiveView.mjpeg`) sends the newest JPEG when it is ready for one, so a slow client skips frames
(its own) and never slows inference or the other clients.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from edgecnn.station.events import FrameEvent

BOUNDARY = "edgecnnframe"
#: Frames are drawn at least this wide (small camera crops would make unreadable text).
MIN_WIDTH = 320
#: The encoder thread's nice value: drawing for viewers is best effort and yields the CPU to inference.
ENCODER_NICE = 19


@dataclass
class Encoded:
    seq: int  # over all sources (what a client waits on)
    jpeg: bytes
    frame: int
    at: float
    n: int = 0  # this source's JPEG count (a client that skips n's dropped those frames)


@dataclass
class SourceView:
    """What the page shows for one source (updated on the engine's thread, read by the page)."""

    name: str
    frames: int = 0
    fps: float = 0.0
    last_at: float = 0.0
    label: str = ""
    score: float = float("nan")
    latency_ms: float = 0.0
    regions: list[dict[str, Any]] = field(default_factory=list)
    event: FrameEvent | None = None
    viewers: int = 0

    def to_json(self) -> dict[str, Any]:
        import math

        return {"name": self.name, "frames": self.frames, "fps": round(self.fps, 2), "last_frame_at": self.last_at,
                "label": self.label, "score": None if math.isnan(self.score) else round(self.score, 4),
                "latency_ms": round(self.latency_ms, 2), "regions": self.regions, "viewers": self.viewers}


def _colour(label: str, reject: bool = False) -> tuple[int, int, int]:
    """A stable BGR colour per label (red for a reject)."""
    if reject:
        return (40, 40, 230)
    import zlib

    h = zlib.crc32(label.encode())
    return (80 + h % 160, 80 + (h >> 8) % 160, 80 + (h >> 16) % 160)


def annotate(event: FrameEvent) -> Any:
    """A BGR copy of the event's frame with each region's box, label and score, and a header line."""
    import cv2
    import numpy as np

    img = np.asarray(event.image)
    h, w = img.shape[:2]
    scale = max(1.0, MIN_WIDTH / max(1, w))
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if scale > 1.0:
        bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_NEAREST)
    rejects = {(d.source, d.region) for d in event.decisions if d.reject}
    font = cv2.FONT_HERSHEY_SIMPLEX
    for region, pred in zip(event.regions, event.predictions):
        colour = _colour(pred.label, (event.source, region.name) in rejects)
        x0, y0, x1, y1 = (round(v * scale) for v in (region.x0, region.y0, region.x1, region.y1))
        cv2.rectangle(bgr, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, 2)
        text = f"{pred.label} {pred.score:.2f}" if pred.label else "unreadable"
        if region.name != "frame":
            text = f"{region.name}: {text}"
        (tw, th), _ = cv2.getTextSize(text, font, 0.6, 1)
        ty = y0 + th + 6
        cv2.rectangle(bgr, (x0 + 2, y0 + 2), (x0 + tw + 8, ty + 4), colour, -1)
        cv2.putText(bgr, text, (x0 + 5, ty), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    head = f"{event.source}  #{event.frame}  {event.fps:.1f} fps"
    cv2.putText(bgr, head, (6, bgr.shape[0] - 8), font, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return bgr


class LiveView:
    """Observer of a station's frames for the live view and ``/metrics``.

    Args:
        jpeg_quality: JPEG quality of the streams.
        stream_fps: Most JPEGs encoded per second per watched source.
        decisions: Recent decisions kept.
        on_event: Called on the engine's thread with each event (the metrics counters); must be cheap.
        mask: Applied to every source name shown (credentials never reach a page).
    """

    #: The engine keeps pixels for observers that ask; drawing needs them (encoded only while someone watches).
    wants_pixels = True

    def __init__(self, jpeg_quality: int = 80, stream_fps: float = 15.0, decisions: int = 50,
                 on_event: Callable[[FrameEvent], None] | None = None, mask: Callable[[str], str] = str) -> None:
        self.jpeg_quality = jpeg_quality
        self.interval = 1.0 / stream_fps
        self.sources: dict[str, SourceView] = {}
        self.decisions: deque[dict[str, Any]] = deque(maxlen=decisions)
        self.encoded: dict[str, Encoded] = {}
        self.dropped_events = 0  # on_frame failures (counted, never raised)
        self.encode_errors = 0
        self.sent = 0  # JPEGs sent to viewers, all clients
        self.skipped = 0  # JPEGs a viewer did not get because it was still busy with an older one
        self._on_event = on_event
        self._mask = mask
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: dict[str, asyncio.Event] = {}
        self._thread = threading.Thread(target=self._encode_loop, name="edgecnn-live-encoder", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ engine's thread
    def on_frame(self, event: FrameEvent) -> None:
        """Store the newest event of its source (a reference), keep its decisions, count it. Never raises."""
        try:
            name = self._mask(event.source)
            with self._lock:
                view = self.sources.get(name)
                if view is None:
                    view = self.sources[name] = SourceView(name)
                view.frames += 1
                view.fps = float(event.fps)
                view.last_at = float(event.captured_at) or time.time()
                if event.predictions:
                    top = event.predictions[0]
                    view.label, view.score, view.latency_ms = top.label, float(top.score), float(top.latency_ms)
                view.regions = [{"region": p.region, "label": p.label, "score": round(float(p.score), 4)}
                                for p in event.predictions]
                view.event = event
                for d in event.decisions:
                    doc = d.to_json()
                    doc["source"] = self._mask(d.source)
                    self.decisions.appendleft(doc)
                watched = view.viewers > 0 and event.image is not None
            if watched:
                self._wake.set()
            if self._on_event is not None:
                self._on_event(event)
        except Exception:  # noqa: BLE001  (an observer never raises into the engine)
            self.dropped_events += 1

    # ------------------------------------------------------------------ encoder thread
    def _encode_loop(self) -> None:
        import os

        try:  # Linux: a thread's own nice value (the engine's threads keep theirs)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ENCODER_NICE)
        except (AttributeError, OSError):
            pass
        done: dict[str, int] = {}
        while not self._closed.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._closed.is_set():
                return
            started = time.monotonic()
            with self._lock:
                todo = [(n, v.event) for n, v in self.sources.items()
                        if v.viewers > 0 and v.event is not None and v.event.image is not None
                        and done.get(n) != id(v.event)]
            for name, event in todo:
                done[name] = id(event)
                self._publish(name, event)
            spare = self.interval - (time.monotonic() - started)
            if todo and spare > 0:
                self._closed.wait(spare)

    def _publish(self, name: str, event: FrameEvent) -> None:
        try:
            import cv2

            ok, buf = cv2.imencode(".jpg", annotate(event), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise ValueError("JPEG encoding failed")
        except Exception:  # noqa: BLE001  (a bad frame is counted and skipped)
            self.encode_errors += 1
            return
        with self._lock:
            self._seq += 1
            prev = self.encoded.get(name)
            self.encoded[name] = Encoded(self._seq, buf.tobytes(), event.frame, time.time(), prev.n + 1 if prev else 1)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._notify, name)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _notify(self, name: str) -> None:  # on the event loop
        ev = self._ready.pop(name, None)
        if ev is not None:
            ev.set()

    # ------------------------------------------------------------------ HTTP side (event loop)
    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server's event loop, woken when a new JPEG is ready."""
        self._loop = loop

    def watch(self, name: str, delta: int) -> None:
        with self._lock:
            view = self.sources.get(name)
            if view is None:
                view = self.sources[name] = SourceView(name)
            view.viewers = max(0, view.viewers + delta)
        if delta > 0:
            self._wake.set()

    def snapshot(self, name: str, timeout: float = 0.0) -> bytes | None:
        """The newest annotated JPEG of a source (encoded now when nobody watches it), or None before a frame."""
        with self._lock:
            view = self.sources.get(name)
            event = view.event if view is not None else None
            enc = self.encoded.get(name)
        if enc is not None and event is not None and enc.frame == event.frame:
            return enc.jpeg
        if event is None or event.image is None:
            return enc.jpeg if enc is not None else None
        self._publish(name, event)
        enc = self.encoded.get(name)
        return enc.jpeg if enc is not None else None

    async def mjpeg(self, name: str) -> AsyncIterator[bytes]:
        """``multipart/x-mixed-replace`` parts: the newest JPEG of ``name`` each time one is ready.

        Newest-frame-wins per client: a client that reads slowly gets the newest JPEG when it is ready again; the
        frames in between are skipped for it alone.
        """
        self.watch(name, +1)
        last = -1
        last_n = 0
        try:
            while not self._closed.is_set():
                enc = self.encoded.get(name)
                if enc is None or enc.seq == last:
                    ev = self._ready.get(name)
                    if ev is None:
                        ev = self._ready[name] = asyncio.Event()
                    try:
                        await asyncio.wait_for(ev.wait(), 1.0)
                    except asyncio.TimeoutError:
                        pass
                    continue
                if last_n:
                    self.skipped += max(0, enc.n - last_n - 1)
                last, last_n = enc.seq, enc.n
                self.sent += 1
                yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(enc.jpeg)}\r\n\r\n"
                       .encode() + enc.jpeg + b"\r\n")
        finally:
            self.watch(name, -1)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"sources": [v.to_json() for v in self.sources.values()], "decisions": list(self.decisions)}

    def close(self) -> None:
        """Stop the encoder thread (frames stop being drawn; on_frame keeps counting harmlessly)."""
        self._closed.set()
        self._wake.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for name in list(self._ready):
                try:
                    loop.call_soon_threadsafe(self._notify, name)
                except RuntimeError:
                    break
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(2.0)


__all__ = ["BOUNDARY", "LiveView", "SourceView", "annotate"]
