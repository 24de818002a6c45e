"""The overlapped inference pipeline: capture → preprocess → infer → postprocess, each on its own thread.

::

    source (decode workers / capture thread) ─▶ preprocess thread ─q─▶ infer thread ─q─▶ caller's thread
                                                                                         (postprocess, sinks)

Queues are bounded, so memory stays flat and throughput is set by the slowest stage rather than the sum
of all of them. Finite sources are batched (``batch``) and never drop; live sources are never batched
beyond what is already waiting, and keep only their newest frame upstream.

Signals: :meth:`Pipeline.stop` may be called from a signal handler or any thread; in-flight frames are
finished and delivered, then iteration ends.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecnn.runtime.backends import Backend
from edgecnn.runtime.sources import Frame, Source

_END = object()

#: Label reported when the top-1 score is below ``--threshold``.
UNKNOWN_LABEL = "unknown"


#: The error of an input whose model output holds NaN or Inf: its row is ``skipped`` with a null score.
NONFINITE_ERROR = "the model returned non-finite scores (NaN/Inf); no label given"


@dataclass
class Result:
    """The classification of one input."""

    source: str
    index: int
    label: str = ""
    score: float = float("nan")
    topk: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    pre_ms: float = 0.0
    infer_ms: float = 0.0
    post_ms: float = 0.0
    latency_ms: float = 0.0
    class_index: int = -1
    probs: np.ndarray | None = field(default=None, repr=False)  # all class probabilities (not written to rows)
    #: ``softmax of logits`` / ``sigmoid of logits`` when edgecnn applied the model's activation (JSONL rows say so)
    scores: str | None = None
    #: Images in the inference call that classified it: ``infer_ms`` is that call's time divided by this.
    batch: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "index": self.index,
            "label": self.label,
            "score": None if self.error or not math.isfinite(float(self.score)) else round(float(self.score), 6),
            "topk": [[lbl, round(float(s), 6) if math.isfinite(float(s)) else None] for lbl, s in self.topk],
            "status": "ok" if self.ok else "skipped",
            "error": self.error or "",
            "preprocess_ms": round(self.pre_ms, 3),
            "inference_ms": round(self.infer_ms, 3),
            "postprocess_ms": round(self.post_ms, 3),
            "latency_ms": round(self.latency_ms, 3),
            "batch": self.batch,
            **({"scores": self.scores} if self.scores else {}),
        }


class LatencyWindow:
    """The latencies of a run: the last ``capacity`` exactly (a fixed ring of float64), and how many there were.

    A finite source of up to ``capacity`` inputs keeps every one, so its percentiles are exact; a live source that
    runs for months keeps a bounded ring (``capacity * 8`` bytes), and its percentiles are those of the last
    ``capacity`` results (:attr:`complete` is False, and the summary says "of the last N"). Iterating yields the
    kept values oldest first; ``[-1]`` is the newest.
    """

    #: 100 000 float64s: 800 kB, and every latency of a folder of normal size.
    CAPACITY = 100_000

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1; received {capacity}")
        self.capacity = capacity
        self.total = 0
        self._ring = np.empty(min(capacity, 1024), dtype=np.float64)

    def append(self, value: float) -> None:
        if self.total < self.capacity and self.total == len(self._ring):
            grown = np.empty(min(self.capacity, 2 * len(self._ring)), dtype=np.float64)
            grown[:self.total] = self._ring
            self._ring = grown
        self._ring[self.total % self.capacity] = value
        self.total += 1

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    @property
    def complete(self) -> bool:
        """Whether every latency of the run is kept (the percentiles are of all of them)."""
        return self.total <= self.capacity

    def values(self) -> np.ndarray:
        """The kept latencies, oldest first (a copy)."""
        if self.total <= self.capacity:
            return self._ring[:self.total].copy()
        at = self.total % self.capacity
        return np.concatenate((self._ring[at:], self._ring[:at]))

    def __iter__(self) -> Iterator[float]:
        return iter(self.values().tolist())

    def __getitem__(self, index: int) -> float:
        n = len(self)
        if not -n <= index < n:
            raise IndexError("latency index out of range")
        index %= n
        start = self.total - n  # the absolute number of the oldest kept value
        return float(self._ring[(start + index) % self.capacity])

    def __bool__(self) -> bool:
        return self.total > 0

    def percentiles(self, *qs: float) -> list[float]:
        """The ``q``-th percentiles (linear, as ``numpy.percentile``) of the kept latencies; 0.0 when none."""
        if not self.total:
            return [0.0 for _ in qs]
        ordered = np.sort(self._ring[:len(self)])
        out = []
        for q in qs:
            pos = (len(ordered) - 1) * q / 100.0
            lo = int(pos)
            hi = min(lo + 1, len(ordered) - 1)
            out.append(float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)))
        return out

    def scope(self) -> str:
        """``""`` when the percentiles cover the whole run, else ``" of the last N"``."""
        return "" if self.complete else f" of the last {self.capacity:,}"


@dataclass
class Stats:
    """Running timing and counting figures of a pipeline: the one measurement the live display and the final
    summary both read (the bar's last figures are the summary's)."""

    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    count: int = 0
    ok: int = 0
    skipped: int = 0
    pre_ms: float = 0.0
    infer_ms: float = 0.0
    post_ms: float = 0.0
    #: Bounded: every latency of a run of up to :attr:`LatencyWindow.CAPACITY` results, then the last ones.
    latencies_ms: LatencyWindow = field(default_factory=LatencyWindow)
    window: list[float] = field(default_factory=list)

    def add(self, r: Result) -> None:
        self.count += 1
        now = time.perf_counter()
        self.window.append(now)
        if len(self.window) > 120:
            del self.window[:60]
        if not r.ok:
            self.skipped += 1
            return
        self.ok += 1
        self.pre_ms += r.pre_ms
        self.infer_ms += r.infer_ms
        self.post_ms += r.post_ms
        self.latencies_ms.append(r.latency_ms)

    def finish(self) -> None:
        """Freeze the clock: figures read after the run ends stay the ones the summary reports."""
        if self.finished is None:
            self.finished = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return (self.finished if self.finished is not None else time.perf_counter()) - self.started

    def mean(self, what: str) -> float:
        return getattr(self, f"{what}_ms") / self.ok if self.ok else 0.0

    def fps(self, recent: bool = True) -> float:
        """Results per second: those of the last 2 s over 2 s (recent, while running) or the whole run.

        A batch delivers its results within microseconds, so a rate between result timestamps would read
        hundreds of thousands; counting the results of a fixed window does not.
        """
        if recent and self.finished is None and self.elapsed > 2.0:
            now = time.perf_counter()
            return sum(1 for t in self.window if now - t <= 2.0) / 2.0
        return self.count / self.elapsed if self.elapsed > 0 else 0.0


def topk_of(probs: np.ndarray, labels: list[str], k: int) -> list[tuple[int, float]]:
    """Indices and scores of the k highest probabilities, highest first.

    Ties (common with int8 outputs, whose scores are quantized) go to the lower class index, exactly as
    ``argmax`` does, so ``run``, ``evaluate``, ``bench`` and parity always name the same top-1 label.
    """
    k = max(1, min(k, len(probs)))
    idx = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in idx]


def topk_batch(probs: np.ndarray, k: int) -> tuple[list[list[int]], list[list[float]]]:
    """:func:`topk_of` for every row of an (N, classes) array at once: (indices, scores) as Python lists.

    The same order as :func:`topk_of` (stable sort of the negated scores, so ties go to the lower index);
    one numpy call per batch instead of one per image.
    """
    k = max(1, min(k, probs.shape[1]))
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return idx.tolist(), np.take_along_axis(probs, idx, axis=1).astype(np.float64).tolist()


class Pipeline:
    """Runs a backend over a source with overlapped stages and yields :class:`Result` objects in order.

    Args:
        backend: A loaded model.
        source: Where frames come from.
        batch: Frames per inference call for finite sources (clipped to what the model accepts).
        topk: Labels kept per result.
        threshold: Top-1 scores below it are reported as ``unknown``.
        max_frames: Stop after this many inputs.
        duration: Stop after this many seconds.
        keep_images: Keep RGB images on results' frames (for saving/showing); otherwise they are freed early.
    """

    def __init__(self, backend: Backend, source: Source, batch: int = 1, topk: int = 5, threshold: float = 0.0,
                 max_frames: int | None = None, duration: float | None = None, keep_images: bool = False) -> None:
        self.backend = backend
        self.source = source
        limit = backend.max_batch
        self.batch = max(1, min(batch, limit) if limit else batch)
        self.topk = topk
        self.threshold = threshold
        self.max_frames = max_frames
        self.duration = duration
        self.keep_images = keep_images
        self.stats = Stats()
        self.stop_reason: str | None = None
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        # Set when the consumer leaves (break, Ctrl-C, a sink raising): the stage threads then stop waiting on
        # queues at once. Without it, the drain below could swallow the producer's end marker while the infer
        # thread was busy, leaving that thread blocked on an empty queue (a 10 s hang and a leaked thread).
        self._abort = threading.Event()
        self._pre_ended = False
        depth = 1 if source.live else 4  # batches (lists of frames) waiting for the infer thread
        self._q_pre: queue.Queue = queue.Queue(maxsize=depth)
        self._q_out: queue.Queue = queue.Queue(maxsize=1 if source.live else 4)

    def stop(self, reason: str = "stopped") -> None:
        """Ask the pipeline to finish the frames in flight and end (safe from signal handlers)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        self.source.stop()

    # ------------------------------------------------------------------ stages
    def _put(self, q: queue.Queue, item: object) -> bool:
        while True:
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self._errors or self._abort.is_set():
                    return False

    def _get_pre(self) -> object:
        """Next item of the preprocess queue, or the end marker once the consumer has gone."""
        while not self._abort.is_set():
            try:
                return self._q_pre.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _prepare(self, frame: Frame) -> None:
        """A decoded frame's model input (unless the source's workers made it), and its image freed if not kept."""
        if frame.error is None and frame.tensor is None and frame.image is not None:
            t0 = time.perf_counter()
            frame.tensor = self.backend.preprocess(frame.image)
            frame.pre_ms += (time.perf_counter() - t0) * 1000.0
        if not self.keep_images:
            frame.image = None

    def _limit_reached(self, n: int, deadline: float | None) -> bool:
        """After the n-th frame: whether --max-frames, --duration or a stop ends the input (recording why)."""
        if self.max_frames is not None and n >= self.max_frames:
            self.stop("max-frames")
            return True
        if deadline is not None and time.perf_counter() >= deadline:
            self.stop("duration")
            return True
        return self._stop.is_set()

    def _produce(self) -> None:
        deadline = time.perf_counter() + self.duration if self.duration else None
        n = 0
        # Finite sources hand frames to the infer thread a batch at a time (one queue hand-off per batch, not
        # per image); live sources hand each frame over at once, so the newest frame is never held back.
        group = 1 if self.source.live else self.batch
        pending: list[Frame] = []
        try:
            for frame in self.source:
                self._prepare(frame)
                pending.append(frame)
                if len(pending) >= group:
                    if not self._put(self._q_pre, pending):
                        return
                    pending = []
                n += 1
                if self._limit_reached(n, deadline):
                    break
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            self._errors.append(exc)
        finally:
            if pending:  # frames decoded before the end (or an error) are still delivered
                self._put(self._q_pre, pending)
            self._put(self._q_pre, _END)

    def _gather(self) -> list[Frame] | None:
        if self._pre_ended:
            return None
        first = self._get_pre()
        if first is _END:
            return None
        items = list(first)
        while len(items) < self.batch:  # live sources: add frames already waiting, never wait for more
            try:
                item = self._q_pre.get_nowait() if self.source.live else self._get_pre()
            except queue.Empty:
                break
            if item is _END:
                self._pre_ended = True  # deliver this last (short) batch, then end
                break
            items.extend(item)
        return items

    def _infer_batch(self, items: list[Frame]) -> tuple[list[Frame], np.ndarray | None, float]:
        """One inference call over the decodable frames of ``items``: (items, raw outputs, ms per image)."""
        valid = [f for f in items if f.error is None]
        if not valid:
            return items, None, 0.0
        t0 = time.perf_counter()
        raw = self.backend.infer(self.backend.prepare(np.stack([f.tensor for f in valid])))
        return items, raw, (time.perf_counter() - t0) * 1000.0 / len(valid)

    def _infer(self) -> None:
        try:
            while True:
                items = self._gather()
                if items is None:
                    break
                if not self._put(self._q_out, self._infer_batch(items)):
                    return
        except BaseException as exc:  # noqa: BLE001
            self._errors.append(exc)
        finally:
            self._put(self._q_out, _END)

    def _postprocess(self, items: list[Frame], raw: np.ndarray | None, per_ms: float) -> Iterator[tuple[Frame, Result]]:
        labels = self.backend.labels
        kind = self.backend.scores
        kind = None if kind == "probabilities" else kind
        t0 = time.perf_counter()
        probs = self.backend.postprocess(raw) if raw is not None else None
        if probs is not None:
            top_idx, top_scores = topk_batch(probs, self.topk)  # one call per batch, not per image
        out: list[tuple[Frame, Result]] = []
        j = 0
        threshold = self.threshold
        for frame in items:
            if frame.error is not None:
                out.append((frame, Result(source=frame.source, index=frame.index, error=frame.error, pre_ms=frame.pre_ms)))
                continue
            idx, scores = top_idx[j], top_scores[j]
            best, score = idx[0], scores[0]
            if not np.isfinite(probs[j]).all():  # NaN/Inf scores: no label, a row that says why (JSON stays valid)
                out.append((frame, Result(source=frame.source, index=frame.index, error=NONFINITE_ERROR,
                                          pre_ms=frame.pre_ms, infer_ms=per_ms)))
                j += 1
                continue
            label = labels[best] if score >= threshold else UNKNOWN_LABEL
            kept = [(labels[i], v) for i, v in zip(idx, scores) if v >= threshold] if threshold > 0 else \
                [(labels[i], v) for i, v in zip(idx, scores)]
            out.append((frame, Result(source=frame.source, index=frame.index, label=label, score=score, topk=kept,
                                      pre_ms=frame.pre_ms, infer_ms=per_ms, class_index=best, probs=probs[j],
                                      scores=kind)))
            j += 1
        post_ms = (time.perf_counter() - t0) * 1000.0 / max(1, j)
        done = time.perf_counter()
        in_call = int(raw.shape[0]) if raw is not None and getattr(raw, "ndim", 0) else j
        for frame, r in out:
            if r.ok:
                r.post_ms = post_ms
                r.batch = max(1, in_call)
            r.latency_ms = (done - frame.t_capture) * 1000.0
            self.stats.add(r)
        return iter(out)

    # ------------------------------------------------------------------ driver
    def __iter__(self) -> Iterator[tuple[Frame, Result]]:
        """Yield (frame, result) in input order until the source ends or :meth:`stop` is called."""
        if not self.source.live and self.source.total is not None and self.source.total <= self.batch:
            yield from self._one_batch()
            return
        threads = [threading.Thread(target=self._produce, name="edgecnn-preprocess", daemon=True),
                   threading.Thread(target=self._infer, name="edgecnn-infer", daemon=True)]
        self.stats = Stats()
        for t in threads:
            t.start()
        try:
            while True:
                try:
                    item = self._q_out.get(timeout=0.1)
                except queue.Empty:
                    if self._errors and not any(t.is_alive() for t in threads):
                        break
                    continue
                if item is _END:
                    break
                yield from self._postprocess(*item)
        except KeyboardInterrupt:
            self.stop("SIGINT")  # before the finally below records the stop as a normal end
            raise
        finally:
            self.stop(self.stop_reason or "end")
            self._abort.set()
            self._drain(threads)
        if self._errors:
            raise self._errors[0]
        if self.stop_reason == "stopped":
            self.stop_reason = "end"

    def _one_batch(self) -> Iterator[tuple[Frame, Result]]:
        """A finite source that fits in one batch (one image, say): every stage in the caller's thread, since
        there is nothing to overlap, and starting and handing off to stage threads would be all the cost."""
        self.stats = Stats()
        deadline = time.perf_counter() + self.duration if self.duration else None
        items: list[Frame] = []
        try:
            for frame in self.source:
                self._prepare(frame)
                items.append(frame)
                if self._limit_reached(len(items), deadline):
                    break
            if items:
                yield from self._postprocess(*self._infer_batch(items))
        except KeyboardInterrupt:
            self.stop("SIGINT")
            raise
        finally:
            self.stop(self.stop_reason or "end")
            self.source.close()
        if self.stop_reason == "stopped":
            self.stop_reason = "end"

    def _drain(self, threads: list[threading.Thread]) -> None:
        deadline = time.perf_counter() + 10
        while any(t.is_alive() for t in threads) and time.perf_counter() < deadline:
            for q in (self._q_out, self._q_pre):
                try:
                    while True:
                        q.get_nowait()
                except queue.Empty:
                    pass
            for t in threads:
                t.join(timeout=0.05)
        self.source.close()
