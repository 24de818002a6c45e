"""What the station engine hands to everything downstream: predictions, decisions, frames and alarms.

This module is the contract between the engine (:mod:`edgecnn.station.engine`), the outputs
(:mod:`edgecnn.station.outputs`: MQTT, OPC UA, Modbus, GPIO, webhook), the HTTP server (:mod:`edgecnn.serve`)
and the monitors (:mod:`edgecnn.monitor`: capture, drift, health). It is pure Python with numpy arrays only as
payload, imports nothing from edgecnn but the standard library, and is cheap to import.

Flow, per processed frame of any source::

    engine ─▶ RegionPrediction per region ─▶ rules ─▶ Decision per region (+ one station verdict)
           └▶ FrameEvent(frame, predictions, decisions) ─▶ every Observer.on_frame()   (serve, capture, drift)
           └▶ each Decision                              ─▶ every Output.submit()     (only when it is emitted)
    monitors ─▶ Alarm                                    ─▶ every Output.alarm()

Rules for implementers:

- ``Output.submit``/``Output.alarm`` and ``Observer.on_frame`` are called on the engine's thread. They must
  return at once (hand the work to the implementer's own thread through a bounded queue), never raise, and
  count what overflows (:class:`OutputStats`). A slow or dead consumer never slows inference.
- Events are immutable; the frame's pixels (``FrameEvent.image``) are shared, read-only: copy before drawing.
- ``to_json()`` gives the JSON-safe dict that is written to rows and sent on the wire (NaN becomes None).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: The region name used for a whole frame (a source without regions) and the station verdict's source name.
WHOLE_FRAME = "frame"
STATION = "station"

#: Verdicts a decision may carry besides a class label.
UNSURE = "unsure"  # top-1 below its class threshold, or no N-of-M majority yet


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


@dataclass(frozen=True)
class Region:
    """A named rectangle of a source's frame, resolved to pixels ``[x0, y0, x1, y1)`` for the current frame size."""

    name: str
    x0: int
    y0: int
    x1: int
    y1: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "box": [self.x0, self.y0, self.x1, self.y1]}


@dataclass(frozen=True)
class RegionPrediction:
    """The model's classification of one region (or the whole frame) of one frame.

    Attributes:
        source: The source's name from the station file.
        region: The region's name, or :data:`WHOLE_FRAME`.
        frame: The source's frame sequence number.
        captured_at: Wall-clock time (``time.time()``) when the frame was captured.
        label: Top-1 label ("" when the input could not be read).
        score: Top-1 score.
        topk: ``[(label, score), ...]``, highest first.
        class_index: Top-1 class index (-1 when unreadable).
        latency_ms: Capture to prediction.
        probs: All class probabilities (float32; not written to rows).
    """

    source: str
    region: str
    frame: int
    captured_at: float
    label: str
    score: float
    topk: tuple[tuple[str, float], ...] = ()
    class_index: int = -1
    latency_ms: float = 0.0
    probs: Any = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "region": self.region, "frame": self.frame,
                "captured_at": _num(self.captured_at), "label": self.label, "score": _num(self.score),
                "topk": [[lbl, _num(s)] for lbl, s in self.topk], "latency_ms": _num(self.latency_ms)}


@dataclass(frozen=True)
class Decision:
    """A debounced decision for one region of one source, or the station's verdict over all regions.

    Attributes:
        seq: Station-wide sequence number, strictly increasing over the life of the station's state folder
            (it survives restarts), so a subscriber can find gaps and QoS-1 duplicates.
        time: Wall-clock time of the decision (``time.time()``).
        source: The source's name, or :data:`STATION` for the station verdict.
        region: The region's name, :data:`WHOLE_FRAME`, or :data:`STATION`.
        verdict: The decided class label, :data:`UNSURE`, or a verdict the station rules name (``"ok"``, ``"reject"``).
        label: The newest frame's top-1 label (what the model said, before debouncing).
        score: The newest frame's top-1 score.
        votes: How many of the last ``window`` frames agreed with ``verdict``.
        window: M of the N-of-M rule.
        changed: The verdict differs from this region's previous decision.
        latched: The verdict is held by a latch or hold time.
        frame: The frame sequence number it was decided on.
        captured_at: Capture time of that frame (``time.time()``); ``time - captured_at`` is frame-to-decision.
        model_sha256: The SHA-256 of the model file that made it.
        reject: True when this decision means "reject" (a station verdict, or a region whose verdict the rules
            map to reject). Outputs that drive a reject gate (GPIO, Modbus coil) read this, never labels.
    """

    seq: int
    time: float
    source: str
    region: str
    verdict: str
    label: str = ""
    score: float = float("nan")
    votes: int = 0
    window: int = 1
    changed: bool = False
    latched: bool = False
    frame: int = -1
    captured_at: float = 0.0
    model_sha256: str = ""
    reject: bool = False

    @property
    def is_station(self) -> bool:
        return self.source == STATION

    @property
    def latency_ms(self) -> float:
        return max(0.0, (self.time - self.captured_at) * 1000.0) if self.captured_at else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": _num(self.time), "source": self.source, "region": self.region,
                "verdict": self.verdict, "label": self.label, "score": _num(self.score), "votes": self.votes,
                "window": self.window, "changed": self.changed, "latched": self.latched, "frame": self.frame,
                "captured_at": _num(self.captured_at), "latency_ms": _num(self.latency_ms),
                "reject": self.reject, "model_sha256": self.model_sha256}


@dataclass(frozen=True)
class FrameEvent:
    """One processed frame of one source: its pixels, regions, predictions and the decisions it produced.

    Attributes:
        source: The source's name.
        frame: The frame sequence number.
        captured_at: Wall-clock capture time.
        image: The full frame, RGB uint8 HxWx3 (shared and read-only: copy before drawing), or None when the
            engine keeps no pixels (no observer asked for them).
        regions: The regions classified on this frame (one :data:`WHOLE_FRAME` region when the source has none).
        predictions: One per region, in ``regions`` order.
        decisions: The decisions emitted on this frame (may be empty when nothing was due).
        fps: The source's recent frame rate.
    """

    source: str
    frame: int
    captured_at: float
    image: Any
    regions: tuple[Region, ...]
    predictions: tuple[RegionPrediction, ...]
    decisions: tuple[Decision, ...] = ()
    fps: float = 0.0


@dataclass(frozen=True)
class Alarm:
    """A health or drift alarm raised (``active=True``) or cleared, with hysteresis applied by its monitor.

    Attributes:
        name: What is wrong: ``"drift"``, ``"frozen"``, ``"dark"``, ``"saturated"``, ``"blur"``, ``"source_down"``...
        source: The source's name (or :data:`STATION`).
        region: The region's name, or :data:`WHOLE_FRAME`.
        active: Raised or cleared.
        value: The measured figure (drift score, sharpness, ...).
        threshold: The figure it crossed.
        time: Wall-clock time.
        detail: One human line.
    """

    name: str
    source: str
    region: str
    active: bool
    value: float
    threshold: float
    time: float = field(default_factory=time.time)
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"alarm": self.name, "source": self.source, "region": self.region, "active": self.active,
                "value": _num(self.value), "threshold": _num(self.threshold), "time": _num(self.time),
                "detail": self.detail}


@dataclass
class OutputStats:
    """What an output reports to ``station check``, ``/metrics`` and the run summary."""

    name: str
    kind: str
    connected: bool = False
    sent: int = 0
    errors: int = 0
    dropped: int = 0  # overflowed a bounded in-memory queue (counted, reported; never silent)
    queue_depth: int = 0
    spool_depth: int = 0  # on-disk spool (MQTT QoS 1)
    last_error: str = ""
    spool_dropped: int = 0  # refused by a full on-disk spool (or a full disk): counted, one warning line
    retries: int = 0  # deliveries tried again after a failure (webhook backoff)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Reachability:
    """``station check``'s finding for one output: can it be reached now?"""

    name: str
    ok: bool
    detail: str


@runtime_checkable
class Output(Protocol):
    """A station output (MQTT, OPC UA, Modbus, GPIO, webhook). Runs off the inference path."""

    name: str
    kind: str

    def start(self) -> None:
        """Connect / bind / open the line; raise ``EdgeCNNError`` (one line) when it cannot start and the station
        does not start offline."""

    def submit(self, decision: Decision) -> None:
        """Queue a decision; returns at once, never raises."""

    def alarm(self, alarm: Alarm) -> None:
        """Queue an alarm; returns at once, never raises."""

    def stats(self) -> OutputStats:
        """Counters for reports and metrics."""

    def close(self, timeout: float = 5.0) -> None:
        """Flush what it can within ``timeout`` seconds (what is spooled stays spooled), then stop."""


@runtime_checkable
class Observer(Protocol):
    """Something that watches every processed frame (the live view, capture, drift and health monitors)."""

    #: Whether this observer needs ``FrameEvent.image`` (the engine keeps pixels only when someone asks).
    wants_pixels: bool

    def on_frame(self, event: FrameEvent) -> None:
        """Called on the engine's thread for every processed frame; must return at once and never raise."""

    def close(self) -> None:
        """Stop and release what it holds."""


__all__ = ["Alarm", "Decision", "FrameEvent", "Observer", "Output", "OutputStats", "Reachability", "Region",
           "RegionPrediction", "STATION", "UNSURE", "WHOLE_FRAME"]
