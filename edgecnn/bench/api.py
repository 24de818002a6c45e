"""One call per CLI command: measure (or compare), then write the requested report files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecnn.bench.compare import Comparison, compare_reports
from edgecnn.bench.runner import run_bench
from edgecnn.bench.schema import BenchReport


def _check_outputs(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    from edgecnn.reports import check_report_suffix

    out = [Path(p) for p in paths]
    for p in out:
        check_report_suffix(p)  # a bad suffix fails before minutes of measuring, not after
    return out


def bench(models: Sequence[str | os.PathLike[str]], reports: Sequence[str | os.PathLike[str]] = (),
          **options: Any) -> tuple[BenchReport, list[Path]]:
    """Run :func:`~edgecnn.bench.runner.run_bench` and write each ``--report`` file (by suffix).

    Gates are evaluated but not raised: call :func:`~edgecnn.bench.runner.enforce_gates` after showing the table.
    """
    from edgecnn.bench.render import write_report

    outputs = _check_outputs(reports)
    report = run_bench(models, **options)
    return report, [write_report(report, p) for p in outputs]


def compare(paths: Sequence[str | os.PathLike[str]], reports: Sequence[str | os.PathLike[str]] = (),
            metric: str = "p50") -> tuple[Comparison, list[Path]]:
    """Merge bench reports and write each ``--report`` file (by suffix)."""
    from edgecnn.bench.render import write_comparison

    outputs = _check_outputs(reports)
    cmp = compare_reports(paths, metric=metric)
    return cmp, [write_comparison(cmp, p) for p in outputs]
