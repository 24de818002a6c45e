"""A run's latencies are bounded (a live source runs for months) and its percentiles stay right: exact for a finite
source of normal size, those of the last N (and said so) for an endless one."""

from __future__ import annotations

import tracemalloc

import numpy as np

from edgecnn.runtime.pipeline import LatencyWindow, Result, Stats
from edgecnn.runtime.runner import RunSummary


def _feed(stats: Stats, values: np.ndarray) -> None:
    for v in values.tolist():
        stats.add(Result(source="cam", index=0, label="a", score=1.0, latency_ms=v))


def test_finite_run_keeps_every_latency_and_exact_percentiles():
    rng = np.random.default_rng(0)
    values = rng.exponential(5.0, 20_001)
    stats = Stats()
    _feed(stats, values)
    lat = stats.latencies_ms
    assert lat.complete and len(lat) == lat.total == 20_001 and lat.scope() == ""
    assert np.allclose(lat.percentiles(50, 90, 99), np.percentile(values, [50, 90, 99]), rtol=0, atol=1e-12)
    assert list(lat) == values.tolist() and lat[-1] == values[-1] and lat[0] == values[0]


def test_endless_run_is_bounded_and_reports_the_last_n():
    window = LatencyWindow(capacity=1000)
    stats = Stats(latencies_ms=window)
    rng = np.random.default_rng(1)
    early = rng.uniform(100.0, 200.0, 5000)  # a slow start that must not count once it scrolled out
    _feed(stats, early)
    late = rng.uniform(0.0, 10.0, 200_000)
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    _feed(stats, late)
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after - before < 64_000, f"{after - before} bytes grew for 200 000 results"  # a list would take >1.6 MB
    assert stats.count == stats.ok == 205_000 and window.total == 205_000
    assert len(window) == 1000 and not window.complete and window.scope() == " of the last 1,000"
    kept = late[-1000:]
    assert list(window) == kept.tolist() and window[-1] == late[-1] and window[0] == kept[0]
    assert np.allclose(window.percentiles(50, 99), np.percentile(kept, [50, 99]), rtol=0, atol=1e-12)

    summary = RunSummary(model="m", source="cam", backend_info={}, count=stats.count, ok=stats.ok,
                         latency_p50_ms=1.0, latency_p99_ms=2.0, latency_scope=window.scope())
    assert "(queueing included) of the last 1,000:" in summary.latency_line()


def test_default_capacity_holds_a_normal_folder_and_stays_small():
    window = LatencyWindow()
    assert window.capacity >= 100_000 and window.percentiles(50) == [0.0] and not window
    window.append(3.0)
    assert window.percentiles(50, 99) == [3.0, 3.0] and window[-1] == 3.0 and window._ring.nbytes <= 8192
