"""The dynamic batcher behind ``POST /predict``: one thread that runs the model on what the requests bring.

Requests hand preprocessed images to :meth:`Batcher.submit` and await the returned future. The batcher thread takes
the oldest job and, while other requests are still being read or decoded (:meth:`Batcher.incoming`), waits up to
``max_delay_ms`` for more, until ``max_batch`` images are gathered; then it runs one inference call for all of
them. A lone client therefore never waits for a batch that cannot come, and sixteen share one call.

The queue is bounded in images (``max_queue``): a job that does not fit is refused at once with :class:`Busy`,
which the app answers with 503.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Busy(Exception):
    """The queue is full: the request is refused (503), nothing was queued."""


@dataclass
class _Job:
    tensors: list[np.ndarray]
    sources: list[str]
    topk: int
    threshold: float
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters of the batcher (read by ``/metrics`` and ``/api/status``)."""

    batches: int = 0
    images: int = 0
    refused: int = 0
    infer_s: float = 0.0


class Batcher:
    """Runs a :class:`~edgecnn.classifier.Classifier` on batches gathered from concurrent requests.

    Args:
        classifier: The loaded model (``max_batch`` of the model caps the batch).
        max_batch: Most images per inference call.
        max_delay_ms: Longest wait for more images while requests are still arriving.
        max_queue: Most images waiting; more is refused with :class:`Busy`.
        on_batch: Called after each inference call with (images, seconds) (metrics).
    """

    def __init__(self, classifier: Any, max_batch: int = 8, max_delay_ms: float = 5.0, max_queue: int = 64,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        limit = classifier.max_batch
        self.classifier = classifier
        self.max_batch = max(1, min(max_batch, limit) if limit else max_batch)
        self.max_delay = max_delay_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._on_batch = on_batch
        self._jobs: deque[_Job] = deque()
        self._queued = 0
        self._incoming = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="edgecnn-batcher", daemon=True)

    # ------------------------------------------------------------------ requests' side
    def start(self) -> Batcher:
        self._thread.start()
        return self

    @property
    def queue_depth(self) -> int:
        """Images waiting for inference now."""
        return self._queued

    def incoming(self, delta: int) -> None:
        """A request started (+1) or finished (-1) reading and decoding: the batcher waits for it while > 0."""
        with self._cond:
            self._incoming += delta
            if delta < 0:
                self._cond.notify()

    def submit(self, tensors: list[np.ndarray], sources: list[str], topk: int, threshold: float) -> Future:
        """Queue preprocessed images; the future gives their :class:`~edgecnn.classifier.Prediction` list.

        Raises:
            Busy: the queue holds ``max_queue`` images already (nothing is queued).
        """
        job = _Job(tensors, sources, topk, threshold)
        with self._cond:
            if self._stopped:
                raise Busy("the server is stopping")
            if self._queued and self._queued + len(tensors) > self.max_queue:
                self.stats.refused += 1
                raise Busy(f"{self._queued} images are waiting (--max-queue {self.max_queue})")
            self._jobs.append(job)
            self._queued += len(tensors)
            self._cond.notify()
        return job.future

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the queued jobs, then stop the thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread
    def _gather(self) -> list[_Job] | None:
        with self._cond:
            while not self._jobs:
                if self._stopped:
                    return None
                self._cond.wait()
            batch = [self._jobs.popleft()]
            n = len(batch[0].tensors)
            deadline = time.perf_counter() + self.max_delay
            while n < self.max_batch:
                if self._jobs:
                    if n + len(self._jobs[0].tensors) > self.max_batch:
                        break
                    job = self._jobs.popleft()
                    batch.append(job)
                    n += len(job.tensors)
                    continue
                left = deadline - time.perf_counter()
                if self._incoming <= 0 or left <= 0 or self._stopped:
                    break
                self._cond.wait(left)
            self._queued -= n
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._gather()
            if batch is None:
                return
            tensors = [t for job in batch for t in job.tensors]
            t0 = time.perf_counter()
            try:
                probs = self.classifier._infer(np.stack(tensors), self.max_batch)
            except Exception as exc:  # noqa: BLE001  (answered as an error to each request, never kills the thread)
                for job in batch:
                    job.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - t0
            self.stats.batches += 1
            self.stats.images += len(tensors)
            self.stats.infer_s += seconds
            if self._on_batch is not None:
                self._on_batch(len(tensors), seconds)
            i = 0
            for job in batch:
                try:
                    preds = [self.classifier._prediction(probs[i + j], j, src, job.topk, job.threshold)
                             for j, src in enumerate(job.sources)]
                    job.future.set_result(preds)
                except Exception as exc:  # noqa: BLE001
                    job.future.set_exception(exc)
                i += len(job.tensors)


__all__ = ["BatchStats", "Batcher", "Busy"]
