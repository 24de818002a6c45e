"""The one table of export formats × precisions (Ultralytics' ``export_formats()`` style).

A pure-Python leaf: it imports nothing (no TensorFlow, no edgecnn), so the edge side may read it for names of
formats and precisions (ARCHITECTURE rule 2's one exception; ``tests/test_house.py`` guards it).

CLI choices, validation, file names and docs all come from :data:`FORMATS` and :data:`PRECISIONS`;
adding a row here is how a new target is added (and tested: the round-trip tests are parametrized
over :func:`targets`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """A numeric precision an artifact can be written in.

    Attributes:
        name: Canonical name used in file names and model cards (``float32``...).
        alias: The ``--quantize`` spelling (``none``, ``fp16``, ``dynamic``, ``int8``).
        calibration: Whether converting needs a representative (calibration) dataset.
        description: One line for ``--help`` and the docs.
        gate: Which parity gates apply: ``exact`` (float32), ``half`` (float16) or ``quantized``
            (dynamic, int8: agreement and accuracy drop instead of max |Δp|).
    """

    name: str
    alias: str
    calibration: bool
    description: str
    gate: str = "exact"


@dataclass(frozen=True)
class Format:
    """An export format.

    Attributes:
        name: ``--format`` value.
        suffix: File suffix of the artifact (empty for a directory artifact).
        precisions: Precision names this format can be written in.
        runtime: What runs it on the edge side.
        directory: True when the artifact is a folder (SavedModel).
        description: One line for ``--help`` and the docs.
        writer: ``module:function`` that writes it (imported only when used, so this table stays pure Python);
            :func:`converters.convert` dispatches through it.
    """

    name: str
    suffix: str
    precisions: tuple[str, ...]
    runtime: str
    directory: bool
    description: str
    writer: str = ""


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("float32", "none", False, "no quantization; bit-exact reference"),
        Precision("float16", "fp16", False, "float16 weights (half the size; GPU delegates run it natively)", "half"),
        Precision("dynamic", "dynamic", False, "int8 weights, float activations (dynamic-range quantization)",
                  "quantized"),
        Precision("int8", "int8", True, "full integer: int8 weights and activations, calibrated on training images",
                  "quantized"),
    )
}

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("tflite", ".tflite", ("float32", "float16", "dynamic", "int8"), "LiteRT / tflite-runtime", False,
               "TensorFlow Lite flatbuffer (Raspberry Pi, Coral, Android)", writer="converters.writers:write_tflite"),
        Format("onnx", ".onnx", ("float32", "int8"), "onnxruntime", False,
               "ONNX via tf2onnx; int8 via onnxruntime static QDQ quantization", writer="converters.writers:write_onnx"),
        Format("saved_model", "", ("float32",), "TensorFlow / TF Serving", True,
               "TensorFlow SavedModel folder (model.export)", writer="converters.writers:write_saved_model"),
    )
}

@dataclass(frozen=True)
class Consumer:
    """A runtime outside edgecnn that people embed, and the artifacts an export preset (``--target``) writes for it.

    Attributes:
        name: ``--target`` value.
        targets: (format, precision) pairs the consumer runs.
        onnx_int8_weights: Weight type of an int8 ONNX (``uint8`` where the consumer cannot read int8 weights).
        cannot: (format, precision) → why the consumer cannot run it (its own error), for docs and ``--help``.
    """

    name: str
    targets: tuple[tuple[str, str], ...]
    onnx_int8_weights: str = "int8"
    cannot: tuple[tuple[str, str, str], ...] = ()


#: Export presets for consumers (``edgecnn export --target NAME``). OpenCV DNN 4.12-4.14 and 5.0-5.1 (measured by
#: tests/export/test_opencv.py): float TFLite needs no SHAPE op (every export writes Flatten as a constant-shape
#: reshape); OpenCV 5.x asserts "bufidx >= 0 in function 'argTensor'" on int8 QDQ weights and reads uint8 ones.
CONSUMERS: dict[str, Consumer] = {
    c.name: c
    for c in (
        Consumer("opencv", (("tflite", "float32"), ("tflite", "float16"), ("onnx", "float32"), ("onnx", "int8")),
                 onnx_int8_weights="uint8",
                 cannot=(("tflite", "dynamic", "OpenCV has no hybrid (int8-weight, float-activation) kernels: "
                          "convolution_layer.cpp: Assertion failed ... blobs.size() == 1"),
                         ("tflite", "int8", "OpenCV's int8 TFLite importer implements no fused RELU "
                          "('Lookup table for RELU'), no int8 MEAN and no int8 FULLY_CONNECTED ('Can't create "
                          "layer'); with those kept float it loads but returns wrong scores"))),
    )
}

#: The precision of an unquantized model: a ``.keras`` model, or an artifact whose card does not say.
FULL_PRECISION = "float32"

#: ``--quantize`` spelling → precision name.
ALIASES: dict[str, str] = {p.alias: p.name for p in PRECISIONS.values()} | {p.name: p.name for p in PRECISIONS.values()}

#: Input/output tensor dtypes a fully-quantized TFLite model may have.
IO_DTYPES: tuple[str, ...] = ("float32", "int8", "uint8")

#: The one (format, precision) whose input/output tensor type is chosen (``--io-dtype``): full-int8 TFLite.
IO_DTYPE_TARGET: tuple[str, str] = ("tflite", "int8")

#: The (format, precision) quantization-aware training writes (``export --qat-epochs``): full-int8 TFLite.
QAT_TARGET: tuple[str, str] = IO_DTYPE_TARGET

#: I/O dtype of a full-int8 TFLite model when ``--io-dtype`` is not given. uint8 is what cameras give and what
#: the standard consumers take (MediaPipe Tasks accepts uint8 or float32 input, never int8); with the input's
#: range pinned to 0..255 it is the raw pixel bytes (scale 1, zero point 0), so nothing is computed on the way in.
DEFAULT_INT8_IO_DTYPE = "uint8"


def precision_name(value: str) -> str:
    """Canonical precision for a ``--quantize`` value (``none``→``float32``, ``fp16``→``float16``...).

    Raises:
        ValueError: the value names no precision.
    """
    try:
        return ALIASES[value.lower()]
    except KeyError:
        raise ValueError(f"Unknown precision {value!r}; expected one of {sorted(set(ALIASES))}.") from None


def fits(fmt: str, precision: str) -> bool:
    """Whether ``fmt`` can be written in ``precision``."""
    return fmt in FORMATS and precision_name(precision) in FORMATS[fmt].precisions


def artifact_name(fmt: str, precision: str, stem: str = "model") -> str:
    """File (or folder) name of an artifact: ``model-int8.tflite``, ``model-float32.onnx``, ``saved_model``."""
    spec = FORMATS[fmt]
    precision = precision_name(precision)
    if spec.directory:
        return f"{stem}-{precision}_{spec.name}"
    return f"{stem}-{precision}{spec.suffix}"


def parse_artifact_name(name: str) -> tuple[str, str] | None:
    """(format, precision) of a file or folder named by :func:`artifact_name` (``model-int8.tflite`` →
    ``("tflite", "int8")``); None for any other name."""
    for spec in FORMATS.values():
        for precision in spec.precisions:
            tail = f"-{precision}_{spec.name}" if spec.directory else f"-{precision}{spec.suffix}"
            if name.lower().endswith(tail) and len(name) > len(tail):
                return spec.name, precision
    return None


def precision_rank(precision: str) -> int:
    """Position of a precision in the table (float32 first); unknown names sort last."""
    names = list(PRECISIONS)
    return names.index(precision) if precision in names else len(names)


def gate_precisions() -> list[str]:
    """One precision per kind of parity gate (``exact``, ``half``, ``quantized``: the last of each), for docs."""
    last = {p.gate: p.name for p in PRECISIONS.values()}
    return list(last.values())


def targets() -> list[tuple[str, str]]:
    """Every (format, precision) pair the registry supports, in table order."""
    return [(f.name, p) for f in FORMATS.values() for p in f.precisions]


def export_formats() -> list[dict[str, object]]:
    """The registry as rows, for ``--help`` and documentation tables."""
    return [
        {"format": f.name, "suffix": f.suffix or "(folder)", "precisions": ", ".join(f.precisions), "runtime": f.runtime,
         "description": f.description}
        for f in FORMATS.values()
    ]
