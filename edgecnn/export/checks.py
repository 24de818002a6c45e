"""Checking an exported artifact with its real runtime, and repairing a full-int8 one that fails its gate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import info, warn
from edgecnn.metrics import class_probs
from edgecnn.parity import Gates, ParityResult, Reference, check_artifact, compare, evaluate_gates
from edgecnn.runtime.backends import BACKENDS


def verify(path: Path, fmt: str, precision: str, ref: Reference | None, gates: Gates, check: bool) -> ParityResult:
    """The artifact's parity against ``ref`` with its real runtime (TensorFlow for a SavedModel); an unchecked
    result when ``check`` is off or there is no held-out data."""
    if not check or ref is None:
        return ParityResult(artifact=path.name, path=str(path), format=fmt, precision=precision, samples=0,
                            max_abs=float("nan"), mean_abs=float("nan"), agreement=float("nan"),
                            accuracy_reference=None, accuracy=None, accuracy_drop=None, passed=True,
                            gate=gates.describe(precision), checked=False)
    if fmt not in BACKENDS:  # no edge runtime runs it (a SavedModel): TensorFlow does
        return _check_saved_model(path, fmt, precision, ref, gates)
    return check_artifact(path, ref, gates, precision=precision, fmt=fmt)


def _check_saved_model(path: Path, fmt: str, precision: str, ref: Reference, gates: Gates) -> ParityResult:
    """SavedModels have no edge runtime backend: run their ``serve`` endpoint with TensorFlow."""
    from converters.to_saved_model import predict

    raw, version = predict(path, ref.inputs)
    probs = class_probs(raw)
    figures = compare(ref.probs, probs, ref.targets)
    failures = evaluate_gates(figures, precision, gates)
    return ParityResult(artifact=path.name, path=str(path), format=fmt, precision=precision,
                        samples=len(ref.inputs), passed=not failures, gate=gates.describe(precision), failures=failures,
                        runtime={"backend": "tensorflow", "runtime_version": version}, **figures)  # type: ignore[arg-type]


def as_converted(src: Any) -> Any:
    """The model as the converters convert it: a sigmoid head wrapped to ``[1 - p, p]``
    (:func:`converters.heads.two_class`), so the per-layer error names the repair passes back are the converted
    graph's op names (the bare model's names lack the wrapper's scope, and the converter refused every one)."""
    from converters.heads import is_sigmoid_binary, two_class

    if is_sigmoid_binary(src.model, src.card.to_dict(), src.card.labels):
        cached = getattr(src, "_two_class", None)
        if cached is None:
            cached = two_class(src.model)
            src._two_class = cached  # noqa: SLF001
        return cached
    return src.model


def repair_artifact(model: Any, fmt: str, precision: str, path: Path, calib: np.ndarray, ref: Reference, gates: Gates,
            options: Any, write: Any, done: Any, failed: ParityResult, max_layers: int) -> ParityResult:
    """Run :func:`edgecnn.export.repair.repair` on a failed int8 artifact; the result carries the repair record."""
    from dataclasses import replace

    from edgecnn.export.repair import repair

    info(f"{path.name} failed its gate; keeping the layers with the largest quantization error in float ...")
    auto = list((done.metadata.get("artifact", {}).get("int8") or {}).get("float_nodes") or [])
    result, rec = repair(fmt, model, path, calib, ref.inputs,
                         convert=lambda nodes: write(replace(options, float_nodes=tuple(nodes))),
                         check=lambda p: verify(p, fmt, precision, ref, gates, True),
                         first=failed, max_layers=max_layers, already_float=auto)
    result.conversion_seconds = failed.conversion_seconds
    result.quantization = failed.quantization
    result.repair = rec.to_dict()
    if not rec.passed:
        result.failures.append(f"int8 repair kept {len(rec.float_layers)} layer(s) in float and still failed: {rec.reason}")
    return result


def layer_errors(model: Any, calib: np.ndarray, samples: np.ndarray, io_dtype: str | None) -> list[dict[str, Any]]:
    """Per-layer quantization error (TFLite QuantizationDebugger); empty with a warning if the debugger fails."""
    from converters.to_tflite import layer_errors

    t0 = time.perf_counter()
    try:
        rows = layer_errors(model, calib, samples[:32].astype(np.float32), io_dtype)
    except Exception as exc:  # noqa: BLE001  (a diagnostic must never hide the real failure)
        warn(f"Per-layer quantization debugging failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return []
    info(f"Per-layer quantization errors computed in {time.perf_counter() - t0:.1f}s.")
    return rows


__all__ = ["as_converted", "layer_errors", "repair_artifact", "verify"]
