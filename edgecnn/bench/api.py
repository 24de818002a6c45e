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
    check_outputs({f"--report #{i + 1}" if len(out) > 1 else "--report": p for i, p in enumerate(out)},
                  {"MODEL": list(inputs)})
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


def bench_pick(models: Sequence[str | os.PathLike[str]], profile: str | os.PathLike[str],
               reports: Sequence[str | os.PathLike[str]] = (), max_drop: float = 0.01,
               **options: Any) -> tuple[BenchReport, list[Path], Any, Path]:
    """``bench --pick``: measure every artifact × threads × batch, pick the fastest that passes the accuracy gate
    and write it as a deploy profile (see :mod:`edgecnn.bench.pick`).

    Returns:
        (report, report files written, the :class:`~edgecnn.bench.pick.Pick`, the profile path).

    Raises:
        ConfigError: no ``data`` (accuracy is what the gate checks), a bad profile path, or a bad gate.
        GateError: nothing measured passes the gate (the report files are written first).
    """
    from edgecnn.bench.pick import pick, write_profile
    from edgecnn.bench.render import write_report
    from edgecnn.errors import ConfigError
    from edgecnn.outputs import check_outputs

    if options.get("data") is None:
        raise ConfigError("--pick needs --data DIR (labelled class folders): the pick is gated on accuracy.")
    if not 0.0 <= max_drop <= 1.0:
        raise ConfigError(f"Expected --gate-int8-acc-drop as a fraction in [0, 1] (0.01 = 1 point); received {max_drop}.")
    profile = Path(profile)
    if profile.suffix.lower() != ".json":
        raise ConfigError(f"--pick writes a JSON deploy profile; expected a .json path, received {profile}.")
    outputs = _check_outputs(reports, _model_files(models))
    check_outputs({"--pick": profile}, {"MODEL": _model_files(models), **{f"--report {p}": p for p in outputs}})
    report = run_bench(models, **options)
    written = [write_report(report, p) for p in outputs]
    if report.partial:  # stopped by a signal: no profile from half a measurement
        return report, written, None, None  # type: ignore[return-value]
    choice = pick(report, max_drop=max_drop, min_accuracy=options.get("min_accuracy"))
    return report, written, choice, write_profile(choice, report, profile)


def compare(paths: Sequence[str | os.PathLike[str]], reports: Sequence[str | os.PathLike[str]] = (),
            metric: str = "p50") -> tuple[Comparison, list[Path]]:
    """Merge bench reports and write each ``--report`` file (by suffix)."""
    from edgecnn.bench.render import write_comparison

    outputs = _check_outputs(reports, paths)
    cmp = compare_reports(paths, metric=metric)
    return cmp, [write_comparison(cmp, p) for p in outputs]
