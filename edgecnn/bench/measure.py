"""The timing loop, measured like TFLite's ``benchmark_model`` and ``onnxruntime_perf_test``.

first inference (timed alone) → untimed warm-up (at least ``warmup`` runs and ``warmup_seconds``) →
timed loop of at least ``runs`` runs and at least ``min_seconds``, cut at ``max_seconds``.
Each run is timed on its own with :func:`time.perf_counter_ns`; the garbage collector is paused
during the timed loop so a collection never lands inside a sample.

Nothing here knows about models: :func:`measure_latency` times ``fn(arg)``; the runner passes a
backend's bound ``infer`` and an already prepared input tensor, so the loop adds nothing but the
two clock reads and a list append per run (``benchmarks/bench_overhead.py`` checks it against a raw
``interpreter.invoke()`` / ``session.run`` loop).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from edgecnn.errors import ConfigError

#: Samples kept in a report per row; more are reduced to evenly spaced order statistics (the CDF is kept).
MAX_STORED_SAMPLES = 5000


@dataclass
class BenchSettings:
    """How long and how often to run (defaults follow ``benchmark_model``'s spirit, scaled for edge boxes).

    Attributes:
        runs: Minimum number of timed runs (0: bounded by time only).
        min_seconds: Minimum duration of the timed loop (0: bounded by count only).
        max_seconds: Hard cap on the timed loop, even when ``runs`` is not reached.
        warmup: Untimed warm-up runs.
        warmup_seconds: Minimum warm-up duration (warm-up continues until both bounds are met).
        seed: Seed of the synthetic input when no ``--data`` is given.
    """

    runs: int = 50
    min_seconds: float = 1.0
    max_seconds: float = 60.0
    warmup: int = 5
    warmup_seconds: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for bounds that cannot make a loop."""
        if self.runs < 0 or self.warmup < 0:
            raise ConfigError(f"Expected --runs and --warmup >= 0; received runs={self.runs}, warmup={self.warmup}.")
        if self.min_seconds < 0 or self.warmup_seconds < 0:
            raise ConfigError(
                f"Expected --min-seconds and --warmup-seconds >= 0; received {self.min_seconds}, {self.warmup_seconds}."
            )
        if self.runs == 0 and self.min_seconds == 0:
            raise ConfigError("The timed loop needs a bound: give --runs N (> 0) and/or --min-seconds S (> 0).")
        if self.max_seconds <= 0:
            raise ConfigError(f"Expected --max-seconds > 0; received {self.max_seconds}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LatencyStats:
    """Latency statistics of one timed loop, in milliseconds."""

    count: int
    min_ms: float
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int]) -> LatencyStats:
        """Statistics of per-run durations in nanoseconds (percentiles: linear interpolation, numpy's default)."""
        import numpy as np

        if not len(samples_ns):
            raise ValueError("no samples")
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(
            count=int(ms.size),
            min_ms=float(ms.min()),
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
            p50_ms=float(p50),
            p90_ms=float(p90),
            p99_ms=float(p99),
            max_ms=float(ms.max()),
        )

    def percentile(self, name: str) -> float:
        """``"p50"``/``"p90"``/``"p99"``/``"mean"``/``"min"``/``"max"`` → milliseconds."""
        return float(getattr(self, f"{name}_ms"))


@dataclass
class Measurement:
    """Everything one call of :func:`measure_latency` saw."""

    first_ms: float
    warmup_runs: int
    warmup_seconds: float
    wall_seconds: float
    samples_ns: list[int] = field(repr=False)
    stats: LatencyStats
    capped: bool = False  # the loop hit max_seconds before reaching ``runs``


def measure_latency(fn: Callable[[Any], Any], arg: Any, settings: BenchSettings, first: bool = True) -> Measurement:
    """Time ``fn(arg)``: first call, warm-up, then the bounded timed loop.

    Args:
        fn: The call to time, e.g. a backend's bound ``infer``.
        arg: Its argument, prepared before timing (e.g. the quantized input tensor).
        settings: Loop bounds.
        first: Time the first call separately (False when the caller has already run it).
    """
    clock = time.perf_counter_ns
    first_ms = math.nan
    if first:
        t0 = clock()
        fn(arg)
        first_ms = (clock() - t0) / 1e6

    max_ns = int(settings.max_seconds * 1e9)
    warm_ns = int(settings.warmup_seconds * 1e9)
    n_warm = 0
    start = clock()
    while n_warm < settings.warmup or clock() - start < warm_ns:
        fn(arg)
        n_warm += 1
        if clock() - start >= max_ns:
            break
    warm_s = (clock() - start) / 1e9

    runs = settings.runs
    min_ns = int(settings.min_seconds * 1e9)
    samples: list[int] = []
    append = samples.append
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        stop_min, stop_max = start + min_ns, start + max_ns
        i = 0
        while True:
            t0 = clock()
            fn(arg)
            t1 = clock()
            append(t1 - t0)
            i += 1
            if t1 >= stop_max or (i >= runs and t1 >= stop_min):
                break
        wall = (clock() - start) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measurement(
        first_ms=first_ms,
        warmup_runs=n_warm,
        warmup_seconds=warm_s,
        wall_seconds=wall,
        samples_ns=samples,
        stats=LatencyStats.from_ns(samples),
        capped=i < runs,
    )


def stored_samples_ms(samples_ns: Sequence[int], limit: int = MAX_STORED_SAMPLES) -> list[float]:
    """Samples in ms (rounded to 0.1 µs) for a report; beyond ``limit``, evenly spaced order statistics."""
    import numpy as np

    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size > limit:
        ms = np.sort(ms)[np.linspace(0, ms.size - 1, limit).round().astype(int)]
    return [round(float(v), 4) for v in ms]
