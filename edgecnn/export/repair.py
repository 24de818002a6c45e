"""int8 that repairs itself: keep the layers with the largest quantization error in float until the gate passes.

When a full-int8 artifact fails its parity gate, the per-layer quantization errors are measured on held-out images
(TFLite: ``QuantizationDebugger``, RMSE in quantization steps; ONNX: onnxruntime's ``qdq_loss_debug``, lowest
SQNR), the worst layers are kept in float (TFLite ``denylisted_nodes``, onnxruntime ``nodes_to_exclude``), and the
artifact is converted and checked again. Round ``k`` adds ``2**(k-1)`` layers (1, 2, 4, ...), until the gate passes,
``max_layers`` layers are float, or nothing quantized is left to blame. The report names the layers kept in float and
what they cost against full int8: file size and p50 latency measured interleaved on this machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import info, warn

#: Most layers a repair keeps in float before it gives up (``--repair-layers``).
DEFAULT_MAX_LAYERS = 8
#: Held-out images the per-layer error is measured on.
DEBUG_SAMPLES = 32


@dataclass
class Repair:
    """What a repair did: the rounds, the layers kept in float, and their cost against full int8."""

    passed: bool
    float_layers: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    full_int8: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "float_layers": self.float_layers, "rounds": self.rounds,
                "full_int8": self.full_int8, "cost": self.cost, "reason": self.reason}


def rank_layers(fmt: str, model: Any, artifact: Path, calib: np.ndarray, samples: np.ndarray,
                float_nodes: list[str]) -> list[dict[str, Any]]:
    """Still-quantized layers of an int8 artifact, worst first; each row's ``node`` is what ``float_nodes`` takes."""
    samples = samples[:DEBUG_SAMPLES].astype(np.float32)
    if fmt == "tflite":
        from converters.int8 import tflite_layer_errors

        rows = tflite_layer_errors(model, calib, samples, float_nodes=float_nodes, top=None)
        for r in rows:
            r["node"] = r["tensor"]
            r["error"] = f"RMSE {r['rmse_per_scale']:.1f}× its quantization step"
        return [r for r in rows if r["node"] not in float_nodes]
    import onnx

    from converters.int8 import onnx_layer_errors

    proto = onnx.load(str(artifact))
    rows = onnx_layer_errors(proto, samples, top=None)
    consumers: dict[str, list[str]] = {}
    for n in proto.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            for t in n.input:
                consumers.setdefault(t, []).append(n.name)
    dq_to_float = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    q_to_dq = {n.input[0]: n.output[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    out = []
    for r in rows:
        r["error"] = f"SQNR {r['sqnr_db']:.1f} dB"
        if r["node"] is None:  # the model input itself is quantized badly: keep its readers in float instead
            q_out = q_to_dq.get(r["tensor"])
            dq_outs = [dq for dq, src in dq_to_float.items() if src == q_out] if q_out else []
            readers = [c for dq in dq_outs for c in consumers.get(dq, [])]
            for name in dict.fromkeys(readers):
                out.append({**r, "node": name, "layer": name, "op": "reads the input"})
            continue
        out.append(r)
    seen: set[str] = set()
    return [r for r in out if r["node"] not in float_nodes and not (r["node"] in seen or seen.add(r["node"]))]


def repair(
    fmt: str,
    model: Any,
    path: Path,
    calib: np.ndarray,
    samples: np.ndarray,
    convert: Callable[[list[str]], Any],
    check: Callable[[Path], Any],
    first: Any,
    max_layers: int = DEFAULT_MAX_LAYERS,
    already_float: list[str] | None = None,
) -> tuple[Any, Repair]:
    """Re-convert ``path`` with more layers in float until ``check`` passes.

    Args:
        fmt: ``tflite`` or ``onnx``.
        model: The Keras model.
        path: The int8 artifact (rewritten in place each round; on failure it holds the last attempt).
        calib: Calibration images.
        samples: Held-out images the layer errors are measured on.
        convert: Writes ``path`` with the given float nodes; returns :class:`converters.Converted`.
        check: Checks ``path``; returns a :class:`~edgecnn.parity.ParityResult`.
        first: The failed full-int8 ParityResult.
        max_layers: Stop once this many layers are float.
        already_float: Nodes the converter keeps float by itself (the TFLite stem); never counted or blamed.

    Returns:
        (the last ParityResult, the :class:`Repair` record).
    """
    full_copy = path.with_name(f".full-int8-{path.name}")
    os.replace(path, full_copy)
    rec = Repair(passed=False, full_int8={"size_bytes": full_copy.stat().st_size, "accuracy": first.accuracy,
                                          "agreement": first.agreement, "max_abs": first.max_abs,
                                          "failures": list(first.failures)})
    chosen: list[dict[str, Any]] = []
    kept_auto: list[str] = list(already_float or [])
    result = first
    current = full_copy
    try:
        for k in range(1, 64):
            t0 = time.perf_counter()
            try:
                ranked = rank_layers(fmt, model, current, calib, samples, [c["node"] for c in chosen] + kept_auto)
            except Exception as exc:  # noqa: BLE001  (a debugger failure ends the repair, never the export)
                rec.reason = f"per-layer error measurement failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                break
            room = max_layers - len(chosen)
            if not ranked:
                rec.reason = "no quantized layer left to keep in float"
                break
            if room <= 0:
                rec.reason = f"the limit of {max_layers} float layers was reached (raise it with --repair-layers)"
                break
            take = ranked[: min(2 ** (k - 1), room)]
            chosen += [{"node": r["node"], "layer": r.get("layer") or r["node"], "op": r.get("op", ""),
                        "error": r["error"], "round": k} for r in take]
            try:
                done = convert([c["node"] for c in chosen])
            except ValueError as exc:  # a name the converter does not know: stop, keep the record honest
                rec.reason = f"the converter refused the float layers: {exc}"
                chosen = chosen[: -len(take)]
                break
            kept_auto = [n for n in (done.metadata.get("artifact", {}).get("int8", {}).get("float_nodes") or [])
                         if n not in {c["node"] for c in chosen}]
            result = check(path)
            result.size_bytes = done.size_bytes
            rec.rounds.append({"round": k, "added": [c["layer"] for c in chosen if c["round"] == k],
                               "float_layers": len(chosen), "passed": result.passed, "accuracy": result.accuracy,
                               "agreement": result.agreement, "max_abs": result.max_abs,
                               "seconds": round(time.perf_counter() - t0, 2)})
            info(f"int8 repair round {k}: {len(chosen)} layer(s) in float -> gate {'passed' if result.passed else 'failed'}")
            current = path
            if result.passed:
                rec.passed = True
                break
        rec.float_layers = chosen
        if rec.passed:
            rec.cost = _cost(full_copy, path)
        elif not rec.reason:
            rec.reason = "the gate still fails"
    finally:
        if path.exists():
            full_copy.unlink(missing_ok=True)
        else:  # no round rewrote it (the measurement or the converter stopped the repair first): keep the full int8
            os.replace(full_copy, path)
    if not rec.passed:
        warn(f"int8 repair of {path.name} did not pass its gate: {rec.reason}.")
    return result, rec


def _cost(full: Path, repaired: Path, rounds: int = 5, iters: int = 20) -> dict[str, Any]:
    """Size and p50 latency of the repaired artifact against full int8, measured interleaved on this machine."""
    from edgecnn.runtime.backends import load_backend

    out: dict[str, Any] = {"size_bytes_full_int8": full.stat().st_size, "size_bytes_repaired": repaired.stat().st_size}
    out["size_ratio"] = round(out["size_bytes_repaired"] / out["size_bytes_full_int8"], 4)
    try:
        backends = {"full": load_backend(full), "repaired": load_backend(repaired)}
    except Exception as exc:  # noqa: BLE001
        out["latency_error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return out
    try:
        times: dict[str, list[float]] = {k: [] for k in backends}
        inputs = {k: b.prepare(np.zeros((1, *b.card.input_shape), np.uint8)) for k, b in backends.items()}
        for k, b in backends.items():
            for _ in range(5):
                b.infer(inputs[k])
        for _ in range(rounds):
            for k, b in backends.items():
                for _ in range(iters):
                    t0 = time.perf_counter()
                    b.infer(inputs[k])
                    times[k].append(time.perf_counter() - t0)
        p50 = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        out |= {"p50_ms_full_int8": round(p50["full"], 4), "p50_ms_repaired": round(p50["repaired"], 4),
                "latency_ratio": round(p50["repaired"] / p50["full"], 4) if p50["full"] else None}
    finally:
        for b in backends.values():
            b.close()
    return out
