"""One writer per export format, named by its row in :data:`converters.registry.FORMATS` (``writer``).

Each takes the Keras model, the canonical precision, checked calibration pixels (or None), the output path, the
card dict, labels, :class:`~converters.ConvertOptions` and the card's ``artifact`` section so far; it writes the
artifact atomically with the card embedded and returns ``(inputs, outputs, card)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

Written = tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]

#: Why a quantization-aware model's int8 TFLite has no float stem (written into its card).
QAT_WHY = ("every layer int8, the stem included (an Edge TPU or NPU runs only a fully int8 graph; a float layer "
           "falls back to the CPU); the ranges are the model's own, fine-tuned with fake quantization")


def write_tflite(model: Any, precision: str, calib: np.ndarray | None, path: Path, metadata: dict[str, Any] | None,
                 labels: list[str], options: Any, artifact: dict[str, Any]) -> Written:
    """A ``.tflite`` flatbuffer with the standard TFLite metadata, its labels and the card embedded."""
    from converters import to_tflite
    from converters._fileio import write_bytes_atomic
    from converters.metadata import complete_card, embed_tflite
    from converters.registry import DEFAULT_INT8_IO_DTYPE

    io_dtype = (options.io_dtype or DEFAULT_INT8_IO_DTYPE) if precision == "int8" else "float32"
    from converters.graph import fake_quantized

    if precision == "int8" and fake_quantized(model):  # QAT: its own ranges, no calibration, nothing in float
        flat = to_tflite.convert_qat(model, io_dtype)
        artifact["int8"] = {"scheme": "quantization-aware training: per-channel int8 weights, int8 activations, "
                                      "ranges learned in training (no calibration)",
                            "qat": True, "float_stem": False, "float_nodes": [], "why": QAT_WHY}
    elif precision == "int8":
        from converters.int8 import TFLITE_WHY, tflite_int8

        flat, kept = tflite_int8(model, calib, io_dtype, float_stem=options.float_stem, float_nodes=options.float_nodes)
        artifact["int8"] = {"scheme": "per-channel int8 weights, int8 activations (XNNPACK)",
                            "float_stem": bool(options.float_stem), "float_nodes": kept, "why": TFLITE_WHY}
    else:
        flat = to_tflite.convert(model, precision, calib, io_dtype)
    inputs, outputs = to_tflite.tensor_details(flat)
    if options.target:
        artifact["target"] = options.target
    artifact |= {"io_dtype": io_dtype, "converter": versions("tensorflow")}
    card = complete_card(metadata, inputs, outputs, artifact)
    write_bytes_atomic(path, embed_tflite(flat, card, labels))
    return inputs, outputs, card


def write_onnx(model: Any, precision: str, calib: np.ndarray | None, path: Path, metadata: dict[str, Any] | None,
               labels: list[str], options: Any, artifact: dict[str, Any]) -> Written:
    """An ``.onnx`` model (tf2onnx; int8 as QDQ) with the card in ``metadata_props``, checked before it is written."""
    from converters import to_onnx
    from converters._fileio import write_bytes_atomic
    from converters.graph import fake_quantized, fold_input_rescaling, stable_node_names
    from converters.metadata import complete_card, embed_onnx

    qat = fake_quantized(model)
    # exact; saves a float Mul (and a Q/DQ round trip in int8). A QAT model keeps its quantized Rescaling.
    model, folded = (model, None) if qat else fold_input_rescaling(model)
    proto = stable_node_names(to_onnx.to_onnx(model, opset=options.opset, dynamic_batch=options.dynamic_batch))
    if precision == "int8" and qat:  # QDQ from the model's own ranges; its int8-grid weights written as int8
        from converters.qat import onnx_qdq_weights

        onnx_qdq_weights(proto)
        artifact["int8"] = {"scheme": "quantization-aware training: QDQ with the ranges learned in training, int8 "
                                      "weights (per channel for Conv); no calibration",
                            "qat": True, "float_stem": False, "float_nodes": [], "why": QAT_WHY}
    elif precision == "int8":
        from converters.int8 import ONNX_WHY, onnx_int8

        proto = onnx_int8(proto, calib, float_nodes=options.float_nodes, float_stem=options.float_stem)
        artifact["int8"] = {"scheme": "QDQ, uint8 activations, int8 per-channel weights (U8S8)",
                            "float_stem": bool(options.float_stem), "float_nodes": list(options.float_nodes),
                            "why": ONNX_WHY}
        if options.onnx_int8_weights == "uint8":
            from converters.int8 import onnx_uint8_weights

            onnx_uint8_weights(proto)
            artifact["int8"]["scheme"] = "QDQ, uint8 activations, uint8 per-channel weights (U8U8: OpenCV DNN 5.x)"
    inputs, outputs = to_onnx.tensor_details(proto)
    if options.target:
        artifact["target"] = options.target
    artifact |= {"io_dtype": inputs[0]["dtype"], "opset": options.opset, "dynamic_batch": options.dynamic_batch,
                 "rescaling_folded_into": folded,
                 "quantization": (f"qdq-per-channel-u8{options.onnx_int8_weights[0]}8" if precision == "int8" else None),
                 "converter": versions("tf2onnx", "onnx", "onnxruntime")}
    card = complete_card(metadata, inputs, outputs, artifact)
    embed_onnx(proto, card, labels)
    try:
        to_onnx.check(proto)
    except Exception as exc:  # noqa: BLE001  (onnx.checker.ValidationError and friends)
        from converters.to_tflite import conversion_error

        raise conversion_error(model, exc, "ONNX") from exc
    write_bytes_atomic(path, proto.SerializeToString())
    return inputs, outputs, card


def write_saved_model(model: Any, precision: str, calib: np.ndarray | None, path: Path,
                      metadata: dict[str, Any] | None, labels: list[str], options: Any,
                      artifact: dict[str, Any]) -> Written:
    """A SavedModel folder (``serve`` endpoint) with the card and labels beside it, published by one rename."""
    from converters import to_saved_model
    from converters._fileio import atomic_dir
    from converters.metadata import TFLITE_MEMBER, card_json, complete_card, labels_text

    inputs, outputs = to_saved_model.tensor_details(model)
    artifact |= {"io_dtype": "float32", "converter": versions("tensorflow", "keras")}
    card = complete_card(metadata, inputs, outputs, artifact)
    with atomic_dir(path) as tmp:
        target = tmp / "saved_model"
        to_saved_model.export(model, target)
        for child in target.iterdir():
            child.rename(tmp / child.name)
        target.rmdir()
        (tmp / TFLITE_MEMBER).write_text(card_json(card), encoding="utf-8")
        (tmp / "labels.txt").write_text(labels_text(labels), encoding="utf-8")
    return inputs, outputs, card


def versions(*dists: str) -> dict[str, str]:
    """Installed versions of the converter packages (``unknown`` when one is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for d in dists:
        try:
            out[d] = version(d)
        except PackageNotFoundError:
            out[d] = "unknown"
    return out
