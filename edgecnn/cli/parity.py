"""``edgecnn parity CANDIDATE... [--reference model.keras] [--data DIR | --golden golden.npz]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand
from edgecnn.parity import Gates

_DEFAULT_GATES = Gates()  # the one source of the thresholds; the options below only expose them

# Gate options, shared with ``edgecnn export`` (thresholds are fractions: 0.98 = 98 %).
Fp32MaxAbs = Annotated[float, typer.Option("--gate-fp32-max-abs", help="float32: max |Δprobability| allowed.")]
Fp16MaxAbs = Annotated[float, typer.Option("--gate-fp16-max-abs", help="float16: max |Δprobability| allowed.")]
Fp16Agreement = Annotated[float, typer.Option("--gate-fp16-agreement", help="float16: min top-1 agreement (0..1).")]
QuantAgreement = Annotated[float, typer.Option("--gate-int8-agreement", help="dynamic/int8: min top-1 agreement (0..1).")]
QuantAccDrop = Annotated[float, typer.Option("--gate-int8-acc-drop", help="dynamic/int8: max accuracy drop (0.01 = 1 point).")]


ConsumerAgreement = Annotated[float, typer.Option("--gate-consumer", help="Every artifact: min top-1 agreement under "
                                                  "each common consumer's resize (MediaPipe, OpenCV, Pillow) on "
                                                  "held-out images of other sizes.")]


def gates_from(fp32_max_abs: float, fp16_max_abs: float, fp16_agreement: float, quant_agreement: float,
               quant_acc_drop: float, consumer_agreement: float | None = None):
    from edgecnn.parity import Gates

    extra = {} if consumer_agreement is None else {"consumer_agreement": consumer_agreement}
    return Gates(fp32_max_abs=fp32_max_abs, fp16_max_abs=fp16_max_abs, fp16_agreement=fp16_agreement,
                 quant_agreement=quant_agreement, quant_acc_drop=quant_acc_drop, **extra)


def parity_cmd(
    candidates: Annotated[list[Path], typer.Argument(help="Artifacts to check (.tflite, .onnx, ...).", show_default=False)],
    reference: Annotated[Path | None, typer.Option("--reference", help="Reference model (.keras) to compare with.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Labelled class-folder to compare on (needs --reference).")] = None,
    golden: Annotated[Path | None, typer.Option("--golden", help="golden.npz from `edgecnn export` (no TensorFlow needed).")] = None,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Allow a reference .keras with Lambda layers.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")] = None,
    gate_fp32_max_abs: Fp32MaxAbs = _DEFAULT_GATES.fp32_max_abs,
    gate_fp16_max_abs: Fp16MaxAbs = _DEFAULT_GATES.fp16_max_abs,
    gate_fp16_agreement: Fp16Agreement = _DEFAULT_GATES.fp16_agreement,
    gate_int8_agreement: QuantAgreement = _DEFAULT_GATES.quant_agreement,
    gate_int8_acc_drop: QuantAccDrop = _DEFAULT_GATES.quant_acc_drop,
    conventions: object = None,
) -> None:
    """Compare artifacts with the reference model: max/mean |Δp|, top-1 agreement, accuracy; exit 1 on a failed gate."""
    from edgecnn.fileio import write_json
    from edgecnn.outputs import check_outputs
    from edgecnn.parity import parity, print_table, raise_for_failures

    gates = gates_from(gate_fp32_max_abs, gate_fp16_max_abs, gate_fp16_agreement, gate_int8_agreement, gate_int8_acc_drop)
    check_outputs({"--json": json_out}, {"CANDIDATE": list(candidates), "--reference": reference, "--golden": golden,
                                         "--data": data})
    results = parity(candidates, reference=reference, data=data, golden=golden, gates=gates, unsafe=unsafe,
                     conventions=conventions)
    print_table(results, title=f"Parity ({results[0].samples} samples)")
    if json_out is not None:
        write_json(json_out, [r.to_dict() for r in results])
    raise_for_failures(results)


def register(app: typer.Typer) -> None:
    from edgecnn.cli.conventions import with_conventions

    app.command("parity", cls=EdgeCommand)(with_conventions(parity_cmd))
