"""Bench report rendering: the terminal table, Markdown and self-contained HTML with charts, and comparisons.

Generic building blocks (tables, pages, PNG embedding) come from :mod:`edgecnn.reports`; this module knows the
bench's rows (:class:`~edgecnn.bench.schema.BenchResult`) and comparisons.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.reports import (
    charts_html,
    check_report_suffix,
    html_page,
    html_table,
    markdown_table,
    new_figure,
    png_bytes,
    system_rows,
)
from edgecnn.tables import KEEP, Col

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from edgecnn.bench.compare import Comparison
    from edgecnn.bench.schema import BenchReport, BenchResult

#: Columns of the bench table, in order (terminal, Markdown and HTML share them). Latency is per image (a batch
#: call's time divided by its images), as FPS and --pick are; "Batch p50 ms" is the whole call, labelled as such.
BENCH_COLUMNS = ("Format", "Precision", "Backend", "Threads", "Batch", "Size MB", "Accuracy",
                 "p50 ms/img", "p90 ms/img", "p99 ms/img", "FPS", "Batch p50 ms", "Status")
#: How the terminal table gives way at narrow widths (edgecnn.tables): what a user compares stays longest.
BENCH_TERMINAL = (
    Col("Format", priority=KEEP), Col("Precision", "Prec", priority=KEEP), Col("Backend", priority=10),
    Col("Threads", "Thr", priority=70, right=True), Col("Batch", "B", priority=70, right=True),
    Col("Size MB", "MB", priority=30, right=True), Col("Accuracy", "Acc", priority=60, right=True),
    Col("p50 ms/img", "p50 ms", priority=90, right=True), Col("p90 ms/img", "p90", priority=12, right=True),
    Col("p99 ms/img", "p99", priority=40, right=True), Col("FPS", priority=85, right=True),
    Col("Batch p50 ms", "Batch ms", priority=15, right=True), Col("Status", priority=65, text=True, max_chars=28),
)
#: Extra columns in the file reports (all statistics).
DETAIL_COLUMNS = ("File", "Backend", "Threads", "Batch", "Runtime", "Delegate/provider", "Init ms", "First ms",
                  "Init cold ms", "Init warm ms", "First cold ms", "First warm ms", "Init cache",
                  "Runs", "min ms/call", "mean ms/call", "std ms/call", "p50 ms/call", "p90 ms/call", "p99 ms/call",
                  "max ms/call", "p50 ms/img", "Inf/s", "Images/s",
                  "Peak RSS MB", "RSS growth MB", "Preproc ms/img", "End-to-end ms/img")

# ====================================================================== bench rows
def _f(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _ms(v: float | None) -> str:
    """Milliseconds with enough digits for sub-millisecond models (3 significant digits at least)."""
    if v is None:
        return "—"
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}" if v < 100 else f"{v:.1f}"


def row_label(r: BenchResult, sweep: bool = True) -> str:
    """Short name of a row for charts: file plus threads/batch when they vary."""
    label = r.file
    if sweep:
        label += f" t={'auto' if r.threads is None else r.threads} b={r.batch}"
    return label


def _is_sweep(results: Sequence[BenchResult]) -> bool:
    return len({(r.threads, r.batch) for r in results}) > 1


def summary_row(r: BenchResult) -> dict[str, str]:
    """The bench table's cells for one row."""
    lat = r.latency
    status = "ok" if r.status == "ok" else f"{r.status}: {r.error}"
    if r.capped:
        status += " (max-seconds reached)"
    per = max(1, r.batch)

    def img(v: float | None) -> str:
        return _ms(v / per if v is not None else None)

    return {
        "Format": r.format,
        "Precision": r.precision,
        "Backend": r.backend,
        "Threads": "auto" if r.threads is None else str(r.threads),
        "Batch": str(r.batch),
        "Size MB": _f(r.size_mb, 2),
        "Accuracy": "—" if r.accuracy is None else f"{r.accuracy * 100:.1f}%",
        "p50 ms/img": img(lat.p50_ms if lat else None),
        "p90 ms/img": img(lat.p90_ms if lat else None),
        "p99 ms/img": img(lat.p99_ms if lat else None),
        "FPS": _f(r.images_per_s, 1),
        "Batch p50 ms": _ms(lat.p50_ms if lat else None) if r.batch > 1 else "—",
        "Status": status,
    }


def detail_row(r: BenchResult) -> dict[str, str]:
    """Every statistic of a row (file reports)."""
    lat = r.latency
    accel = r.provider or r.delegate or "—"
    if r.node_providers and len(r.node_providers) > 1:  # some nodes ran elsewhere than the first provider
        accel += " (" + ", ".join(f"{n} nodes on {p.replace('ExecutionProvider', '')}"
                                  for p, n in r.node_providers.items()) + ")"
    return {
        "File": r.file,
        "Backend": r.backend,
        "Threads": "auto" if r.threads is None else str(r.threads),
        "Batch": str(r.batch),
        "Runtime": f"{r.runtime or '?'} {r.runtime_version or ''}".strip(),
        "Delegate/provider": accel,
        "Init ms": _f(r.init_ms, 2),
        "First ms": _ms(r.first_ms),
        "Init cold ms": _f(r.init_cold_ms, 2),
        "Init warm ms": _f(r.init_warm_ms, 2),
        "First cold ms": _ms(r.first_cold_ms),
        "First warm ms": _ms(r.first_warm_ms),
        "Init cache": r.init_cache or "—",
        "Runs": str(lat.count) if lat else "—",
        "min ms/call": _ms(lat.min_ms if lat else None),
        "mean ms/call": _ms(lat.mean_ms if lat else None),
        "std ms/call": _ms(lat.std_ms if lat else None),
        "p50 ms/call": _ms(lat.p50_ms if lat else None),
        "p90 ms/call": _ms(lat.p90_ms if lat else None),
        "p99 ms/call": _ms(lat.p99_ms if lat else None),
        "max ms/call": _ms(lat.max_ms if lat else None),
        "p50 ms/img": _ms(lat.p50_ms / max(1, r.batch) if lat else None),
        "Inf/s": _f(r.inferences_per_s, 1),
        "Images/s": _f(r.images_per_s, 1),
        "Peak RSS MB": _f(r.rss_peak_mb, 1),
        "RSS growth MB": _f(r.rss_growth_mb, 1),
        "Preproc ms/img": _ms(r.preprocess_ms),
        "End-to-end ms/img": _ms(r.end_to_end_ms),
    }


def settings_line(settings: Mapping[str, Any]) -> str:
    """One line describing how the figures were taken."""
    s = settings
    parts = [
        f"warm-up ≥{s.get('warmup')} runs and ≥{s.get('warmup_seconds')} s",
        f"timed loop ≥{s.get('runs')} runs and ≥{s.get('min_seconds')} s (cap {s.get('max_seconds')} s)",
        f"timer {s.get('timer', 'perf_counter_ns')}",
    ]
    if s.get("cpus"):
        parts.append(f"pinned to CPUs {s['cpus']}")
    if s.get("device_profile"):
        parts.append(f"device profile {s['device_profile']}")
    if s.get("data"):
        parts.append(f"data {s['data']}")
    return "; ".join(parts)


def results_table(report: BenchReport, title: str | None = None, width: int | None = None) -> Table:
    """The rich table printed by ``edgecnn bench``, fitted to ``width`` columns (None: every column)."""
    from edgecnn.tables import fit_table

    partial = f" — PARTIAL (stopped by {report.partial})" if report.partial else ""
    styles = [None if r.status == "ok" else ("red" if r.status == "error" else "dim") for r in report.results]
    return fit_table(BENCH_TERMINAL, [summary_row(r) for r in report.results], width,
                     title=(title or f"edgecnn bench — {report.label}") + partial, styles=styles)


def print_results(report: BenchReport, title: str | None = None) -> None:
    """Print the bench table fitted to the terminal (every column in a pipe or a log). Combinations that could not
    run (a batch of 8 on a fixed-batch model, ...) are one line each kind under the table, not rows of dashes; the
    written reports keep them as rows."""
    from collections import Counter

    from edgecnn.console import console
    from edgecnn.tables import print_fitted

    partial = f" — PARTIAL (stopped by {report.partial})" if report.partial else ""
    shown = [r for r in report.results if r.status != "skipped"] or list(report.results)
    styles = [None if r.status == "ok" else ("red" if r.status == "error" else "dim") for r in shown]
    print_fitted(BENCH_TERMINAL, [summary_row(r) for r in shown],
                 title=(title or f"edgecnn bench — {report.label}") + partial, styles=styles)
    if len(shown) < len(report.results):
        reasons = Counter(r.error or "skipped" for r in report.results if r.status == "skipped")
        for reason, n in reasons.items():
            console.print(f"Skipped {n} combination{'s' if n > 1 else ''}: {reason}", markup=False)


# ====================================================================== charts
def best_row(results: Sequence[BenchResult]) -> BenchResult | None:
    """The fastest measured row per image among those within 1 point of the best accuracy (any, without data):
    the option the report highlights (``bench --pick`` applies its own gate and writes a profile)."""
    ok = [r for r in results if r.ok]
    if not ok:
        return None
    with_acc = [r.accuracy for r in ok if r.accuracy is not None]
    if with_acc:
        ok = [r for r in ok if r.accuracy is None or r.accuracy >= max(with_acc) - 0.01] or ok
    return min(ok, key=lambda r: r.latency.p50_ms / max(1, r.batch))  # type: ignore[union-attr]


#: Rows drawn in the latency CDF: more lines than this are unreadable; the fastest ones are drawn.
CDF_LINES = 8


def latency_charts(results: Sequence[BenchResult]) -> list[bytes]:
    """PNG charts of measured rows, per image: p50/p90 bars per row (the best highlighted; the figure grows with
    the rows so 18 stay readable), and the latency CDF of the fastest :data:`CDF_LINES` rows.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    from edgecnn.errors import require

    require("matplotlib", "train", "to draw charts")
    import numpy as np

    ok = [r for r in results if r.ok]
    if not ok:
        return []
    sweep = _is_sweep(ok)
    labels = [row_label(r, sweep) for r in ok]
    per = [max(1, r.batch) for r in ok]
    p50 = [r.latency.p50_ms / b for r, b in zip(ok, per)]  # type: ignore[union-attr]
    p90 = [r.latency.p90_ms / b for r, b in zip(ok, per)]  # type: ignore[union-attr]
    best = best_row(ok)

    fig = new_figure(9.0, max(2.4, 0.38 * len(ok) + 1.4))
    ax = fig.add_subplot()
    y = np.arange(len(ok))
    ax.barh(y - 0.2, p50, height=0.4, label="p50", color=["#1f9d55" if r is best else "#3b7dd8" for r in ok])
    ax.barh(y + 0.2, p90, height=0.4, label="p90", color="#f0a030")
    for yi, v in zip(y, p50):
        ax.text(v, yi - 0.2, f" {v:.3g}", va="center", fontsize=7)
    ax.set_yticks(y, [("★ " if r is best else "") + lbl for r, lbl in zip(ok, labels)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("latency per image (ms; a batch call divided by its images)")
    ax.set_title("Latency per image (p50, p90); ★ green: the best option")
    ax.legend(loc="lower right", fontsize=8)
    bars = png_bytes(fig)

    fastest = sorted(range(len(ok)), key=lambda i: p50[i])[:CDF_LINES]
    fig = new_figure(9.5, 4.0)
    ax = fig.add_subplot()
    for i in fastest:
        r = ok[i]
        s = np.sort(np.asarray(r.samples_ms or [r.latency.p50_ms], dtype=float)) / per[i]  # type: ignore[union-attr]
        ax.step(s, np.arange(1, s.size + 1) / s.size, where="post", label=labels[i],
                linewidth=2.2 if r is best else 1.2)
    ax.set_xscale("log")
    ax.set_xlabel("latency per image (ms, log scale)")
    ax.set_ylabel("fraction of runs ≤ x")
    more = f" (the fastest {len(fastest)} of {len(ok)})" if len(ok) > len(fastest) else ""
    ax.set_title("Latency CDF" + more)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    cdf = png_bytes(fig)
    return [bars, cdf]


# ====================================================================== bench report writers
def report_markdown(report: BenchReport) -> str:
    """The bench report as Markdown."""
    out = [f"# edgecnn bench — {report.label}\n", f"_{settings_line(report.settings)}_\n",
           *([f"**PARTIAL: stopped by {report.partial}; only the rows measured before it.**\n"] if report.partial else []),
           "## Results\n",
           markdown_table([summary_row(r) for r in report.results], BENCH_COLUMNS), "\n## All statistics\n",
           markdown_table([detail_row(r) for r in report.results if r.ok], DETAIL_COLUMNS)]
    if report.gates.get("fail_above_ms") is not None or report.gates.get("min_accuracy") is not None:
        out.append("\n## Gates\n")
        out.append(f"fail above {report.gates.get('fail_above_ms')} ms ({report.gates.get('metric')}), "
                   f"min accuracy {report.gates.get('min_accuracy')}: "
                   + ("**FAILED**\n\n" + "".join(f"- {g}\n" for g in report.gate_failures) if report.gate_failures
                      else "passed\n"))
    out.append("\n## System\n")
    out.append(markdown_table(system_rows(report.system), ("Fact", "Value")))
    return "".join(out)


def report_html(report: BenchReport) -> str:
    """The bench report as one self-contained HTML page (tables + embedded PNG charts)."""
    best = best_row(report.results)
    classes = ["best" if r is best else (r.status if r.status != "ok" else "") for r in report.results]
    rows = [summary_row(r) for r in report.results]
    for r, row in zip(report.results, rows):
        if r is best:
            row["Status"] = "★ best: " + row["Status"]
    lead = ""
    if best is not None:
        lead = (f'<p class="best-line">★ Best option: <b>{html.escape(best.file)}</b> on {html.escape(best.backend)}, '
                f"threads {'auto' if best.threads is None else best.threads}, batch {best.batch}: "
                f"{_ms(best.latency.p50_ms / max(1, best.batch))} ms per image (p50)"  # type: ignore[union-attr]
                + (f", accuracy {best.accuracy * 100:.1f}%" if best.accuracy is not None else "")
                + " (fastest within 1 point of the best accuracy; <code>bench --pick</code> writes it as a profile)</p>")
    sections = [
        ("Results", lead + html_table(rows, BENCH_COLUMNS, classes)),
        ("Charts", charts_html(latency_charts, report.results, alts=("p50 and p90 latency per image", "latency CDF"))),
        ("All statistics", html_table([detail_row(r) for r in report.results if r.ok], DETAIL_COLUMNS)),
    ]
    if report.gates.get("fail_above_ms") is not None or report.gates.get("min_accuracy") is not None:
        body = (f"<p>fail above {report.gates.get('fail_above_ms')} ms ({html.escape(str(report.gates.get('metric')))}),"
                f" min accuracy {report.gates.get('min_accuracy')}</p>")
        if report.gate_failures:
            body += '<div class="warn"><b>FAILED</b><ul>' + "".join(
                f"<li>{html.escape(g)}</li>" for g in report.gate_failures) + "</ul></div>"
        else:
            body += "<p>passed</p>"
        sections.append(("Gates", body))
    sections.append(("System", html_table(system_rows(report.system), ("Fact", "Value"))))
    return html_page(f"edgecnn bench — {report.label}", sections, subtitle=settings_line(report.settings))


def write_report(report: BenchReport, path: str | os.PathLike[str]) -> Path:
    """Write a bench report; the format follows the suffix (``.json``, ``.md``, ``.html``). Atomic."""
    from edgecnn.fileio import write_text

    p = Path(path)
    suffix = check_report_suffix(p)
    if suffix == ".json":
        return report.save_json(p)
    if suffix == ".md":
        return write_text(p, report_markdown(report))
    return write_text(p, report_html(report))


# ====================================================================== comparison
def _cmp_unit(metric: str) -> str:
    return "images/s" if metric == "fps" else "ms"


def comparison_rows(cmp: Comparison) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a comparison: one column per device; ⚠ marks rows whose files differ."""
    columns = ["Artifact", "Precision", "Backend", "Threads", "Batch"] + list(cmp.devices)
    rows = []
    digits = 1 if cmp.metric == "fps" else 3
    for r in cmp.rows:
        cells = {"Artifact": r.file + (" ⚠ different model" if r.model_mismatch else ""), "Precision": r.precision,
                 "Backend": r.backend, "Threads": r.threads, "Batch": r.batch}
        for d in cmp.devices:
            v = r.values.get(d)
            st = r.status.get(d, "")
            cells[d] = (_f(v, digits) if cmp.metric == "fps" else _ms(v)) if v is not None else ("—" if st == "not measured" else st.split(":")[0])
        rows.append(cells)
    return columns, rows


def _comparison_cols(cmp: Comparison) -> list[Col]:
    return [Col("Artifact", priority=KEEP), Col("Precision", "Prec", priority=60), Col("Backend", priority=20),
            Col("Threads", "Thr", priority=70, right=True), Col("Batch", "B", priority=70, right=True),
            *(Col(d, priority=KEEP - 1, right=True) for d in cmp.devices)]


def comparison_table(cmp: Comparison, width: int | None = None) -> Table:
    """The rich table printed by ``edgecnn bench compare``, fitted to ``width`` columns (None: every column)."""
    from edgecnn.tables import fit_table

    _, rows = comparison_rows(cmp)
    return fit_table(_comparison_cols(cmp), rows, width,
                     title=f"edgecnn bench compare — {cmp.metric} ({_cmp_unit(cmp.metric)})",
                     styles=["yellow" if src.model_mismatch else None for src in cmp.rows])


def print_comparison(cmp: Comparison) -> None:
    """Print the comparison fitted to the terminal (every column in a pipe or a log)."""
    from edgecnn.tables import print_fitted

    _, rows = comparison_rows(cmp)
    print_fitted(_comparison_cols(cmp), rows, title=f"edgecnn bench compare — {cmp.metric} ({_cmp_unit(cmp.metric)})",
                 styles=["yellow" if src.model_mismatch else None for src in cmp.rows])


def comparison_chart(cmp: Comparison) -> bytes | None:
    """Grouped bars: one group per artifact row, one bar per device (None when nothing was measured)."""
    from edgecnn.errors import require

    require("matplotlib", "train", "to draw charts")
    import numpy as np

    rows = [r for r in cmp.rows if any(v is not None for v in r.values.values())]
    if not rows:
        return None
    sweep = len({(r.threads, r.batch) for r in rows}) > 1
    labels = [r.file + (f" t={r.threads} b={r.batch}" if sweep else "") for r in rows]
    n_dev = len(cmp.devices)
    fig = new_figure(8.0, max(2.6, 0.35 * len(rows) * max(1, n_dev) / 1.5 + 1.4))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    h = 0.8 / max(1, n_dev)
    for i, d in enumerate(cmp.devices):
        vals = [r.values.get(d) for r in rows]
        ax.barh(y - 0.4 + h * (i + 0.5), [v if v is not None else 0 for v in vals], height=h, label=d)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{cmp.metric} ({_cmp_unit(cmp.metric)})")
    ax.set_title(f"{cmp.metric} per artifact and device")
    ax.legend(fontsize=8)
    return png_bytes(fig)


def comparison_markdown(cmp: Comparison) -> str:
    columns, rows = comparison_rows(cmp)
    out = [f"# edgecnn bench compare — {cmp.metric} ({_cmp_unit(cmp.metric)})\n"]
    if cmp.warnings:
        out.append("".join(f"> ⚠ {w}\n" for w in cmp.warnings) + "\n")
    out.append(markdown_table(rows, columns))
    out.append("\n## Devices\n")
    out.append(markdown_table(_device_rows(cmp), ("Device", "Report", "CPU", "Cores", "Machine", "OS", "GPU", "Timestamp")))
    return "".join(out)


def _device_rows(cmp: Comparison) -> list[dict[str, str]]:
    rows = []
    for d in cmp.devices:
        s = cmp.systems.get(d, {})
        rows.append({"Device": d, "Report": cmp.sources.get(d, ""), "CPU": s.get("board") or s.get("cpu") or "",
                     "Cores": str(s.get("cores_logical") or ""), "Machine": s.get("machine") or "",
                     "OS": s.get("os") or "", "GPU": "; ".join(s.get("gpus") or []) or "—",
                     "Timestamp": s.get("timestamp") or ""})
    return rows


def comparison_html(cmp: Comparison) -> str:
    columns, rows = comparison_rows(cmp)
    sections: list[tuple[str, str]] = []
    if cmp.warnings:
        sections.append(("", '<div class="warn">' + "<br>".join("⚠ " + html.escape(w) for w in cmp.warnings) + "</div>"))
    sections.append(("Side by side", html_table(rows, columns, ["mismatch" if r.model_mismatch else "" for r in cmp.rows])))
    sections.append(("Chart", charts_html(lambda c: [p for p in [comparison_chart(c)] if p], cmp,
                                           alts=(f"{cmp.metric} per artifact and device",))))
    sections.append(("Devices", html_table(_device_rows(cmp), ("Device", "Report", "CPU", "Cores", "Machine", "OS", "GPU",
                                                                "Timestamp"))))
    return html_page(f"edgecnn bench compare — {cmp.metric}", sections,
                     subtitle=f"{len(cmp.devices)} devices: {', '.join(cmp.devices)}")


def write_comparison(cmp: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write a comparison; format by suffix (``.json``, ``.md``, ``.html``). Atomic."""
    from edgecnn.fileio import write_json, write_text

    p = Path(path)
    suffix = check_report_suffix(p)
    if suffix == ".json":
        return write_json(p, cmp.to_dict())
    if suffix == ".md":
        return write_text(p, comparison_markdown(cmp))
    return write_text(p, comparison_html(cmp))
