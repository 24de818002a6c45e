"""The drift and health monitor of a station: rolling statistics per source and region, PSI against the model
card's reference, and alarms with hysteresis (drift, frozen camera, dark, saturated, blurred lens).

It is an :class:`edgecnn.station.events.Observer`. ``on_frame`` runs on the engine's thread and only hands the
event to the monitor's own thread through a bounded queue (a full queue skips the frame and counts it); that
thread computes the frame's figures (:mod:`edgecnn.monitor.stats`, a few hundred microseconds on the strided
analysis view; at most ``max_fps`` frames a second per source), keeps them in a rolling window of ``window`` frames per (source, region), and every ``every``
frames evaluates the window:

* ``drift``: PSI of the window's per-channel intensity histograms against the reference's (mean over channels):
  the input no longer looks like the training set;
* ``confidence``: the larger PSI of the window's top-1 score and prediction-entropy histograms against the
  reference's: the model answers differently. Its threshold is higher: the reference holds one score per
  validation image (tens, not the hundreds of thousands of pixels), so even an unchanged line reads up to ~0.23
  on the test streams, against > 2 for a darkened or blurred one;
* ``frozen``: consecutive frames whose 16x16 luma thumbnails differ by less than ``frozen_delta`` on average;
* ``dark`` / ``saturated``: the window's mean luma / mean fraction of saturated pixels;
* ``blur``: the window's median focus (Laplacian variance over luma variance, so a dimmer light does not read
  as blur) over the reference's median focus.

Each evaluation appends one row to ``state_dir/monitor.jsonl`` (whole lines) and feeds each check's
:class:`edgecnn.monitor.health.Hysteresis`; a transition becomes an :class:`~edgecnn.station.events.Alarm`
given to ``raise_alarm`` (the engine forwards it to every output) and is logged in the rows.

Without a reference in the card (a model made elsewhere, or trained before references existed) the drift
check is off (said once in the rows) and the blur check compares with the stream's own first full window.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.monitor import Worker
from edgecnn.monitor.health import Hysteresis, focus_ratio
from edgecnn.monitor.stats import PRED_BINS, ImageStats, image_stats, pred_bin, prediction_stats, psi
from edgecnn.station.events import WHOLE_FRAME, Alarm, FrameEvent
from edgecnn.station.fields import option as _opt

#: Rows files are rotated (to ``NAME.1``) beyond this size.
ROWS_MAX_BYTES = 50_000_000


@dataclass(frozen=True)
class MonitorConfig:
    """The ``monitor`` section of the station file (and the ``--monitor-*`` flags of ``run``)."""

    enabled: bool = _opt(False, "Watch every source/region for drift against the model card's reference and for a "
                                "frozen, dark, saturated or blurred camera; alarms go to every output.")
    window: int = _opt(200, "Frames in each rolling window.", min=20, max=100_000)
    every: int = _opt(50, "Evaluate the window every N frames of a source/region.", min=1, max=100_000)
    drift_on: float = _opt(0.25, "PSI that raises the drift alarm (0.25 is the conventional 'significant shift').",
                           min=0.01, max=10.0)
    drift_off: float = _opt(0.1, "PSI below which a raised drift alarm clears (0.1: 'stable').", min=0.0, max=10.0)
    confidence_on: float = _opt(0.5, "PSI of the top-1 score or entropy distribution that raises the confidence "
                                     "alarm.", min=0.01, max=10.0)
    confidence_off: float = _opt(0.25, "PSI below which a raised confidence alarm clears.", min=0.0, max=10.0)
    raise_after: int = _opt(3, "Consecutive evaluations past a threshold before an alarm is raised.", min=1, max=1000)
    clear_after: int = _opt(3, "Consecutive evaluations back past the clear threshold before it clears.", min=1,
                            max=1000)
    frozen_frames: int = _opt(30, "Consecutive near-identical frames that mean a frozen camera.", min=2,
                              max=1_000_000)
    frozen_delta: float = _opt(0.5, "Mean absolute luma difference (0-255) below which two frames are identical.",
                               min=0.0, max=255.0)
    dark_level: float = _opt(20.0, "Mean luma (0-255) of a window below which the image is dark.", min=0.0,
                             max=255.0)
    saturated_fraction: float = _opt(0.5, "Fraction of saturated pixels above which the image is saturated.",
                                     min=0.0, max=1.0)
    blur_ratio: float = _opt(0.5, "Focus relative to training (Laplacian variance / luma variance) below which "
                                   "the lens is blurred.", min=0.0, max=1.0)
    max_fps: float = _opt(5.0, "Frames per second of each source the monitor looks at (0: every frame); windows "
                               "count looked-at frames. Drift is slow: 5 a second (a 40 s window) keeps the cost "
                               "near nothing.",
                          min=0.0, max=1000.0)
    queue: int = _opt(64, "Frames waiting for the monitor's thread; more are skipped and counted.", min=1,
                      max=10_000)
    rows: str = _opt("monitor.jsonl", "File in the state folder that each evaluation is appended to (empty: none).")

    def __post_init__(self) -> None:
        for on, off in (("drift_on", "drift_off"), ("confidence_on", "confidence_off")):
            if getattr(self, off) > getattr(self, on):
                from edgecnn.errors import ConfigError

                raise ConfigError(f"Expected monitor.{off} <= monitor.{on}; received {getattr(self, off)} > "
                                  f"{getattr(self, on)}.")


@dataclass
class ModelView:
    """How a region is turned into what the model sees (from the card): size, colour, resize."""

    height: int = 64
    width: int = 64
    color: str = "rgb"
    interpolation: str = "area"

    @classmethod
    def from_card(cls, card: Any) -> ModelView:
        if card is None:
            return cls()
        return cls(card.input.height, card.input.width, card.preprocessing.color, card.preprocessing.resize)

    def tensor(self, image: np.ndarray) -> np.ndarray:
        from edgecnn.imaging import preprocess

        return preprocess(image, self.height, self.width, self.color, self.interpolation)


class Window:
    """Rolling figures of one (source, region): the last ``size`` frames' statistics with running sums."""

    def __init__(self, size: int, channels: int) -> None:
        self.size = size
        self.frames: deque[tuple[np.ndarray, float, float, float, float, int, int]] = deque()
        self.hist = np.zeros((channels, 16), np.int64)
        self.score = np.zeros(PRED_BINS, np.int64)
        self.entropy = np.zeros(PRED_BINS, np.int64)
        self.preds = 0
        self.seen = 0
        self.last_frame = -1
        self.prev_thumb: np.ndarray | None = None
        self.frozen_run = 0
        self.baseline_focus: float | None = None  # the stream's own first window, when the card has no reference

    def add(self, s: ImageStats, probs: Any, frame: int, frozen_delta: float) -> None:
        sb = eb = -1
        if probs is not None:
            score, ent = prediction_stats(probs)
            sb, eb = pred_bin(score), pred_bin(ent)
            self.score[sb] += 1
            self.entropy[eb] += 1
            self.preds += 1
        if s.hist.shape != self.hist.shape:  # channel count changed (a grayscale frame): restart the window
            self.__init__(self.size, s.hist.shape[0])  # type: ignore[misc]
        self.hist += s.hist
        self.frames.append((s.hist, s.brightness, s.saturated, s.focus, s.sharpness, sb, eb))
        if len(self.frames) > self.size:
            h, *_rest, osb, oeb = self.frames.popleft()
            self.hist -= h
            if osb >= 0:
                self.score[osb] -= 1
                self.entropy[oeb] -= 1
                self.preds -= 1
        if self.prev_thumb is not None and self.prev_thumb.shape == s.thumb.shape:
            diff = float(np.abs(s.thumb - self.prev_thumb).mean())
            self.frozen_run = self.frozen_run + 1 if diff < frozen_delta else 0
        self.prev_thumb = s.thumb
        self.seen += 1
        self.last_frame = frame

    @property
    def full(self) -> bool:
        return len(self.frames) >= self.size

    def figures(self, ref: dict[str, Any]) -> dict[str, Any]:
        """The window's figures and PSIs against ``ref`` (the card's reference; may be empty)."""
        cols = list(zip(*self.frames))
        brightness = float(np.mean(cols[1]))
        focus = float(np.median(cols[3]))
        out: dict[str, Any] = {"frames": len(self.frames), "brightness": round(brightness, 3),
                               "saturated": round(float(np.mean(cols[2])), 4), "focus": round(focus, 4),
                               "sharpness": round(float(np.median(cols[4])), 3), "frozen_run": self.frozen_run}
        ref_hist = ref.get("pixel_hist")
        psis: list[float] = []
        if ref_hist is not None and len(ref_hist) == self.hist.shape[0]:
            n_ref, n = ref.get("num_images"), len(self.frames)
            out["psi_pixels"] = round(float(np.mean([psi(r, h, n_ref, n) for r, h in zip(ref_hist, self.hist)])), 5)
        out["drift"] = out.get("psi_pixels")
        if self.preds >= len(self.frames) // 2 and self.preds:
            for key, counts in (("score", self.score), ("entropy", self.entropy)):
                if ref.get(f"{key}_hist"):
                    out[f"psi_{key}"] = round(psi(ref[f"{key}_hist"], counts, ref.get("num_images"), self.preds), 5)
                    psis.append(out[f"psi_{key}"])
        out["confidence"] = max(psis) if psis else None
        ref_focus = (ref.get("focus") or {}).get("p50")
        if not ref_focus:
            if self.baseline_focus is None:
                self.baseline_focus = focus
            ref_focus = self.baseline_focus
        ratio = focus_ratio(focus, ref_focus)
        out["focus_ratio"] = None if ratio is None else round(ratio, 4)
        return out


@dataclass
class MonitorCounters:
    """What the monitor reports (``/metrics``, the run summary)."""

    frames: int = 0
    skipped: int = 0  # the queue was full: the frame was not looked at (counted, never blocking)
    not_sampled: int = 0  # over max_fps: not looked at, by design
    no_pixels: int = 0
    errors: int = 0
    evaluations: int = 0
    alarms_raised: int = 0
    last_error: str = ""


class DriftMonitor(Worker):
    """The drift and health observer (see the module docstring).

    Args:
        config: The ``monitor`` section.
        reference: The card's ``reference`` dict (``{}`` when there is none).
        view: How a region becomes the model's input.
        raise_alarm: Called with each :class:`Alarm` transition (on the monitor's thread; exceptions are counted).
        rows_path: Where the rows go (None: nowhere).
        start: Start the thread (tests feeding frames synchronously with :meth:`process` pass False).
    """

    wants_pixels = True

    def __init__(self, config: MonitorConfig, reference: dict[str, Any] | None, view: ModelView,
                 raise_alarm: Callable[[Alarm], None] | None = None, rows_path: str | os.PathLike[str] | None = None,
                 start: bool = True) -> None:
        self.config = config
        self.reference = dict(reference or {})
        self.view = view
        self.raise_alarm = raise_alarm
        self.rows_path = Path(rows_path) if rows_path else None
        self.counters = MonitorCounters()
        self.windows: dict[tuple[str, str], Window] = {}
        self.latest: dict[tuple[str, str], dict[str, Any]] = {}
        self.alarms: list[Alarm] = []  # every transition, in order (bounded)
        self._hyst: dict[tuple[str, str, str], Hysteresis] = {}
        self._lock = threading.Lock()
        self._rows_fh: Any = None
        self._last: dict[str, float] = {}  # source -> monotonic time of its last looked-at frame
        self._start_worker(config.queue, "edgecnn-monitor", start)

    # ------------------------------------------------------------------ engine side
    def on_frame(self, event: FrameEvent) -> None:
        """Queue the event for the monitor's thread; returns at once, never raises."""
        try:
            if self._closed:
                return
            if event.image is None:
                self.counters.no_pixels += 1
                return
            if self.config.max_fps > 0:
                now = time.monotonic()
                if now - self._last.get(event.source, -1e9) < 1.0 / self.config.max_fps:
                    self.counters.not_sampled += 1
                    return
                self._last[event.source] = now
            self._q.put_nowait(event)
        except queue.Full:
            self.counters.skipped += 1
        except Exception as exc:  # noqa: BLE001 - an observer never raises into the engine
            self.counters.errors += 1
            self.counters.last_error = str(exc)

    def close(self, timeout: float = 5.0) -> None:
        """Look at every queued frame (alarms raised before this returns), then stop and close the rows file."""
        if not self._stop(timeout):
            return
        with self._lock:
            if self._rows_fh is not None:
                self._rows_fh.close()
                self._rows_fh = None

    def _handle(self, item: object) -> None:
        self.process(item)  # type: ignore[arg-type]

    def _unhandled(self, count: int) -> None:
        self.counters.skipped += count

    # ------------------------------------------------------------------ monitor side
    def process(self, event: FrameEvent) -> None:
        """Look at one frame (every region of it); never raises (errors are counted)."""
        try:
            self.counters.frames += 1
            regions = event.regions or ()
            preds = event.predictions or ()
            img = np.asarray(event.image)
            for i, region in enumerate(regions):
                crop = img[region.y0:region.y1, region.x0:region.x1] if region.name != WHOLE_FRAME else img
                if crop.size == 0:
                    continue
                probs = preds[i].probs if i < len(preds) else None
                self.observe(event.source, region.name, crop, probs, event.frame, event.captured_at)
            if not regions:
                self.observe(event.source, WHOLE_FRAME, img, preds[0].probs if preds else None, event.frame,
                             event.captured_at)
        except Exception as exc:  # noqa: BLE001
            self.counters.errors += 1
            self.counters.last_error = f"{type(exc).__name__}: {exc}"

    def observe(self, source: str, region: str, image: np.ndarray, probs: Any = None, frame: int = -1,
                captured_at: float | None = None) -> dict[str, Any] | None:
        """Add one region's pixels (RGB uint8, any size) and probabilities; returns the evaluation row when this
        frame completed an evaluation, else None."""
        stats = image_stats(self.view.tensor(image))
        key = (source, region)
        win = self.windows.get(key)
        if win is None:
            win = self.windows[key] = Window(self.config.window, stats.hist.shape[0])
        win.add(stats, probs, frame, self.config.frozen_delta)
        if not win.full or win.seen % self.config.every:
            return None
        return self._evaluate(key, win, captured_at or time.time())

    def _hysteresis(self, name: str, source: str, region: str) -> Hysteresis:
        key = (name, source, region)
        h = self._hyst.get(key)
        if h is None:
            c = self.config
            h = {
                "drift": lambda: Hysteresis(c.drift_on, c.drift_off, c.raise_after, c.clear_after),
                "confidence": lambda: Hysteresis(c.confidence_on, c.confidence_off, c.raise_after, c.clear_after),
                "frozen": lambda: Hysteresis(c.frozen_frames - 0.5, 0.5, 1, 1),
                "dark": lambda: Hysteresis(c.dark_level, c.dark_level * 1.5 + 1, c.raise_after, c.clear_after,
                                           above=False),
                "saturated": lambda: Hysteresis(c.saturated_fraction, c.saturated_fraction * 0.6, c.raise_after,
                                                c.clear_after),
                "blur": lambda: Hysteresis(c.blur_ratio, min(0.95, c.blur_ratio * 1.4), c.raise_after,
                                           c.clear_after, above=False),
            }[name]()
            self._hyst[key] = h
        return h

    def _evaluate(self, key: tuple[str, str], win: Window, now: float) -> dict[str, Any]:
        source, region = key
        fig = win.figures(self.reference)
        values = {"drift": fig.get("drift"), "confidence": fig.get("confidence"), "frozen": float(win.frozen_run), "dark": fig["brightness"],
                  "saturated": fig["saturated"], "blur": fig["focus_ratio"]}
        thresholds = {"drift": self.config.drift_on, "confidence": self.config.confidence_on, "frozen": float(self.config.frozen_frames),
                      "dark": self.config.dark_level, "saturated": self.config.saturated_fraction,
                      "blur": self.config.blur_ratio}
        changed: list[Alarm] = []
        for name, value in values.items():
            h = self._hysteresis(name, source, region)
            flip = h.update(value)
            if flip is not None:
                changed.append(Alarm(name=name, source=source, region=region, active=flip,
                                     value=float(value if value is not None else float("nan")),
                                     threshold=thresholds[name], time=now,
                                     detail=_detail(name, flip, value, thresholds[name], win.last_frame)))
        active = sorted(n for (n, s, r), h in self._hyst.items() if (s, r) == key and h.active)
        row = {"time": round(now, 3), "source": source, "region": region, "frame": win.last_frame, **fig,
               "alarms": active, "transitions": [a.to_json() for a in changed]}
        if not self.reference.get("pixel_hist"):
            row["note"] = "the model card has no reference: drift is not measured"
        self.counters.evaluations += 1
        self.latest[key] = row
        self._write_row(row)
        for alarm in changed:
            self.alarms.append(alarm)
            if len(self.alarms) > 10_000:
                del self.alarms[:5_000]
            if alarm.active:
                self.counters.alarms_raised += 1
            if self.raise_alarm is not None:
                try:
                    self.raise_alarm(alarm)
                except Exception as exc:  # noqa: BLE001
                    self.counters.errors += 1
                    self.counters.last_error = f"raise_alarm: {exc}"
        return row

    def _write_row(self, row: dict[str, Any]) -> None:
        if self.rows_path is None:
            return
        line = json.dumps(row, ensure_ascii=False, allow_nan=False, default=str) + "\n"
        with self._lock:
            if self._rows_fh is None:
                self.rows_path.parent.mkdir(parents=True, exist_ok=True)
                if self.rows_path.exists() and self.rows_path.stat().st_size > ROWS_MAX_BYTES:
                    os.replace(self.rows_path, self.rows_path.with_name(self.rows_path.name + ".1"))
                self._rows_fh = open(self.rows_path, "a", encoding="utf-8")  # noqa: SIM115 - held open
            self._rows_fh.write(line)  # one write of a whole line; a kill leaves whole rows
            self._rows_fh.flush()

    # ------------------------------------------------------------------ reports
    def active_alarms(self) -> list[tuple[str, str, str]]:
        """(name, source, region) of every raised alarm."""
        return sorted(k for k, h in self._hyst.items() if h.active)

    def metrics(self) -> list[tuple[str, dict[str, str], float, str]]:
        """Gauges for ``/metrics``: (name, labels, value, help)."""
        out: list[tuple[str, dict[str, str], float, str]] = []
        for (source, region), row in list(self.latest.items()):
            labels = {"source": source, "region": region}
            for key, help_ in (("drift", "PSI of the window's intensities against the model card's reference"),
                               ("confidence", "Larger PSI of the window's scores and entropies"),
                               ("psi_pixels", "PSI of the window's intensity histograms"),
                               ("psi_score", "PSI of the window's top-1 scores"),
                               ("psi_entropy", "PSI of the window's prediction entropies"),
                               ("brightness", "Mean luma of the window (0-255)"),
                               ("focus_ratio", "Focus relative to the reference"),
                               ("frozen_run", "Consecutive near-identical frames")):
                if row.get(key) is not None:
                    out.append((f"edgecnn_monitor_{key}", labels, float(row[key]), help_))
        for name, source, region in self.active_alarms():
            out.append(("edgecnn_monitor_alarm", {"alarm": name, "source": source, "region": region}, 1.0,
                        "Raised monitor alarms"))
        c = self.counters
        for key in ("frames", "skipped", "errors", "evaluations", "alarms_raised"):
            out.append((f"edgecnn_monitor_{key}_total", {}, float(getattr(c, key)), f"Monitor {key}"))
        return out


def _detail(name: str, active: bool, value: float | None, threshold: float, frame: int) -> str:
    what = {"drift": "input drift (PSI of intensities against the training reference)",
            "confidence": "confidence drift (PSI of scores/entropies against the training reference)", "frozen": "frozen camera (identical frames)",
            "dark": "image too dark (mean luma)", "saturated": "image saturated (fraction of clipped pixels)",
            "blur": "blurred lens (focus relative to training)"}[name]
    v = "n/a" if value is None else f"{value:.3g}"
    return f"{what}: {v} vs {threshold:.3g} at frame {frame}" + ("" if active else " (cleared)")


def reference_of(card: Any) -> dict[str, Any]:
    """The drift reference a model card carries (``{}`` when none)."""
    ref = getattr(card, "reference", None) if card is not None else None
    return dict(ref or {})


def create(config: MonitorConfig, *, station: Any = None, labels: list[str] | None = None, model_sha256: str = "",
           state_dir: str | os.PathLike[str] | None = None, raise_alarm: Callable[[Alarm], None] | None = None,
           card: Any = None) -> DriftMonitor:
    """The station's drift and health observer.

    Args:
        config: The ``monitor`` section.
        station: The station's name or plan (unused beyond reports).
        labels: The model's labels.
        model_sha256: The model file's SHA-256.
        state_dir: The station's state folder (rows go to ``state_dir/config.rows``).
        raise_alarm: The engine's alarm callback.
        card: The model card (its ``reference`` and input spec); the engine passes the loaded model's card.
    """
    rows = Path(state_dir) / config.rows if state_dir is not None and config.rows else None
    return DriftMonitor(config, reference_of(card), ModelView.from_card(card), raise_alarm, rows)


__all__ = ["DriftMonitor", "MonitorConfig", "ModelView", "Window", "create", "reference_of"]
