"""Full-integer quantization choices that measure best, and keeping chosen layers in float.

Why these settings (measured by ``benchmarks/int8_ratio.py``, results in ``benchmarks/results/int8_ratio.json``):

* **TFLite: the stem stays float.** A first convolution over ≤ 4 input channels (RGB/grey pixels) is *slower* in
  int8 than in float32 on XNNPACK (64×64×3→32: 0.169 ms int8 vs 0.080 ms float32 on one x86 core), while every
  later layer is 4–7× faster in int8. So the stem convolution and the pooling right after it run in float and
  the tensor is quantized after the pool, where it is 4× smaller. Weights cost a few KB; accuracy can only gain.
* **ONNX: the stem stays float too, as Conv → MaxPool → Relu.** onnxruntime runs the 3-channel stem conv
  2.6× slower in int8 than in float (MLAS U8S8 with K = 27: 265 vs 101 µs on one core, 96 px), so it stays
  float. Left as Conv → Relu → MaxPool with the QuantizeLinear after the pool, onnxruntime's QDQ propagation
  moves the QuantizeLinear above the MaxPool at session load, into a uint8 NCHW MaxPool ~25× slower than MLAS's
  NHWC one (1.35× float32 end to end). Pooling before the ReLU is exact (ReLU is monotonic) and propagation does
  not cross the ReLU, so the tensor is quantized after it, 4× smaller (:func:`converters.graph.onnx_float_stem`):
  int8/fp32 p50 0.43–0.44 on one thread vs 0.51–0.59 fully quantized. The input ``Rescaling`` is folded into
  the first Conv (:func:`converters.graph.fold_input_rescaling`), and activations are **uint8** with int8
  per-channel weights (U8S8, MLAS's fast path on x86; QOperator with int8 activations falls back to a kernel
  5–11× slower than float). QDQ and QOperator measure the same with uint8 activations; QDQ is kept because
  every execution provider (TensorRT, OpenVINO, QNN) reads it.
* **ONNX on two threads** pays in int8 only while onnxruntime's workers spin-wait between nodes (its default):
  int8/fp32 p50 0.47–0.53 with spinning, 0.61–0.68 with sleeping workers, which wake per node at a cost that
  small int8 kernels do not repay. edgecnn keeps the default, except in runs whose decoding threads share the
  cores (folders, videos: :data:`edgecnn.runtime.runner.DECODING_KINDS`), where spinning cost 10 % wall, 27 % CPU.

Keeping layers in float is also how an int8 export that fails its accuracy gate repairs itself: the layers with
the largest quantization error (:func:`tflite_layer_errors`, :func:`onnx_layer_errors`) are added to
``float_nodes`` round by round (TFLite ``denylisted_nodes``, onnxruntime ``nodes_to_exclude``).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.errors import CalibrationError

#: TFLite ops that make up a convolution stem, and the ops that may follow it before quantization starts.
_STEM_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
_STEM_TAIL = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RELU", "RELU6")
#: A stem is a convolution over at most this many input channels (pixels: grey, RGB, RGBA).
STEM_MAX_CHANNELS = 4
#: Every model takes pixels in this range; int8 input quantization covers it whatever the calibration images hold.
PIXEL_RANGE = (0.0, 255.0)


#: Why each format's int8 settings were chosen, with the figures measured by ``benchmarks/int8_ratio.py``
#: (written into the artifact's card and the export report).
TFLITE_WHY = ("per-channel int8 (XNNPACK's qs8/qc8 kernels; per-tensor measured the same); the stem conv over ≤ 4 "
            "channels and its pool stay float because XNNPACK runs that conv 2× slower in int8 (64×64×3→32: "
            "0.169 vs 0.080 ms) while later layers are 4–7× faster: int8/fp32 p50 0.28 (simple 64 px) and 0.19–0.20 "
            "(blocks 96 px) vs 0.37–0.39 and 0.29–0.32 fully quantized")
ONNX_WHY = ("QDQ, uint8 activations with int8 per-channel weights (U8S8, MLAS's fast x86 path; QOperator with int8 "
            "activations runs 4–11× slower than float), Rescaling folded into the first Conv, and the stem kept float "
            "as Conv → MaxPool → Relu (MLAS runs the 3-channel conv 2.6× slower in int8; pooling before the ReLU is "
            "exact and stops onnxruntime's QDQ propagation from making a slow uint8 NCHW MaxPool): int8/fp32 p50 "
            "0.42–0.44 on one thread and 0.47–0.53 on two (onnxruntime's spinning workers) vs 0.51–0.59 and "
            "0.69 fully quantized")


# ====================================================================== TFLite
def _calibrated_tflite(model: Any, calibration: np.ndarray, io_dtype: str) -> bytes:
    """The float flatbuffer with calibration statistics (TFLite's ``_experimental_calibrate_only``)."""
    from converters.to_tflite import conversion_error, make_converter

    converter = make_converter(model, "int8", calibration, io_dtype)
    converter._experimental_calibrate_only = True  # noqa: SLF001  (the path QuantizationDebugger takes)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            calibrated = bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001
        raise conversion_error(model, exc, "TFLite") from exc
    return pin_input_range(calibrated)


def pin_input_range(calibrated: bytes) -> bytes:
    """Set the calibrated min/max of the model's input tensors to :data:`PIXEL_RANGE`.

    The input is pixels 0..255 by contract, so its quantization must cover that range whatever the calibration
    images hold (dark or blank calibration sets otherwise clip every brighter pixel at run time).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    for sub in model.subgraphs:
        for idx in sub.inputs:
            q = sub.tensors[idx].quantization
            if q is not None and q.min is not None and q.max is not None and len(q.min) == 1:
                q.min, q.max = [float(PIXEL_RANGE[0])], [float(PIXEL_RANGE[1])]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _ops(flatbuffer: bytes) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], list[int]]:
    from converters.to_tflite import _interpreter

    it = _interpreter(flatbuffer)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    inputs = [d["index"] for d in it.get_input_details()]
    return it._get_ops_details(), tensors, inputs  # noqa: SLF001  (QuantizationDebugger uses the same call)


def tflite_op_names(calibrated: bytes) -> list[str]:
    """Output tensor names of every op in a calibrated model (what ``denylisted_nodes`` accepts)."""
    ops, tensors, _ = _ops(calibrated)
    return [tensors[o["outputs"][0]]["name"] for o in ops if len(o["outputs"])]  # a numpy array: never its truth value


def tflite_stem(calibrated: bytes) -> list[str]:
    """The stem: the first convolution over ≤ 4 channels reading the model input, and the pool/activations after it.

    Returns their output tensor names (empty when the model has no such stem).
    """
    ops, tensors, inputs = _ops(calibrated)
    consumers: dict[int, list[int]] = {}
    for k, o in enumerate(ops):
        for t in o["inputs"]:
            consumers.setdefault(int(t), []).append(k)
    first = next((k for k, o in enumerate(ops) if o["op_name"] in _STEM_CONVS), None)
    if first is None or int(ops[first]["inputs"][0]) not in inputs:
        return []
    channels = int(tensors[int(ops[first]["inputs"][0])]["shape"][-1])
    if channels > STEM_MAX_CHANNELS:
        return []
    names, k = [], first
    while True:
        out = int(ops[k]["outputs"][0])
        names.append(tensors[out]["name"])
        nxt = consumers.get(out, [])
        if len(nxt) != 1 or ops[nxt[0]]["op_name"] not in _STEM_TAIL:
            return names
        k = nxt[0]


def tflite_int8(model: Any, calibration: np.ndarray, io_dtype: str = "int8", float_stem: bool = True,
                float_nodes: Sequence[str] = ()) -> tuple[bytes, list[str]]:
    """Full-int8 flatbuffer with the stem (see module doc) and ``float_nodes`` kept in float.

    Args:
        model: Keras model taking 0..255 pixels.
        calibration: Representative images (NHWC, 0..255).
        io_dtype: ``int8``, ``uint8`` or ``float32`` input/output tensors.
        float_stem: Keep the stem convolution and its pool in float.
        float_nodes: Op output tensor names to keep in float (from :func:`tflite_layer_errors`).

    Returns:
        (flatbuffer, names of the op outputs kept in float).

    Raises:
        ValueError: a name in ``float_nodes`` is no op output of this model.
    """
    if calibration is None or len(calibration) == 0:
        raise CalibrationError("Full int8 quantization needs calibration images (a representative dataset).")
    calibrated = _calibrated_tflite(model, calibration, io_dtype)
    known = tflite_op_names(calibrated)
    unknown = [n for n in float_nodes if n not in known]
    if unknown:
        raise ValueError(f"float_nodes {unknown} are not op outputs of this model; expected names from {known[:6]}...")
    keep = list(dict.fromkeys([*(tflite_stem(calibrated) if float_stem else []), *float_nodes]))
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    dtype = getattr(tf, io_dtype)
    with contextlib.redirect_stdout(io.StringIO()):
        flat = mlir_quantize(calibrated, input_data_type=dtype, output_data_type=dtype, denylisted_nodes=keep or None)
    return bytes(flat), keep


def tflite_layer_errors(model: Any, calibration: np.ndarray, samples: np.ndarray, float_nodes: Sequence[str] = (),
                        top: int | None = 5) -> list[dict[str, Any]]:
    """The still-quantized ops with the largest error, from TFLite's ``QuantizationDebugger``.

    Each row: ``layer`` (Keras layer name when found), ``tensor`` (op output name, what ``float_nodes`` takes),
    ``op``, ``rmse``, ``scale`` and ``rmse_per_scale`` (how many quantization steps the error spans; ≫ 1 means the
    layer lost its signal), worst first. Ops in ``float_nodes`` are not measured.
    """
    import csv

    import tensorflow as tf

    from converters.to_tflite import _all_layers, _layer_for, make_converter, representative_dataset

    converter = make_converter(model, "int8", calibration, io_dtype="float32")
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_nodes) or None)
    with contextlib.redirect_stdout(io.StringIO()):
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative_dataset(samples), debug_options=options)
        debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    names = sorted((layer.name for layer in _all_layers(model)), key=len, reverse=True)
    out = []
    for r in csv.DictReader(io.StringIO(buf.getvalue())):
        scale = float(r.get("scale") or 0.0)
        rmse = float(np.sqrt(max(float(r.get("mean_squared_error") or 0.0), 0.0)))
        tensor = r.get("tensor_name", "")
        out.append({"layer": _layer_for(tensor.split(";")[0].split("/"), names), "tensor": tensor,
                    "op": r.get("op_name", ""), "rmse": rmse, "scale": scale,
                    "rmse_per_scale": rmse / scale if scale else float("inf") if rmse else 0.0,
                    "max_abs_error": float(r.get("max_abs_error") or 0.0)})
    out.sort(key=lambda r: r["rmse_per_scale"], reverse=True)
    return out if top is None else out[:top]


# ====================================================================== ONNX
def onnx_int8(proto: Any, calibration: np.ndarray, float_nodes: Sequence[str] = (), float_stem: bool = True) -> Any:
    """Static QDQ quantization: uint8 activations, int8 per-channel weights, ``float_nodes`` left in float, and
    (``float_stem``) the stem ``Conv → MaxPool → Relu`` in float (:func:`converters.graph.onnx_float_stem`)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from converters.graph import onnx_float_stem

    if calibration is None or len(calibration) == 0:
        raise CalibrationError("ONNX int8 quantization needs calibration images.")
    with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        if float_stem:
            proto = onnx.ModelProto.FromString(proto.SerializeToString())  # the caller's float graph stays as it was
            stem = onnx_float_stem(proto, STEM_MAX_CHANNELS)
            float_nodes = [*stem, *(n for n in float_nodes if n not in stem)]
        onnx.save(proto, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        known = {n.name for n in onnx.load(str(pre)).graph.node}
        unknown = [n for n in float_nodes if n not in known]
        if unknown:
            raise ValueError(f"float_nodes {unknown} are not nodes of this ONNX graph.")
        # the input is pixels 0..255 by contract: its range is set, never calibrated (dark calibration images
        # would otherwise clip every brighter pixel at run time)
        pixels = {proto.graph.input[0].name: [{"rmin": np.array(PIXEL_RANGE[0], dtype=np.float32),
                                                "rmax": np.array(PIXEL_RANGE[1], dtype=np.float32)}]}
        quantize_static(str(pre), str(out), _reader(proto, calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(float_nodes), extra_options={"TensorQuantOverrides": pixels})
        return onnx.load(out)


def onnx_uint8_weights(proto: Any) -> int:
    """Make every int8 weight of a QDQ model uint8, in place: ``q + 128`` with zero point ``zp + 128``, so each
    DequantizeLinear gives exactly the same values. OpenCV DNN 5.x refuses int8 weights ("bufidx >= 0 in function
    'argTensor'") and reads uint8 ones; onnxruntime runs U8U8 about 1.5× slower than U8S8 on x86, so only the
    ``--target opencv`` export does this. Returns how many weight tensors were shifted."""
    from onnx import numpy_helper

    inits = {i.name: i for i in proto.graph.initializer}
    shifted: set[str] = set()
    count = 0
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 3:
            continue
        q, zp = inits.get(node.input[0]), inits.get(node.input[2])
        if q is None or zp is None or numpy_helper.to_array(q).dtype != np.int8:
            continue
        for t in (q, zp):
            if t.name not in shifted:
                a = numpy_helper.to_array(t)
                t.CopyFrom(numpy_helper.from_array((a.astype(np.int16) + 128).astype(np.uint8), t.name))
                shifted.add(t.name)
        count += 1
    return count


def _reader(proto: Any, images: np.ndarray) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    name = proto.graph.input[0].name
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    step = 1 if dims and dims[0].HasField("dim_value") else 32

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            x = np.asarray(images, dtype=np.float32)
            self._batches = iter([{name: x[i : i + step]} for i in range(0, len(x), step)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return Reader()


def onnx_layer_errors(proto_int8: Any, samples: np.ndarray, top: int | None = 5) -> list[dict[str, Any]]:
    """The quantized activations with the lowest signal-to-quantization-noise ratio in a QDQ model.

    Uses onnxruntime's ``qdq_loss_debug``: each activation before and after its QuantizeLinear/DequantizeLinear
    pair on ``samples``. Each row: ``tensor``, ``node`` (the node producing it: what
    ``float_nodes`` takes; None for the model input), ``op``, ``sqnr_db``; worst (lowest SQNR) first. Nodes
    already kept in float have no QDQ pair and are not listed.
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_signal_to_quantization_noice_ratio,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    producers = {out: n for n in proto_int8.graph.node for out in n.output
                 if n.op_type not in ("QuantizeLinear", "DequantizeLinear")}
    with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-debug-") as tmp:
        q, aug = Path(tmp) / "int8.onnx", Path(tmp) / "aug.onnx"
        onnx.save(proto_int8, q)
        modify_model_output_intermediate_tensors(str(q), str(aug))
        acts = collect_activations(str(aug), _reader(proto_int8, samples))
    errors = {name: compute_signal_to_quantization_noice_ratio(m["pre_qdq"], m["post_qdq"])
              for name, m in create_activation_matching(acts).items()}
    from onnxruntime.quantization.quant_utils import QUANT_INPUT_SUFFIX

    rows = []
    for tensor, err in errors.items():
        # a graph output keeps its name on the DequantizeLinear; its producer writes "<name>_QuantizeLinear_Input"
        node = producers.get(tensor) or producers.get(tensor + QUANT_INPUT_SUFFIX)
        rows.append({"tensor": tensor, "node": node.name if node is not None else None,
                     "layer": node.name if node is not None else None,
                     "op": node.op_type if node is not None else "input", "sqnr_db": float(err)})
    rows.sort(key=lambda r: r["sqnr_db"])
    return rows if top is None else rows[:top]
