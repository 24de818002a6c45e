"""Keras → TFLite (float32, float16, dynamic-range, full int8) with ``TFLiteConverter.from_keras_model``."""

from __future__ import annotations

import contextlib
import io
import io as io_module
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from converters.errors import CalibrationError, ConversionError

_TF_DTYPES = ("float32", "int8", "uint8")


def _tf():
    import tensorflow as tf

    return tf


def representative_dataset(calibration: np.ndarray):
    """A generator factory yielding one float32 NHWC sample at a time (0..255 pixels), as TFLite wants.

    The first sample's first pixel row starts with a 0 and a 255 value, so the input tensor's calibrated range
    is the whole pixel range whatever the images hold: a uint8 input is then quantized with scale 1 and zero
    point 0 (int8: zero point -128), i.e. the raw camera bytes, which is what MediaPipe Tasks and other
    standard consumers feed a uint8 model (and a bright frame is never clipped at the calibration maximum).
    """

    def gen() -> Iterator[list[np.ndarray]]:
        for i, sample in enumerate(calibration):
            x = np.array(sample, dtype=np.float32)[None]
            if i == 0 and x.shape[2] >= 2:
                x[0, 0, 0, :], x[0, 0, 1, :] = 0.0, 255.0
            yield [x]

    return gen


def make_converter(model: Any, precision: str, calibration: np.ndarray | None = None, io_dtype: str | None = None):
    """A configured ``tf.lite.TFLiteConverter`` for ``precision`` (per-channel weights are TFLite's default)."""
    from converters.graph import static_flatten

    tf = _tf()
    # a Flatten's run-time SHAPE op is what OpenCV DNN cannot import: a constant-shape reshape computes the same
    converter = tf.lite.TFLiteConverter.from_keras_model(static_flatten(model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        if calibration is None or len(calibration) == 0:
            raise CalibrationError("Full int8 quantization needs calibration images (a representative dataset).")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = io_dtype or "int8"
        if io not in _TF_DTYPES:
            raise ValueError(f"io_dtype must be one of {_TF_DTYPES}; received {io!r}.")
        converter.inference_input_type = getattr(tf, io)
        converter.inference_output_type = getattr(tf, io)
    elif precision != "float32":
        raise ValueError(f"TFLite cannot be written in precision {precision!r}.")
    return converter


def convert(model: Any, precision: str, calibration: np.ndarray | None = None, io_dtype: str | None = None) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer.

    Raises:
        ConversionError: the converter rejected the model; names the layer and ops when it can.
    """
    converter = make_converter(model, precision, calibration, io_dtype)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its SavedModel endpoint summary
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001  (TF raises ConverterError, RuntimeError, ValueError...)
        raise conversion_error(model, exc, "TFLite") from exc


def convert_qat(model: Any, io_dtype: str | None = None) -> bytes:
    """Convert a quantization-aware model (its ranges in fake-quantization ops) to a full-int8 flatbuffer.

    No calibration: every range comes from the model. The result is checked to hold no float tensor between its
    input and output quantization.

    Raises:
        ConversionError: the converter rejected the model, or left a tensor in float (named).
    """
    from converters.graph import static_flatten

    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(static_flatten(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # with fake quantization: TFLite's QAT path
    io = io_dtype or "int8"
    if io not in _TF_DTYPES:
        raise ValueError(f"io_dtype must be one of {_TF_DTYPES}; received {io!r}.")
    converter.inference_input_type = getattr(tf, io)
    converter.inference_output_type = getattr(tf, io)
    try:
        import warnings

        with contextlib.redirect_stdout(io_module.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Statistics for quantized inputs were expected": the input's are
            flat = bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001
        raise conversion_error(model, exc, "TFLite") from exc
    floats = float_tensors(flat)
    if floats:
        raise ConversionError(f"the quantization-aware model left {len(floats)} tensor(s) in float (first: "
                              f"{floats[0]!r}); a layer lacks fake quantization")
    return flat


def float_tensors(flatbuffer: bytes) -> list[str]:
    """Names of the float32 tensors of a flatbuffer other than its input and output (with float32 I/O, the
    tensors before its first QUANTIZE and after its last DEQUANTIZE) and TFLite's own folded constants."""
    interpreter = _interpreter(flatbuffer)
    ends = {d["index"] for d in (*interpreter.get_input_details(), *interpreter.get_output_details())}
    return [d["name"] for d in interpreter.get_tensor_details()
            if np.dtype(d["dtype"]) == np.float32 and d["index"] not in ends and d["name"]
            and not d["name"].startswith("arith.constant")]


def conversion_error(model: Any, exc: BaseException, target: str) -> ConversionError:
    """A :class:`ConversionError` naming the offending layer and ops found in a converter's message."""
    text = str(exc)
    ops = sorted(set(re.findall(r"'(?:tf|tfl)\.(\w+)' op", text)) | set(re.findall(r"\btf\.(\w+)\b.*?not supported", text)))
    ops += sorted(set(re.findall(r"No Op registered for (\w+)", text)))
    ops += sorted(set(re.findall(r"Tensorflow op \[[^\]]*: (\w+)\] is not supported", text)))
    layer = None
    names = [layer.name for layer in _all_layers(model)]
    # the deepest (longest) layer name mentioned in the op locations is the culprit
    for name in sorted(names, key=len, reverse=True):
        if re.search(rf"(?<![\w]){re.escape(name)}(?:_\d+)?/", text):
            layer = name
            break
    first = next((ln.strip() for ln in text.splitlines() if "error" in ln.lower() and ln.strip()), "")
    first = first or (text.strip().splitlines() or [type(exc).__name__])[0]
    where = f"layer {layer!r}" if layer else "a layer"
    ops = list(dict.fromkeys(ops))
    if ops:
        msg = f"{where} uses op(s) {', '.join(ops)} that {target} cannot express; replace the layer or implement it with supported ops"
    else:
        msg = f"{where} cannot be converted to {target} ({first[:200]})"
    return ConversionError(msg, layer=layer, ops=ops)


def _layer_for(parts: list[str], names: list[str]) -> str | None:
    """The Keras layer a TF op path belongs to (Keras 3 scopes layer ``conv2d`` as ``conv2d_1``, ``conv2d_1`` as ``conv2d_1_2``)."""
    for rule in (lambda n, p: p == f"{n}_1", lambda n, p: p == n, lambda n, p: re.fullmatch(rf"{re.escape(n)}_\d+", p)):
        for part in reversed(parts):  # the deepest scope first: a wrapper (a sigmoid head's [1 - p, p]) is not the layer
            for n in names:
                if rule(n, part):
                    return n
    return None


def _all_layers(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out


def tensor_details(flatbuffer: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inputs, outputs) of a flatbuffer: name, shape, dtype and quantization as the interpreter sees them."""
    interpreter = _interpreter(flatbuffer)

    def describe(d: dict[str, Any]) -> dict[str, Any]:
        scale, zp = d.get("quantization", (0.0, 0))
        return {
            "name": d["name"],
            "shape": [int(v) for v in d.get("shape_signature", d["shape"])],
            "dtype": np.dtype(d["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zp)} if scale else None,
        }

    return [describe(d) for d in interpreter.get_input_details()], [describe(d) for d in interpreter.get_output_details()]


def _interpreter(flatbuffer: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - TF always present on the converting machine
        Interpreter = _tf().lite.Interpreter  # noqa: N806
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    return interpreter


def layer_errors(model: Any, calibration: np.ndarray, samples: np.ndarray, io_dtype: str | None = None,
                 top: int = 5) -> list[dict[str, Any]]:
    """The quantized layers with the largest error, from TFLite's ``QuantizationDebugger``.

    Each row: tensor name, op name, RMSE divided by the tensor's quantization scale (how many quantization
    steps the error spans; ≫ 1 means that layer lost the signal), the RMSE and the scale.
    """
    tf = _tf()
    converter = make_converter(model, "int8", calibration, io_dtype="float32")
    debug_data = representative_dataset(samples)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug_data)
    with contextlib.redirect_stdout(io.StringIO()):
        debugger.run()
    import csv

    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    names = sorted((layer.name for layer in _all_layers(model)), key=len, reverse=True)
    out = []
    for r in rows:
        scale = float(r.get("scale") or 0.0)
        mse = float(r.get("mean_squared_error") or 0.0)
        rmse = float(np.sqrt(max(mse, 0.0)))
        tensor = r.get("tensor_name", "")
        parts = tensor.split(";")[0].split("/")
        layer = _layer_for(parts, names)
        out.append({"layer": layer, "tensor": tensor, "op": r.get("op_name", ""), "rmse": rmse, "scale": scale,
                    "rmse_per_scale": rmse / scale if scale else float("inf") if rmse else 0.0,
                    "max_abs_error": float(r.get("max_abs_error") or 0.0)})
    out.sort(key=lambda r: r["rmse_per_scale"], reverse=True)
    return out[:top]
