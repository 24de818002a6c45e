"""Report writers: terminal tables, JSON, Markdown and self-contained HTML with PNG charts.

The HTML pages embed every chart as a ``data:image/png;base64`` URI, so one file can be mailed or
attached to a CI run. Charts use matplotlib's Agg canvas without pyplot (no global state, no display);
when matplotlib is not installed the HTML is written without charts and a warning says so.

These are the generic building blocks (the bench and demo reports use them): :func:`html_page`,
:func:`html_table`, :func:`markdown_table`, :func:`png_data_uri`, :func:`img_tag`, :func:`new_figure`,
:func:`charts_html`. This module knows nothing of bench or export: bench report rendering lives in
:mod:`edgecnn.bench.render`.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError

REPORT_SUFFIXES = (".json", ".md", ".html", ".htm")


# ====================================================================== generic helpers
def have_matplotlib() -> bool:
    """Whether charts can be drawn."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def new_figure(width: float = 7.0, height: float = 3.6) -> Any:
    """A matplotlib Figure on the Agg canvas (no pyplot, safe in threads and headless)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def png_data_uri(fig_or_png: Any) -> str:
    """A ``data:image/png;base64,...`` URI from a matplotlib figure or PNG bytes."""
    data = fig_or_png if isinstance(fig_or_png, bytes | bytearray) else png_bytes(fig_or_png)
    return "data:image/png;base64," + base64.b64encode(bytes(data)).decode("ascii")


def img_tag(fig_or_png: Any, alt: str) -> str:
    """An ``<img>`` element embedding the chart."""
    return f'<img src="{png_data_uri(fig_or_png)}" alt="{html.escape(alt)}">'


def _cells(row: Mapping[str, Any] | Sequence[Any], columns: Sequence[str]) -> list[str]:
    if isinstance(row, Mapping):
        values = [row.get(c, "") for c in columns]
    else:
        values = list(row)
    return ["" if v is None else str(v) for v in values]


def markdown_table(rows: Sequence[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table (rows as dicts keyed by column, or sequences)."""

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in _cells(r, columns)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: Sequence[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str],
               row_classes: Sequence[str] | None = None) -> str:
    """An HTML table with escaped cells."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{html.escape(row_classes[i])}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r, columns)) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1240px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left}
th{background:#f3f3f3}tr.error td{background:#fde8e8}tr.skipped td{color:#888}tr.mismatch td{background:#fff4d6}
tr.best td{background:#e3f6ea;font-weight:600}.best-line{background:#e3f6ea;border-left:4px solid #1f9d55;padding:.5em 1em}
th{white-space:normal}td{white-space:nowrap}td:last-child{white-space:normal;min-width:10em}.scroll{overflow-x:auto;max-width:100%}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.5em 1em}.muted{color:#777;font-size:.85em}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
"""


def html_page(title: str, sections: Sequence[tuple[str, str]], subtitle: str | None = None) -> str:
    """A self-contained HTML document (inline CSS, no external resources).

    Args:
        title: Page title and ``<h1>``.
        sections: ``(heading, html_body)`` pairs; a section with an empty heading has no ``<h2>``.
        subtitle: Optional line under the title.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="muted">{html.escape(subtitle)}</p>')
    for heading, body in sections:
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(body)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def check_report_suffix(path: Path) -> str:
    """The suffix of a ``--report`` file (``.json``, ``.md``, ``.html``, ``.htm``).

    Raises:
        ConfigError: any other suffix.
    """
    suffix = path.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ConfigError(f"Expected --report FILE ending in {', '.join(REPORT_SUFFIXES)}; received {path.name!r}.")
    return suffix


def system_rows(system: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(fact, value) pairs of a report's system section, for tables."""
    libs = system.get("libraries") or {}
    acc = system.get("accelerators_used") or {}
    cores = f"{system.get('cores_logical')} logical"
    if system.get("cores_physical"):
        cores += f", {system.get('cores_physical')} physical"
    if system.get("cpus_allowed"):
        cores += f"; allowed {system.get('cpus_allowed')}"
    rows = [
        ("Host", system.get("hostname")),
        ("CPU", system.get("cpu")),
        ("Board", system.get("board")),
        ("Cores", cores),
        ("Machine", system.get("machine")),
        ("OS", system.get("os")),
        ("Python", system.get("python")),
        ("numpy", system.get("numpy")),
        ("Libraries", ", ".join(f"{k} {v}" for k, v in libs.items())),
        ("Providers used", ", ".join(acc.get("providers") or []) or "—"),
        ("Delegates used", ", ".join(acc.get("delegates") or []) or "—"),
        ("GPU", system.get("gpu_used") or ("; ".join(system.get("gpus") or []) + " (not used)" if system.get("gpus") else "none")),
        ("Memory MB", system.get("memory_total_mb")),
        ("Timestamp", system.get("timestamp")),
        ("edgecnn", system.get("edgecnn")),
    ]
    return [(k, "" if v is None else str(v)) for k, v in rows if v not in (None, "")]


def print_table(table: Any, console: Any = None) -> None:
    """Print a rich table; when output is not a terminal (CI logs, pipes) use its full width instead of wrapping."""
    from rich.console import Console
    from rich.measure import Measurement

    from edgecnn.console import console as default_console

    console = console or default_console
    console = getattr(console, "rich", console)  # a LazyConsole: rich measures a real Console
    if not console.is_terminal:
        width = max(console.width, Measurement.get(console, console.options.update_width(400), table).maximum)
        if width > console.width:
            console = Console(file=console.file if console.file is not None else None, width=width, highlight=False)
    console.print(table)


def charts_html(make: Any, *args: Any, alts: Sequence[str]) -> str:
    """``<img>`` tags of the PNG charts ``make(*args)`` draws, or a note when matplotlib is missing or nothing ran."""
    from edgecnn.console import warn

    if not have_matplotlib():
        warn("matplotlib is not installed: the HTML report has no charts (pip install matplotlib).")
        return '<p class="muted">Charts omitted: matplotlib is not installed.</p>'
    charts = make(*args)
    if not charts:
        return '<p class="muted">No successful measurement to chart.</p>'
    return "\n".join(img_tag(png, alt) for png, alt in zip(charts, alts))


def plot_confusion(cm: Any, labels: Sequence[str], path: str | os.PathLike[str], title: str = "Confusion matrix") -> bool:
    """Write a confusion-matrix PNG atomically; the one plot of it that train and evaluate share.

    Rows are true classes, columns predicted ones; colours are row-normalised and counts written in.
    Returns False, with a warning, when matplotlib is not installed.
    """
    import numpy as np

    from edgecnn.console import warn
    from edgecnn.fileio import atomic_path

    if not have_matplotlib():
        warn("matplotlib is not installed, so no confusion-matrix PNG: pip install 'edgecnn[train]' (or matplotlib).")
        return False
    cm = np.asarray(cm)
    n = len(labels)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * n + 2)
    fig = new_figure(size, size * 0.85)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return True
