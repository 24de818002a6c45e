"""One call per CLI command: measure (or compare), then write the requested report files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecnn.bench.compare import Comparison, compare_reports
from edgecnn.bench.runner import run_bench
from edgecnn.bench.schema import BenchReport


def _check_outputs(paths: Sequence[str | os.PathLike[str]],
                   inputs: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    from edgecnn.outputs import check_outputs
    from edgecnn.reports import check_report_suffix

    out = [Path(p) for p in paths]
    for p in out:
        check_report_suffix(p)  # a bad suffix fails before minutes of measuring, not after
    # no report may be a model or report it reads, or another --report; each must be writable (checked now)
    check_outputs({f"--report {p}": p for p in out}, {"MODEL": list(inputs)})
    return out


def _model_files(models: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The models named and the model files inside named folders (a report must not overwrite any)."""
    out: list[Path] = []
    for m in models:
        p = Path(m)
        out.append(p)
        if p.is_dir():
            out += [f for f in p.iterdir() if f.suffix.lower() in (".tflite", ".onnx", ".keras", ".h5", ".npz")]
    return out


def bench(models: Sequence[str | os.PathLike[str]], reports: Sequence[str | os.PathLike[str]] = (),
          **options: Any) -> tuple[BenchReport, list[Path]]:
    """Run :func:`~edgecnn.bench.runner.run_bench` and write each ``--report`` file (by suffix).

    Gates are evaluated but not raised: call :func:`~edgecnn.bench.runner.enforce_gates` after showing the table.
    """
    from edgecnn.bench.render import write_report

    outputs = _check_outputs(reports, _model_files(models))
    report = run_bench(models, **options)
    return report, [write_report(report, p) for p in outputs]


def compare(paths: Sequence[str | os.PathLike[str]], reports: Sequence[str | os.PathLike[str]] = (),
            metric: str = "p50") -> tuple[Comparison, list[Path]]:
    """Merge bench reports and write each ``--report`` file (by suffix)."""
    from edgecnn.bench.render import write_comparison

    outputs = _check_outputs(reports, paths)
    cmp = compare_reports(paths, metric=metric)
    return cmp, [write_comparison(cmp, p) for p in outputs]
