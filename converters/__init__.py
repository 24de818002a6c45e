"""Keras → TFLite / ONNX / SavedModel conversion, quantization and metadata embedding.

This package knows nothing of edgecnn (rule 1): it takes a Keras model, calibration arrays (NHWC pixels
0..255, uint8 or float), a metadata dict (the model card as JSON-able dict) and labels, and writes files
atomically. The registry (:mod:`converters.registry`) is the one table of formats × precisions.

Example:
    >>> import converters
    >>> result = converters.convert(model, "tflite", "int8", "model-int8.tflite",
    ...                             calibration=x_train[:300], metadata=card_dict, labels=labels)
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from converters.errors import CalibrationError, ConversionError
from converters.registry import (
    ALIASES,
    DEFAULT_INT8_IO_DTYPE,
    FORMATS,
    IO_DTYPE_TARGET,
    IO_DTYPES,
    PRECISIONS,
    artifact_name,
    export_formats,
    fits,
    precision_name,
    targets,
)

__all__ = [
    "ALIASES",
    "FORMATS",
    "DEFAULT_INT8_IO_DTYPE",
    "IO_DTYPES",
    "PRECISIONS",
    "CalibrationError",
    "ConversionError",
    "ConvertOptions",
    "Converted",
    "artifact_name",
    "convert",
    "export_formats",
    "fits",
    "precision_name",
    "targets",
]


@dataclass
class ConvertOptions:
    """Options shared by the converters.

    Attributes:
        io_dtype: Input/output tensor type of a full-int8 TFLite model (``uint8`` default, ``int8``, ``float32``).
        opset: ONNX opset.
        dynamic_batch: ONNX with a symbolic batch dimension (TFLite models are always resizable).
        float_stem: int8 TFLite keeps its stem convolution (≤ 4 input channels) and the pool after it in float,
            which measures faster on XNNPACK (see :mod:`converters.int8`).
        float_nodes: Layers an int8 artifact keeps in float (TFLite op output tensor names, ONNX node names), as
            chosen by export's repair from the per-layer quantization errors.
    """

    io_dtype: str | None = None
    opset: int = 17
    dynamic_batch: bool = False
    float_stem: bool = True
    float_nodes: tuple[str, ...] = ()
    #: Weight type of an int8 ONNX: ``int8`` (U8S8, onnxruntime's fast x86 path) or ``uint8`` (U8U8: what OpenCV DNN
    #: 5.x reads; the same values, each weight and zero point shifted by 128).
    onnx_int8_weights: str = "int8"
    #: The consumer preset the artifact is written for (``opencv``), recorded in its card.
    target: str | None = None


@dataclass
class Converted:
    """What :func:`convert` wrote."""

    path: Path
    format: str
    precision: str
    seconds: float
    size_bytes: int
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def _check_calibration(model: Any, calibration: Any) -> np.ndarray:
    if calibration is None:
        raise CalibrationError("int8 needs calibration images; received none.")
    x = np.asarray(calibration)
    expected = tuple(int(v) for v in model.inputs[0].shape[1:])
    if x.ndim != 4 or tuple(x.shape[1:]) != expected or len(x) == 0:
        raise CalibrationError(f"Calibration data must be N×{'×'.join(map(str, expected))} pixels; received shape {x.shape}.")
    if x.dtype.kind == "f" and (float(x.min()) < 0 or float(x.max()) > 255):
        raise CalibrationError(f"Calibration pixels must be in 0..255; received {float(x.min()):.3g}..{float(x.max()):.3g}.")
    return x.astype(np.float32)


def convert(
    model: Any,
    fmt: str,
    precision: str,
    path: str | os.PathLike[str],
    *,
    calibration: Any = None,
    metadata: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    options: ConvertOptions | None = None,
) -> Converted:
    """Convert ``model`` to one artifact and write it atomically with the card embedded.

    The card's ``input``/``output`` dtype and quantization are read from the converted tensors and its
    ``artifact`` section is filled (format, precision, io_dtype, opset, dynamic_batch, converter versions).

    Args:
        model: A Keras model taking float32 NHWC pixels 0..255.
        fmt: A :data:`FORMATS` key.
        precision: A :data:`PRECISIONS` key or ``--quantize`` alias.
        path: Output file (or folder for SavedModel).
        calibration: Representative images for int8 (NHWC, 0..255), from training data.
        metadata: The model card as a dict.
        labels: Class labels, embedded beside the card.
        options: See :class:`ConvertOptions`.

    Raises:
        ValueError: unknown format/precision or a combination the registry does not allow.
        CalibrationError: int8 without usable calibration data.
        ConversionError: the converter rejected the model (the message names the layer when known).
    """
    options = options or ConvertOptions()
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; expected one of {list(FORMATS)}.")
    precision = precision_name(precision)
    if not fits(fmt, precision):
        raise ValueError(f"{fmt} cannot be written in {precision}; it supports {list(FORMATS[fmt].precisions)}.")
    if options.io_dtype not in (None, *IO_DTYPES):
        raise ValueError(f"io_dtype must be one of {IO_DTYPES}; received {options.io_dtype!r}.")
    if options.io_dtype not in (None, "float32") and (fmt, precision) != IO_DTYPE_TARGET:
        raise ValueError(f"io_dtype={options.io_dtype} applies only to int8 TFLite; received {fmt} {precision}.")
    from converters.graph import fake_quantized

    # a quantization-aware model carries its own ranges: no calibration (any given is not used)
    calib = (_check_calibration(model, calibration)
             if PRECISIONS[precision].calibration and not fake_quantized(model) else None)
    labels = list(labels or (metadata or {}).get("labels") or [])
    path = Path(path)
    t0 = time.perf_counter()
    artifact: dict[str, Any] = {"format": fmt, "precision": precision, "file": path.name}
    from converters.heads import is_sigmoid_binary, two_class, two_class_card

    if is_sigmoid_binary(model, metadata, labels):  # consumers read one score per label: write [1 - p, p]
        model, metadata = two_class(model), two_class_card(metadata)
        artifact["output"] = "[1 - p, p] of the sigmoid head"
    module, _, func = FORMATS[fmt].writer.partition(":")
    write = getattr(importlib.import_module(module), func)
    inputs, outputs, card = write(model, precision, calib, path, metadata, labels, options, artifact)
    seconds = time.perf_counter() - t0
    return Converted(path=path, format=fmt, precision=precision, seconds=seconds, size_bytes=_size(path),
                     inputs=inputs, outputs=outputs, metadata=card)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
