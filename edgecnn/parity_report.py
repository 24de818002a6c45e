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


def rich_table(results: list[ParityResult], title: str = "Parity"):
    """A :class:`rich.table.Table` of the results (for the CLI)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for col in COLUMNS:
        table.add_column(col, no_wrap=True,
                         justify="left" if col in ("artifact", "format", "precision", "gate") else "right")
    for r, row in zip(results, table_rows(results)):
        style = None if not r.checked else ("green" if r.passed else "red")
        row = row[:-1] + [f"[{style}]{row[-1]}[/{style}]" if style else row[-1]]
        table.add_row(*row)
    return table


def print_table(results: list[ParityResult], title: str = "Parity") -> None:
    """Print the results table on stdout, never squeezed below its natural width (columns stay readable in pipes)."""
    from edgecnn.console import console

    table = rich_table(results, title=title)
    old = console.width
    console.width = max(old, 160)
    try:
        console.print(table)
    finally:
        console.width = old


def failure_summary(results: list[ParityResult]) -> str:
    """One line naming every failed artifact and by how much."""
    parts = [f"{r.artifact}: {'; '.join(r.failures)}" for r in results if r.checked and not r.passed]
    return "Parity gate failed — " + " | ".join(parts)


def raise_for_failures(results: list[ParityResult]) -> None:
    """Raise :class:`~edgecnn.errors.ParityError` naming every failed artifact (no-op when all passed)."""
    from edgecnn.errors import ParityError

    if any(r.checked and not r.passed for r in results):
        raise ParityError(failure_summary(results))
