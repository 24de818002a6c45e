"""Keras → ONNX with tf2onnx on a traced ``tf.function`` (``from_keras`` is broken on Keras 3);
int8 with onnxruntime's static quantization (QDQ, per-channel) on the same calibration images."""

from __future__ import annotations

from typing import Any

import numpy as np

from converters.to_tflite import conversion_error

INPUT_NAME = "image"

_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 10: "float16", 11: "float64"}


def to_onnx(model: Any, opset: int = 17, dynamic_batch: bool = False) -> Any:
    """Trace the model and convert it to an ``onnx.ModelProto`` (batch 1 unless ``dynamic_batch``)."""
    import tensorflow as tf
    import tf2onnx

    shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    spec = (tf.TensorSpec((None if dynamic_batch else 1, *shape), tf.float32, name=INPUT_NAME),)
    fn = tf.function(lambda x: model(x, training=False))
    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    except Exception as exc:  # noqa: BLE001  (tf2onnx raises bare Exceptions/ValueErrors)
        raise conversion_error(model, exc, "ONNX") from exc
    _inline_captured_constants(proto, fn, spec)
    if len(proto.graph.output) == 1:
        _rename_output(proto, "probabilities")
    return proto


def _inline_captured_constants(proto: Any, fn: Any, spec: tuple[Any, ...]) -> None:
    """Turn graph inputs that are constants the traced function captured into initializers (or drop them when no
    node reads them), in place.

    tf2onnx freezes captured variables but leaves a captured constant tensor (Keras' ``Normalization`` built with a
    given mean and variance, as EfficientNet's is) as an extra graph input, which every runtime then asks to be fed
    ("Required inputs [... normalization/Sub/y:0 ...] are missing").
    """
    from onnx import numpy_helper

    extra = [i for i in proto.graph.input if i.name != INPUT_NAME]
    if not extra:
        return
    cf = fn.get_concrete_function(*spec)
    values = {}
    for value, placeholder in zip(cf.captured_inputs, cf.graph.internal_captures, strict=False):
        if value.dtype.name != "resource":
            values[placeholder.name] = np.asarray(value.numpy())
    inits = {i.name for i in proto.graph.initializer}
    used = {name for node in proto.graph.node for name in node.input}
    for inp in extra:
        if inp.name not in values:
            continue
        if inp.name in used and inp.name not in inits:  # read by a node: the captured value, as an initializer
            proto.graph.initializer.append(numpy_helper.from_array(values[inp.name], inp.name))
        proto.graph.input.remove(inp)  # (tf2onnx already folded the ones no node reads)


def _rename_output(proto: Any, new: str) -> None:
    old = proto.graph.output[0].name
    if old == new:
        return
    for node in proto.graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
    proto.graph.output[0].name = new


def quantize_int8(proto: Any, calibration: np.ndarray) -> Any:
    """Static QDQ int8 quantization with onnxruntime (the settings and why: :func:`converters.int8.onnx_int8`)."""
    from converters.int8 import onnx_int8

    return onnx_int8(proto, calibration)


def _batch_dim(proto: Any) -> int | None:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") else None


def tensor_details(proto: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inputs, outputs) of an ONNX graph: name, shape (None for symbolic dims), dtype."""

    def describe(v: Any) -> dict[str, Any]:
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        return {"name": v.name, "shape": shape, "dtype": _ONNX_DTYPES.get(t.elem_type, str(t.elem_type)), "quantization": None}

    inits = {i.name for i in proto.graph.initializer}
    return [describe(v) for v in proto.graph.input if v.name not in inits], [describe(v) for v in proto.graph.output]


def check(proto: Any) -> None:
    """``onnx.checker.check_model`` (full check, shapes inferred)."""
    import onnx

    onnx.checker.check_model(proto, full_check=True)
