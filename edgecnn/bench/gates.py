"""``edgecnn bench`` deployment gates: latency ceiling and accuracy floor, checked on a report and raised for CI."""

from __future__ import annotations

from edgecnn.bench.schema import BenchReport
from edgecnn.errors import GateError, ModelError

GATE_METRICS = ("p50", "p90", "p99", "mean")


def check_gates(report: BenchReport) -> list[str]:
    """Gate failures of a report (empty when no gate is set or all pass).

    A gate fails for a row above ``fail_above_ms`` (on ``metric``), below ``min_accuracy``, or for any
    artifact that failed to run while a gate is set (a model that does not run cannot pass).
    """
    g = report.gates or {}
    limit, floor, metric = g.get("fail_above_ms"), g.get("min_accuracy"), g.get("metric", "p50")
    if limit is None and floor is None:
        return []
    failures: list[str] = []
    for r in report.results:
        where = f"{r.file} (threads={'auto' if r.threads is None else r.threads}, batch={r.batch})"
        if r.status == "error":
            failures.append(f"{where} failed to run: {r.error}")
            continue
        if not r.ok:
            continue
        value = r.latency.percentile(metric)  # type: ignore[union-attr]
        if limit is not None and value > limit:
            failures.append(f"{where} {metric} {value:.3f} ms > {limit:g} ms")
        if floor is not None and r.accuracy is not None and r.accuracy < floor:
            failures.append(f"{where} accuracy {r.accuracy:.4f} < {floor:g}")
    return failures


def enforce_gates(report: BenchReport) -> None:
    """Raise :class:`GateError` when the report has gate failures (for CI: non-zero exit).

    Also raises :class:`ModelError` when not a single row could be measured (every artifact failed or was
    skipped): a benchmark that measured nothing must not exit 0. Some failed rows among good ones do not raise
    unless a gate is set (see :func:`check_gates`).
    """
    if report.results and not any(r.ok for r in report.results):
        first = report.results[0]
        more = f" (+{len(report.results) - 1} more rows)" if len(report.results) > 1 else ""
        raise ModelError(f"Nothing was benchmarked: {first.file} {first.status}: {first.error}{more}.")
    if report.gate_failures:
        n = len(report.gate_failures)
        more = f" (+{n - 1} more)" if n > 1 else ""
        raise GateError(f"Benchmark gate failed: {report.gate_failures[0]}{more}.")
