"""Parity results and their text: the result of one artifact, the table (Markdown for reports, rich for the
terminal) and the one-line failure summary. :mod:`edgecnn.parity` computes them and re-exports these names; this
module imports nothing of it (no cycle, lazy or not)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgecnn.fileio import human_size


@dataclass
class ParityResult:
    """One candidate compared with the reference."""

    artifact: str
    path: str
    format: str
    precision: str
    samples: int
    max_abs: float
    mean_abs: float
    agreement: float
    accuracy_reference: float | None
    accuracy: float | None
    accuracy_drop: float | None
    passed: bool
    gate: str
    failures: list[str] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)
    size_bytes: int | None = None
    size_ratio: float | None = None
    conversion_seconds: float | None = None
    checked: bool = True
    layer_errors: list[dict[str, Any]] = field(default_factory=list)
    repair: dict[str, Any] | None = None  # int8 self-repair: layers kept in float and their cost (export)
    quantization: dict[str, Any] | None = None  # int8 settings chosen and why (export, from the converter)
    consumers: dict[str, Any] | None = None  # agreement under consumers' resizes (export, edgecnn.export.consumers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

COLUMNS = ("artifact", "format", "precision", "size", "× fp32", "max |Δp|", "mean |Δp|", "top-1 agree",
           "acc ref", "acc", "Δ acc", "convert s", "gate")


def table_rows(results: list[ParityResult]) -> list[list[str]]:
    """One row of strings per result, in :data:`COLUMNS` order."""
    rows = []
    for r in results:
        rows.append([
            r.artifact, r.format, r.precision,
            human_size(r.size_bytes) if r.size_bytes is not None else "—",
            f"{r.size_ratio:.2f}" if r.size_ratio is not None else "—",
            f"{r.max_abs:.2e}" if r.checked else "—",
            f"{r.mean_abs:.2e}" if r.checked else "—",
            _pct(r.agreement) if r.checked else "—",
            _pct(r.accuracy_reference) if r.checked else "—",
            _pct(r.accuracy) if r.checked else "—",
            f"{-100 * r.accuracy_drop + 0.0:+.1f} pts" if r.checked and r.accuracy_drop is not None else "—",
            f"{r.conversion_seconds:.1f}" if r.conversion_seconds is not None else "—",
            ("PASS" if r.passed else "FAIL") if r.checked else "not checked",
        ])
    return rows


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def markdown_table(results: list[ParityResult]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join(lines) + "\n"


def _terminal_cols() -> list[Any]:
    """How the parity table gives way at narrow widths: the name, the gate and the agreement stay."""
    from edgecnn.tables import KEEP, Col

    priority = {"artifact": KEEP, "gate": KEEP, "top-1 agree": 90, "Δ acc": 80, "acc": 70, "max |Δp|": 60,
                "size": 50, "× fp32": 30, "acc ref": 25, "mean |Δp|": 20, "convert s": 15, "precision": 12,
                "format": 10}
    short = {"top-1 agree": "top-1", "precision": "prec", "convert s": "conv s", "mean |Δp|": "mean Δp",
             "max |Δp|": "max Δp"}
    return [Col(c, short.get(c, ""), priority[c], right=c not in ("artifact", "format", "precision", "gate"))
            for c in COLUMNS]


def _rows_and_styles(results: list[ParityResult]) -> tuple[list[dict[str, str]], list[str | None]]:
    rows = [dict(zip(COLUMNS, row)) for row in table_rows(results)]
    styles = ["red" if r.checked and not r.passed else None for r in results]
    return rows, styles


def rich_table(results: list[ParityResult], title: str = "Parity", width: int | None = None):
    """A :class:`rich.table.Table` of the results fitted to ``width`` columns (None: every column)."""
    from rich import box

    from edgecnn.tables import fit_table

    rows, styles = _rows_and_styles(results)
    return fit_table(_terminal_cols(), rows, width, title=title, styles=styles, box=box.SIMPLE_HEAD)


def print_table(results: list[ParityResult], title: str = "Parity") -> None:
    """Print the results table fitted to the terminal (every column, never squeezed, in a pipe or a log)."""
    from rich import box

    from edgecnn.tables import print_fitted

    rows, styles = _rows_and_styles(results)
    print_fitted(_terminal_cols(), rows, title=title, styles=styles, box=box.SIMPLE_HEAD)


def failure_summary(results: list[ParityResult]) -> str:
    """One line naming every failed artifact and by how much."""
    parts = [f"{r.artifact}: {'; '.join(r.failures)}" for r in results if r.checked and not r.passed]
    return "Parity gate failed — " + " | ".join(parts)


def raise_for_failures(results: list[ParityResult]) -> None:
    """Raise :class:`~edgecnn.errors.ParityError` naming every failed artifact (no-op when all passed)."""
    from edgecnn.errors import ParityError

    if any(r.checked and not r.passed for r in results):
        raise ParityError(failure_summary(results))
