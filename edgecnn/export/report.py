"""What an export wrote: :class:`ExportReport`, ``export_report.json``/``.md`` and the next commands to run."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.registry import FORMATS, gate_precisions, precision_rank
from edgecnn import __version__
from edgecnn.errors import ParityError
from edgecnn.fileio import human_size, write_json, write_text
from edgecnn.parity import Gates, ParityResult, failure_summary, markdown_table

REPORT_JSON = "export_report.json"
REPORT_MD = "export_report.md"


@dataclass
class ExportReport:
    """What :func:`export` wrote and how each artifact compared with the Keras model."""

    source: str
    out_dir: Path
    results: list[ParityResult]
    checked: bool
    golden: Path | None
    report_json: Path
    report_md: Path
    commands: list[str] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    check_data: dict[str, Any] | None = None
    qat: dict[str, Any] | None = None  # export --qat-epochs: the fine-tune and the PTQ/QAT comparison (.qat)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results if r.checked)

    def artifacts(self) -> dict[str, Path]:
        """``"<format>-<precision>"`` → artifact path."""
        return {f"{r.format}-{r.precision}": Path(r.path) for r in self.results}

    def raise_for_gates(self) -> None:
        """Raise :class:`ParityError` naming every artifact that failed its gate and by how much."""
        if self.checked and not self.passed:
            raise ParityError(f"{failure_summary(self.results)} (details: {self.report_md})")


def next_commands(out_dir: Path, results: list[ParityResult], golden: Path | None) -> list[str]:
    """The commands a user runs next on these artifacts (the smallest runnable one first)."""
    # the smallest first: the most quantized precision of a format that runs on the edge (not a folder);
    # a failed gate is never suggested: only artifacts that passed (or were not checked) are runnable
    runnable = sorted((r for r in results if r.format in FORMATS and not FORMATS[r.format].directory
                       and (r.passed or not r.checked)), key=lambda r: -precision_rank(r.precision))
    cmds = []
    if runnable:
        best = Path(runnable[0].path)
        cmds.append(f"edgecnn run {best} --source path/to/images")
        cmds.append(f"edgecnn run {best} --camera 0")
        cmds.append(f"edgecnn info {best}")
    failed = [r for r in results if r.checked and not r.passed]
    if not failed:
        cmds.append(f"edgecnn bench {out_dir}")
    elif runnable:
        cmds.append(f"edgecnn bench {' '.join(str(Path(r.path)) for r in runnable)}")
    if golden is not None and runnable:
        cmds.append(f"edgecnn parity {' '.join(str(Path(r.path)) for r in runnable)} --golden {golden}")
    return cmds


def write_reports(report: ExportReport, options: dict[str, Any], gates: Gates) -> None:
    """Write ``export_report.json`` and ``export_report.md`` (atomically)."""
    data = {
        "edgecnn_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": report.source,
        "out_dir": str(report.out_dir),
        "options": options,
        "gates": gates.__dict__,
        "checked": report.checked,
        "passed": report.passed if report.checked else None,
        "golden": str(report.golden) if report.golden else None,
        "calibration": report.calibration,
        "check_data": report.check_data,
        "artifacts": [r.to_dict() for r in report.results],
        "qat": report.qat,
        "commands": report.commands,
    }
    write_json(report.report_json, data)
    lines = [f"# Export report — {Path(report.source).name}", "",
             f"Source: `{report.source}`  ", f"edgecnn {__version__}, {data['created']}", ""]
    if report.check_data:
        lines.append(f"Parity data: {report.check_data['samples']} held-out images from `{report.check_data['source']}`  ")
    if report.calibration:
        lines.append(f"int8 calibration: {report.calibration['samples']} images from `{report.calibration['source']}`  ")
    lines += ["", markdown_table(report.results)]
    if not report.checked:
        lines.append("**Parity was not checked (--no-check).**\n")
    elif report.passed:
        lines.append("All artifacts passed their parity gates.\n")
    else:
        lines.append("## Failed gates\n")
        for r in report.results:
            if r.checked and not r.passed:
                lines.append(f"- **{r.artifact}** ({r.gate}): " + "; ".join(r.failures))
                if r.layer_errors:
                    lines.append("  - layers with the largest quantization error (RMSE / scale):")
                    lines += [f"    - `{e.get('layer') or e.get('tensor')}` ({e.get('op', '')}): {e['rmse_per_scale']:.2f}"
                              for e in r.layer_errors]
        lines.append("")
    quantized = [r for r in report.results if r.quantization]
    if quantized:
        lines += ["## int8 settings", ""]
        for r in quantized:
            q = r.quantization or {}
            lines.append(f"- **{r.artifact}**: {q.get('scheme', '')}. Why: {q.get('why', 'n/a')}.")
        lines.append("")
    repaired = [r for r in report.results if r.repair]
    if repaired:
        lines += ["## int8 repair", ""]
        for r in repaired:
            rep = r.repair or {}
            verdict = "passed its gate" if rep.get("passed") else f"still failed ({rep.get('reason', '')})"
            lines.append(f"**{r.artifact}** failed its gate as full int8 and {verdict} with "
                         f"{len(rep.get('float_layers', []))} layer(s) kept in float:\n")
            lines += [f"- `{f['layer']}` ({f['op']}; {f['error']}; round {f['round']})" for f in rep.get("float_layers", [])]
            cost = rep.get("cost") or {}
            if cost:
                lat = (f"p50 {cost['p50_ms_repaired']:.3f} ms vs {cost['p50_ms_full_int8']:.3f} ms full int8 "
                       f"(×{cost['latency_ratio']:.2f})" if cost.get("p50_ms_repaired") is not None else "latency not measured")
                lines.append(f"\nCost against full int8: size {cost['size_bytes_repaired']:,} vs "
                             f"{cost['size_bytes_full_int8']:,} bytes (×{cost['size_ratio']:.3f}); {lat}.")
            lines.append("")
    if report.qat:
        lines += [*qat_markdown(report.qat), ""]
    from edgecnn.export.consumers import markdown as consumers_markdown

    lines += consumers_markdown({r.artifact: r.consumers for r in report.results if r.consumers})
    lines += ["## Gates", ""] + [f"- {p}: {gates.describe(p)}" for p in gate_precisions()]
    lines += [f"- every artifact: top-1 agreement ≥ {gates.consumer_agreement:.1%} under each consumer's resize "
              "(held-out images of another size than the model's)", ""]
    lines += ["## Next", "", "```sh", *report.commands, "```", ""]
    write_text(report.report_md, "\n".join(lines))


def qat_markdown(section: dict[str, Any]) -> list[str]:
    """``export --qat-epochs``: the fine-tune and the PTQ/QAT comparison as Markdown lines."""
    lines = ["", f"## Quantization-aware training ({section['epochs']} epochs on {section['train']})", "",
             f"Held-out accuracy on {section['comparison']['samples']} images; latency: "
             f"{section['comparison']['latency']}.", "",
             "| model | accuracy | latency ms | size | float layers |", "|---|---|---|---|---|"]
    for r in section["comparison"]["rows"]:
        acc = f"{100 * r['accuracy']:.2f}%" if r["accuracy"] is not None else "—"
        lines.append(f"| {r['model']} | {acc} | {r['latency_ms']:.3f} | {human_size(r['size_bytes'])} | "
                     f"{r['float_layers']} |")
    lines += ["", f"QAT Keras model (the QAT artifact's parity reference): {section['model']}.",
              f"ONNX: {section['comparison']['onnx']}."]
    return lines
