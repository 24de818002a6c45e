"""``edgecnn export SOURCE``: TFLite / ONNX / SavedModel artifacts, parity-checked against the Keras model.

Choices come from the converters registry (:mod:`converters.registry`, pure Python, no TensorFlow).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from converters.registry import CONSUMERS, DEFAULT_INT8_IO_DTYPE, FORMATS, IO_DTYPES, PRECISIONS
from edgecnn.cli import EdgeCommand
from edgecnn.cli.choices import choice_enum
from edgecnn.cli.parity import (
    _DEFAULT_GATES,
    ConsumerAgreement,
    Fp16Agreement,
    Fp16MaxAbs,
    Fp32MaxAbs,
    QuantAccDrop,
    QuantAgreement,
    gates_from,
)

FormatChoice = Enum("FormatChoice", {n: n for n in [*FORMATS, "all"]}, type=str)  # type: ignore[misc]
QuantizeChoice = Enum("QuantizeChoice", {p.alias: p.alias for p in PRECISIONS.values()} | {"all": "all"}, type=str)  # type: ignore[misc]
IODtype = Enum("IODtype", {n: n for n in IO_DTYPES}, type=str)  # type: ignore[misc]

TargetChoice = choice_enum("TargetChoice", tuple(CONSUMERS))
_FORMAT_HELP = "; ".join(f"{f.name}: {'/'.join(PRECISIONS[p].alias for p in f.precisions)}" for f in FORMATS.values())


def export_cmd(
    source: Annotated[Path, typer.Argument(help="Run folder (runs/train/exp) or .keras/.h5 model.", show_default=False)],
    fmt: Annotated[list[FormatChoice], typer.Option("--format", "-f", help=f"Format(s), repeatable ({_FORMAT_HELP}).")] = [FormatChoice.tflite],  # noqa: B006
    quantize: Annotated[list[QuantizeChoice], typer.Option("--quantize", help="Precision(s), repeatable; all = every one that fits the format.")] = [QuantizeChoice.none],  # noqa: B006
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: SOURCE/export).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing artifacts.")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Check parity of every artifact with its real runtime.")] = True,
    check_data: Annotated[Path | None, typer.Option("--check-data", help="Labelled folder for parity (default: the run's test/val split).")] = None,
    calib_data: Annotated[Path | None, typer.Option("--calib-data", help="Training images (class folders) for int8 calibration (default: the run's train split).")] = None,
    calib_samples: Annotated[int, typer.Option("--calib-samples", min=1, help="Calibration images, stratified over classes.")] = 300,
    io_dtype: Annotated[IODtype | None, typer.Option("--io-dtype", help=f"Input/output type of int8 TFLite (default: {DEFAULT_INT8_IO_DTYPE}: raw camera bytes, what MediaPipe and other standard consumers take; int8 for runtimes that want signed I/O).")] = None,
    opset: Annotated[int, typer.Option("--opset", min=7, help="ONNX opset.")] = 17,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="ONNX with a symbolic batch dimension.")] = False,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Load Keras models with Lambda layers (only files you trust).")] = False,
    target: Annotated[TargetChoice | None, typer.Option("--target",
                                               help="Write the artifacts a consumer runs, the way it reads them "
                                                    "(opencv: float TFLite, fp16 TFLite, float and int8 ONNX with "
                                                    "uint8 weights), into SOURCE/export-TARGET.")] = None,
    repair: Annotated[bool, typer.Option("--repair/--no-repair", help="When int8 fails its gate, keep the layers with the largest quantization error in float until it passes.")] = True,
    repair_layers: Annotated[int, typer.Option("--repair-layers", min=1, help="Most layers the int8 repair may keep in float.")] = 8,
    qat_epochs: Annotated[int, typer.Option("--qat-epochs", min=0, help="Quantization-aware training: fine-tune a fake-quantized twin this many epochs on the run's training split and write model-qat-int8.tflite (and .onnx with --format onnx) with every layer int8 (Edge TPU, NPUs), compared with post-training int8 in the report; needs --quantize int8.")] = 0,
    qat_lr: Annotated[float, typer.Option("--qat-lr", help="Learning rate of the QAT fine-tune (Adam).")] = 1e-4,
    gate_fp32_max_abs: Fp32MaxAbs = _DEFAULT_GATES.fp32_max_abs,
    gate_fp16_max_abs: Fp16MaxAbs = _DEFAULT_GATES.fp16_max_abs,
    gate_fp16_agreement: Fp16Agreement = _DEFAULT_GATES.fp16_agreement,
    gate_int8_agreement: QuantAgreement = _DEFAULT_GATES.quant_agreement,
    gate_int8_acc_drop: QuantAccDrop = _DEFAULT_GATES.quant_acc_drop,
    gate_consumer: ConsumerAgreement = _DEFAULT_GATES.consumer_agreement,
) -> None:
    """Export a trained model, embed its model card, write golden.npz and check parity (exit 1 on a failed gate)."""
    from edgecnn.api import export
    from edgecnn.console import console
    from edgecnn.parity import print_table

    report = export(
        source, formats=[f.value for f in fmt], quantize=[q.value for q in quantize], out=out, force=force, check=check,
        check_data=check_data, calib_data=calib_data, calib_samples=calib_samples,
        io_dtype=io_dtype.value if io_dtype else None, opset=opset, dynamic_batch=dynamic_batch, unsafe=unsafe,
        repair=repair, repair_layers=repair_layers, target=target.value if target else None,
        qat_epochs=qat_epochs, qat_lr=qat_lr,
        gates=gates_from(gate_fp32_max_abs, gate_fp16_max_abs, gate_fp16_agreement, gate_int8_agreement, gate_int8_acc_drop,
                         gate_consumer),
    )
    samples = report.check_data["samples"] if report.check_data else 0
    title = f"Export → {report.out_dir}" + (f" (parity on {samples} held-out images)" if report.checked else " (parity NOT checked)")
    print_table(report.results, title=title)
    if report.qat:
        from edgecnn.export.qat import print_comparison

        print_comparison(report.qat)
    console.print(f"Report: {report.report_md}")
    if report.golden:
        console.print(f"Golden: {report.golden}")
    if report.commands:  # only artifacts that passed their gate are ever suggested
        console.print("Next:")
        for cmd in report.commands:
            console.print(f"  {cmd}", markup=False)
    report.raise_for_gates()


def register(app: typer.Typer) -> None:
    app.command("export", cls=EdgeCommand)(export_cmd)
