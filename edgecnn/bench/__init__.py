"""Latency benchmarking of exported artifacts (``edgecnn bench``), TensorFlow-free.

* :mod:`edgecnn.bench.measure` — the timing loop and latency statistics;
* :mod:`edgecnn.bench.schema` — the versioned report (``edgecnn.bench/1``) and its validating loader;
* :mod:`edgecnn.bench.runner` — threads × batch sweeps, the measurement of each artifact, accuracy on ``--data``;
* :mod:`edgecnn.bench.artifacts` — which files a MODEL argument names; :mod:`edgecnn.bench.options` — sweep options
  and the device-profile merge; :mod:`edgecnn.bench.gates` — deployment gates;
* :mod:`edgecnn.bench.compare` — several devices' reports side by side.

* :mod:`edgecnn.bench.render` — the terminal table, JSON/Markdown/HTML reports with charts, comparisons.
"""

from edgecnn.bench.compare import Comparison, compare_reports
from edgecnn.bench.measure import BenchSettings, LatencyStats, Measurement, measure_latency
from edgecnn.bench.runner import check_gates, discover_artifacts, enforce_gates, run_bench
from edgecnn.bench.schema import SCHEMA, BenchReport, BenchResult, load_report

__all__ = [
    "SCHEMA",
    "BenchReport",
    "BenchResult",
    "BenchSettings",
    "Comparison",
    "LatencyStats",
    "Measurement",
    "check_gates",
    "compare_reports",
    "discover_artifacts",
    "enforce_gates",
    "load_report",
    "measure_latency",
    "run_bench",
]
