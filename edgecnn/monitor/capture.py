"""Capture on the station: save what the model doubts, for relabelling (``edgecnn review``) and ``train --from``.

A frame's region is captured when its top-1 score is below ``below``, the margin between its first two classes is
below ``margin``, its debounced decision flipped (``flips``), or a random draw under ``sample`` picks it. The
capture is the region's crop (what the model classified) plus, once per frame, the full frame for context.

Nothing of this runs on the engine's thread but the trigger test (a few comparisons): a triggered frame is handed to
the capture thread through a bounded queue (a full queue skips it and counts it). The capture thread

* suppresses near-duplicates: a 64-bit difference hash (dHash) of the crop within ``hash_distance`` bits
  (Hamming) of one of the last ``hash_memory`` captures of the same source and region is not saved (a part
  standing still under the camera, the same doubtful part frame after frame); the suppression rate is reported;
* writes the images atomically (temp file + rename), then appends one JSONL line per capture to
  ``captures.jsonl`` (prediction, top-k, source, region, box, time, why, model SHA-256, perceptual hash), so a
  line never names a file that was not written;
* captures at most ``max_fps`` frames a second per source (the rest are counted as ``rate_limited``);
* keeps the folder under ``max_gb``: the oldest captures' files go first (their lines stay; ``review`` skips
  captures whose crop is gone and says so).

Layout of the capture folder::

    captures.jsonl                 one line per capture
    crops/<id>.png                 the region crop: what is labelled
    frames/<frame id>.png          the full frame (one per captured frame; absent for whole-frame sources)

:func:`collect` is ``edgecnn capture``: deliberate collection of one label from a camera or a source, every
``every`` seconds or on each Enter.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import queue
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import ConfigError
from edgecnn.monitor import Worker
from edgecnn.station.events import WHOLE_FRAME, Alarm, FrameEvent
from edgecnn.station.fields import option as _opt

CAPTURES_FILE = "captures.jsonl"
CROPS_DIR = "crops"
FRAMES_DIR = "frames"
FORMATS = ("png", "jpg")
WHY = ("low_score", "small_margin", "flip", "sample")


@dataclass(frozen=True)
class CaptureConfig:
    """The ``capture`` section of the station file (and the ``--capture-*`` flags of ``run``)."""

    enabled: bool = _opt(False, "Save the frames the model doubts (and a random sample) for relabelling.")
    out: str = _opt("captures", "Folder of the captures (a relative path is inside the station's state folder).")
    below: float = _opt(0.6, "Capture a region whose top-1 score is below this.", min=0.0, max=1.0)
    margin: float = _opt(0.15, "Capture a region whose first two scores are closer than this.", min=0.0, max=1.0)
    flips: bool = _opt(True, "Capture a region whose debounced decision changed.")
    sample: float = _opt(0.0, "Also capture this fraction of all regions at random (0.01: one in a hundred).",
                         min=0.0, max=1.0)
    hash_distance: int = _opt(6, "A crop within this many bits (of 64) of a recent capture's perceptual hash is a "
                                 "near-duplicate and is not saved.", min=0, max=64)
    hash_memory: int = _opt(512, "Recent captures per source/region whose hashes are compared.", min=1,
                            max=100_000)
    max_gb: float = _opt(2.0, "Disk the captures may use; the oldest go first.", min=0.001, max=100_000.0)
    format: str = _opt("jpg", "Image format of the captures (jpg: quality 95, ~10x cheaper to encode than png).",
                       choices=FORMATS)
    max_fps: float = _opt(1.0, "Most frames a source may capture per second (0: no limit); the rest are counted as "
                               "rate_limited. Bounds the CPU and disk capture takes when a whole shift is doubtful.",
                          min=0.0, max=1000.0)
    queue: int = _opt(16, "Frames waiting for the capture thread; more are skipped and counted.", min=1,
                      max=10_000)
    seed: int | None = _opt(None, "Seed of the random sample (None: random).")

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"Expected capture.format in {list(FORMATS)}; received {self.format!r}.")


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash of an RGB/gray uint8 image: the luma resized to 9x8, one bit per horizontal step
    (brighter to the right). Robust to noise, compression and small brightness changes; near images differ in a
    few bits."""
    import cv2

    step = max(1, min(image.shape[0], image.shape[1]) // 64)  # strided to ~64 px first: cheap, the same hash
    view = np.ascontiguousarray(image[::step, ::step])
    g = view if view.ndim == 2 else (view[:, :, 0] if view.shape[2] == 1 else cv2.cvtColor(view, cv2.COLOR_RGB2GRAY))
    small = cv2.resize(np.ascontiguousarray(g), (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def triggers(event: FrameEvent, config: CaptureConfig, rng: random.Random) -> dict[int, list[str]]:
    """Why each region of ``event`` should be captured: ``{region index: [reasons]}`` (cheap: the engine's thread)."""
    flipped = {d.region for d in event.decisions if d.changed and d.source == event.source}
    out: dict[int, list[str]] = {}
    for i, p in enumerate(event.predictions):
        why = []
        if p.class_index >= 0 and p.score < config.below:
            why.append("low_score")
        if len(p.topk) > 1 and float(p.topk[0][1]) - float(p.topk[1][1]) < config.margin:
            why.append("small_margin")
        if config.flips and p.region in flipped:
            why.append("flip")
        if config.sample > 0 and rng.random() < config.sample:
            why.append("sample")
        if why:
            out[i] = why
    return out


@dataclass
class CaptureStats:
    """What capture reports (the run summary, ``/metrics``)."""

    triggered: int = 0  # regions that met a condition
    saved: int = 0
    suppressed: int = 0  # near-duplicates not saved
    skipped: int = 0  # frames the full queue could not take (counted, never blocking)
    rate_limited: int = 0  # triggered frames over max_fps
    evicted: int = 0  # captures whose files were removed to stay under max_gb
    errors: int = 0
    bytes: int = 0
    last_error: str = ""

    @property
    def suppression_rate(self) -> float:
        seen = self.saved + self.suppressed
        return self.suppressed / seen if seen else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "suppression_rate": round(self.suppression_rate, 4)}


def _stamp(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y%m%dT%H%M%S_%f")


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-name-safe rendering of a source or region name."""
    return _SAFE.sub("-", text).strip("-")[:40] or "x"


def encode(image: np.ndarray, fmt: str) -> bytes:
    """RGB uint8 to PNG/JPEG bytes."""
    import cv2

    img = image if image.ndim == 2 or image.shape[2] == 1 else cv2.cvtColor(np.ascontiguousarray(image),
                                                                            cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, buf = cv2.imencode(f".{fmt}", img, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()


class Capture(Worker):
    """The capture observer (see the module docstring).

    Args:
        config: The ``capture`` section.
        out: The capture folder (created).
        model_sha256: Written on every line.
        start: Start the thread (tests that feed frames synchronously with :meth:`process` pass False).
    """

    wants_pixels = True

    def __init__(self, config: CaptureConfig, out: str | os.PathLike[str], model_sha256: str = "",
                 start: bool = True) -> None:
        self.config = config
        self.out = Path(out)
        self.model_sha256 = model_sha256
        self.stats = CaptureStats()
        self._rng = random.Random(config.seed)
        self._hashes: dict[tuple[str, str], deque[int]] = {}
        self._seq = 0
        self._last: dict[str, float] = {}  # source -> monotonic time of its last queued capture
        for d in (CROPS_DIR, FRAMES_DIR):
            (self.out / d).mkdir(parents=True, exist_ok=True)
        self._files: deque[tuple[str, list[Path], int]] = deque()  # (capture id, its files, bytes), oldest first
        self._scan()
        index = self.out / CAPTURES_FILE
        if index.exists() and index.stat().st_size:
            with open(index, "rb+") as fh:  # a line torn by a kill is ended, so the next capture's stays whole
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
        self._jsonl = open(index, "a", encoding="utf-8")  # noqa: SIM115 - held open
        self._start_worker(config.queue, "edgecnn-capture", start)

    def _scan(self) -> None:
        """What an earlier run left (oldest first by name: ids start with the UTC time), for the disk bound."""
        groups: dict[str, list[Path]] = {}
        for d in (CROPS_DIR, FRAMES_DIR):
            for f in (self.out / d).iterdir():
                if f.is_file() and not f.name.startswith("."):
                    groups.setdefault(f.name.split("__")[0].rsplit(".", 1)[0], []).append(f)
        for key in sorted(groups):
            size = sum(f.stat().st_size for f in groups[key])
            self._files.append((key, groups[key], size))
            self.stats.bytes += size

    # ------------------------------------------------------------------ engine side
    def on_frame(self, event: FrameEvent) -> None:
        """Test the triggers and queue a triggered frame; returns at once, never raises."""
        try:
            if self._closed or event.image is None:
                return
            why = triggers(event, self.config, self._rng)
            if not why:
                return
            self.stats.triggered += len(why)
            if self.config.max_fps > 0:
                now = time.monotonic()
                if now - self._last.get(event.source, -1e9) < 1.0 / self.config.max_fps:
                    self.stats.rate_limited += 1
                    return
                self._last[event.source] = now
            self._q.put_nowait((event, why))
        except queue.Full:
            self.stats.skipped += 1
        except Exception as exc:  # noqa: BLE001 - an observer never raises into the engine
            self.stats.errors += 1
            self.stats.last_error = str(exc)

    def metrics(self) -> list[tuple[str, dict[str, str], float, str]]:
        """Figures for ``/metrics``: (name, labels, value, help)."""
        s = self.stats
        out = [(f"edgecnn_capture_{k}_total", {}, float(getattr(s, k)), f"Capture: {k.replace('_', ' ')}")
               for k in ("triggered", "saved", "suppressed", "skipped", "rate_limited", "evicted", "errors")]
        out.append(("edgecnn_capture_suppression_rate", {}, s.suppression_rate,
                    "Share of triggered captures not saved as near-duplicates"))
        out.append(("edgecnn_capture_bytes", {}, float(s.bytes), "Disk the captures use"))
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Write every queued capture, then stop (``captures.jsonl`` is closed once nothing writes to it)."""
        if self._stop(timeout) and not self._worker_stuck:
            self._jsonl.close()

    def _handle(self, item: object) -> None:
        self.process(*item)  # type: ignore[misc]

    def _unhandled(self, count: int) -> None:
        self.stats.skipped += count

    # ------------------------------------------------------------------ capture side
    def process(self, event: FrameEvent, why: dict[int, list[str]] | None = None) -> list[dict[str, Any]]:
        """Save the triggered regions of one frame that are not near-duplicates; returns their JSONL records."""
        try:
            if why is None:
                why = triggers(event, self.config, self._rng)
                self.stats.triggered += len(why)
            return self._save(event, why)
        except Exception as exc:  # noqa: BLE001
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return []

    def _save(self, event: FrameEvent, why: dict[int, list[str]]) -> list[dict[str, Any]]:
        img = np.asarray(event.image)
        fmt = self.config.format
        kept: list[tuple[int, np.ndarray, int]] = []
        for i in sorted(why):
            region = event.regions[i]
            crop = img if region.name == WHOLE_FRAME else img[region.y0:region.y1, region.x0:region.x1]
            if crop.size == 0:
                continue
            h = dhash(crop)
            recent = self._hashes.setdefault((event.source, region.name), deque(maxlen=self.config.hash_memory))
            if any(hamming(h, r) <= self.config.hash_distance for r in recent):
                self.stats.suppressed += 1
                continue
            recent.append(h)
            kept.append((i, crop, h))
        if not kept:
            return []
        from edgecnn.fileio import write_bytes

        self._seq += 1
        fid = f"{_stamp(event.captured_at or time.time())}-{self._seq:06d}-{safe_name(event.source)}"
        files: list[Path] = []
        frame_rel = None
        whole = all(event.regions[i].name == WHOLE_FRAME for i, _c, _h in kept)
        if not whole:
            frame_rel = f"{FRAMES_DIR}/{fid}.{fmt}"
            files.append(write_bytes(self.out / frame_rel, encode(img, fmt)))
        records = []
        for i, crop, h in kept:
            region, pred = event.regions[i], event.predictions[i]
            crop_rel = f"{CROPS_DIR}/{fid}__{safe_name(region.name)}.{fmt}"
            files.append(write_bytes(self.out / crop_rel, encode(crop, fmt)))
            rec = {"id": f"{fid}__{safe_name(region.name)}", "time": round(event.captured_at, 6),
                   "source": event.source, "region": region.name, "box": [region.x0, region.y0, region.x1, region.y1],
                   "frame": event.frame, "label": pred.label, "score": round(float(pred.score), 6),
                   "topk": [[lbl, round(float(s), 6)] for lbl, s in pred.topk],
                   "margin": round(float(pred.topk[0][1]) - float(pred.topk[1][1]), 6) if len(pred.topk) > 1 else None,
                   "why": why[i], "model_sha256": self.model_sha256, "dhash": f"{h:016x}",
                   "crop": crop_rel, "frame_file": frame_rel or crop_rel}
            records.append(rec)
        self._jsonl.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))  # whole lines
        self._jsonl.flush()
        size = sum(f.stat().st_size for f in files)
        self._files.append((fid, files, size))
        self.stats.saved += len(records)
        self.stats.bytes += size
        self._bound()
        return records

    def _bound(self) -> None:
        limit = self.config.max_gb * 1e9
        while self.stats.bytes > limit and len(self._files) > 1:
            _fid, files, size = self._files.popleft()
            for f in files:
                try:
                    f.unlink()
                except FileNotFoundError:
                    pass
            self.stats.bytes -= size
            self.stats.evicted += 1


def create(config: CaptureConfig, *, station: Any = None, labels: list[str] | None = None, model_sha256: str = "",
           state_dir: str | os.PathLike[str] | None = None, raise_alarm: Callable[[Alarm], None] | None = None,
           card: Any = None) -> Capture:
    """The station's capture observer (``raise_alarm`` and ``card`` are accepted for a uniform signature)."""
    out = Path(config.out)
    if not out.is_absolute() and state_dir is not None:
        out = Path(state_dir) / out
    return Capture(config, out, model_sha256)


# ---------------------------------------------------------------------------- deliberate collection
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


def parse_interval(text: str | float | None) -> float | None:
    """``0.5s``, ``500ms``, ``2``, ``1m`` to seconds (None stays None)."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return float(text)
    m = _INTERVAL.match(text)
    if not m:
        raise ConfigError(f"Expected an interval like 0.5s, 500ms or 2; received {text!r}.")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]


@dataclass
class CollectResult:
    folder: Path
    saved: list[Path]
    frames: int


def collect(out: str | os.PathLike[str], label: str, source: str | None = None, camera: int | None = None,
            every: str | float | None = None, on_key: bool = False, max_images: int | None = None,
            duration: float | None = None, keys: Iterable[str] | None = None, fmt: str = "png") -> CollectResult:
    """Save frames of a camera or source into ``out/label/`` (``edgecnn capture``).

    Args:
        out: The dataset folder (one sub-folder per class).
        label: The class folder the frames go to.
        every: Save a frame every this many seconds (``0.5s``; by the video's own clock for video files).
        on_key: Save the newest frame each time a line is read from ``keys`` (Enter on the terminal); ``q`` stops.
            From a file source each line takes the next frame (``n`` skips it).
        max_images, duration: Stop after this many saved images / seconds.
        keys: Lines standing for key presses (default: standard input).
    """
    from edgecnn.fileio import write_bytes
    from edgecnn.runtime.sources import open_source

    if (every is None) == (not on_key):
        raise ConfigError("Expected one of --every INTERVAL or --on-key; received "
                          + ("both." if on_key else "neither."))
    if not label or Path(label).name != label or label in (".", ".."):
        raise ConfigError(f"Expected --label to be a plain class-folder name; received {label!r}.")
    if fmt not in FORMATS:
        raise ConfigError(f"Expected a format in {list(FORMATS)}; received {fmt!r}.")
    interval = parse_interval(every)
    folder = Path(out) / label
    src = open_source(source=source, camera=camera, keep_image=True)
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    pressed: queue.Queue[str] = queue.Queue()
    if on_key:
        import sys

        lines = keys if keys is not None else sys.stdin

        def read() -> None:
            for line in lines:
                pressed.put(line.strip().lower())
            pressed.put("q")

        threading.Thread(target=read, daemon=True).start()
    fps = float(getattr(src, "fps", 0.0) or 0.0) if not src.live else 0.0
    t0 = time.monotonic()
    last: float | None = None
    frames = 0
    try:
        for frame in src:
            if frame.image is None:
                continue
            frames += 1
            now = frame.index / fps if fps else time.monotonic() - t0
            take = False
            if interval is not None:
                take = last is None or now - last >= interval - 1e-9
            else:  # a live source: each key takes its newest frame; a file: each key takes or skips the next one
                got = [pressed.get()] if not src.live else []
                while src.live and not pressed.empty():
                    got.append(pressed.get())
                if "q" in got:
                    break
                take = any(k not in ("n", "s") for k in got)
            if take:
                last = now
                name = f"{safe_name(label)}-{_stamp(time.time())}-{len(saved):05d}.{fmt}"
                saved.append(write_bytes(folder / name, encode(frame.image, fmt)))
                if max_images and len(saved) >= max_images:
                    break
            if duration and time.monotonic() - t0 >= duration:
                break
    finally:
        src.close()
    return CollectResult(folder, saved, frames)


__all__ = ["Capture", "CaptureConfig", "CaptureStats", "CollectResult", "collect", "create", "dhash", "hamming",
           "parse_interval", "triggers"]
