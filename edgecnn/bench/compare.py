"""``edgecnn bench compare``: merge reports from several devices into one table (rows: artifact, columns: devices).

Rows are matched by file name, backend, threads and batch (threads only when a report sweeps them: each
device is usually benched at its own thread count). A comparison is only meaningful for the same
model, so reports taken with different models are flagged: per row when the same file name has different
SHA-256 checksums, and globally when the source-model ids in the cards' provenance differ.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgecnn.bench.schema import SCHEMA, BenchReport, BenchResult, load_report
from edgecnn.errors import ConfigError

COMPARE_SCHEMA = "edgecnn.bench-compare/1"
METRICS = ("p50", "p90", "p99", "mean", "fps")


@dataclass
class CompareRow:
    """One artifact configuration and its figure on every device (None: not measured / failed there)."""

    file: str
    format: str
    precision: str
    backend: str
    threads: str
    batch: str
    values: dict[str, float | None]
    status: dict[str, str]
    model_mismatch: bool = False
    sha256: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Comparison:
    """Several bench reports side by side."""

    devices: list[str]
    metric: str
    rows: list[CompareRow]
    systems: dict[str, dict[str, Any]]
    sources: dict[str, str]
    warnings: list[str]
    reports: dict[str, BenchReport] = field(default_factory=dict, repr=False)

    @property
    def model_mismatch(self) -> bool:
        return any(r.model_mismatch for r in self.rows) or any("different models" in w for w in self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": COMPARE_SCHEMA,
            "report_schema": SCHEMA,
            "metric": self.metric,
            "devices": self.devices,
            "sources": self.sources,
            "systems": self.systems,
            "warnings": self.warnings,
            "rows": [r.__dict__ for r in self.rows],
        }


def metric_value(r: BenchResult, metric: str) -> float | None:
    """A row's figure for ``metric`` (ms for latencies, images/s for ``fps``)."""
    if not r.ok:
        return None
    if metric == "fps":
        return r.images_per_s
    return r.latency.percentile(metric)  # type: ignore[union-attr]


def _unique_labels(reports: Sequence[BenchReport], paths: Sequence[str]) -> list[str]:
    labels: list[str] = []
    for rep, path in zip(reports, paths):
        label = rep.label or os.path.splitext(os.path.basename(path))[0]
        if label in labels:
            label = f"{label} ({os.path.splitext(os.path.basename(path))[0]})"
        n = 2
        base = label
        while label in labels:
            label, n = f"{base} #{n}", n + 1
        labels.append(label)
    return labels


def compare_reports(paths: Sequence[str | os.PathLike[str]], metric: str = "p50") -> Comparison:
    """Load and merge bench reports.

    Raises:
        ConfigError: fewer than one report or an unknown metric.
        DataError: a file that is not a valid bench report.
    """
    if metric not in METRICS:
        raise ConfigError(f"Expected --metric one of {METRICS}; received {metric!r}.")
    if not paths:
        raise ConfigError("Expected one or more REPORT.json files written by `edgecnn bench --report`.")
    reports = [load_report(p) for p in paths]
    labels = _unique_labels(reports, [str(p) for p in paths])
    # Each device is usually benched at its own thread count (rpi4 at 4, a server at auto): when no report
    # sweeps threads, rows line up on file, backend and batch, and the Threads cell lists each device's setting.
    sweeps_threads = any(
        len({r.key[2] for r in rep.results}) > 1 for rep in reports
    )
    rows: dict[tuple[str, str, str, str], CompareRow] = {}
    for label, rep in zip(labels, reports):
        for r in rep.results:
            key = r.key if sweeps_threads else (r.key[0], r.key[1], "*", r.key[3])
            row = rows.get(key)
            if row is None:
                row = rows[key] = CompareRow(r.file, r.format, r.precision, r.backend, *r.key[2:], values={}, status={})
            elif r.key[2] not in row.threads.split(" / "):
                row.threads += f" / {r.key[2]}"
            row.values[label] = metric_value(r, metric)
            row.status[label] = r.status if r.status == "ok" else f"{r.status}: {r.error}"
            row.sha256[label] = r.sha256
    warnings: list[str] = []
    for row in rows.values():
        for label in labels:
            row.values.setdefault(label, None)
            row.status.setdefault(label, "not measured")
        shas = {s for s in row.sha256.values() if s}
        if len(shas) > 1:
            row.model_mismatch = True
            warnings.append(f"{row.file}: different files on {', '.join(sorted(row.sha256))} (SHA-256 differ)")
    model_ids = {label: {r.model_id for r in rep.results if r.model_id} for label, rep in zip(labels, reports)}
    distinct = set().union(*model_ids.values()) if model_ids else set()
    if len(distinct) > 1:
        detail = "; ".join(f"{lbl}: {', '.join(sorted(i)[:1])[:12] or '?'}" for lbl, i in model_ids.items())
        warnings.insert(0, f"Reports were taken with different models (source model ids {detail}).")
    elif any(r.model_mismatch for r in rows.values()):
        warnings.insert(0, "Reports were taken with different models: the same artifact names have different contents.")
    if len(labels) > 1 and not any(sum(v is not None for v in row.values.values()) > 1 for row in rows.values()):
        warnings.append("No artifact was measured with the same file name, backend, threads and batch in more than "
                        "one report: nothing lines up side by side (different models or settings?).")
    systems = {
        label: {k: rep.system.get(k) for k in ("hostname", "cpu", "board", "cores_logical", "machine", "os", "gpus",
                                                 "timestamp", "edgecnn", "libraries")}
        for label, rep in zip(labels, reports)
    }
    return Comparison(
        devices=labels, metric=metric, rows=list(rows.values()), systems=systems,
        sources={label: str(p) for label, p in zip(labels, paths)}, warnings=warnings,
        reports=dict(zip(labels, reports)),
    )
