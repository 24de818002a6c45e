"""Validation of a model card read from a file someone else made: every field's type and bounds
(:func:`validate_card`), and the card against the model it describes (:func:`check_card_against_model`).

Pure Python, like :mod:`edgecnn.modelcard` (which re-exports these names): readable on an edge box without
TensorFlow, onnx or onnxruntime.
"""

from __future__ import annotations

from typing import Any

from edgecnn.errors import ModelError

#: What a card is here: an :class:`edgecnn.modelcard.ModelCard` (not imported: modelcard imports this module).
ModelCard = Any

#: Bounds of a card read from a file someone else made (every reader: embedded, sidecar, standard metadata).
MAX_CARD_BYTES = 8_000_000
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 1_000
MAX_SIDE = 4096  # edgecnn.imaging.MAX_IMG_SIDE (not imported: this module stays pure Python)
ACTIVATIONS = ("softmax", "sigmoid", "none", "linear", "logits")
LAYOUTS = ("NHWC", "NCHW")
DTYPES = ("float32", "float16", "float64", "uint8", "int8", "int16", "uint16", "int32", "int64")


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _bad(field_path: str, expected: str, received: Any) -> ModelError:
    return ModelError(f"Model card field {field_path}: expected {expected}; received {_kind(received)}. Fix the card "
                      "or re-export the model.")


def _int(value: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(path, f"a whole number from {lo} to {hi}", value)
    return value


def _number(value: Any, path: str) -> float:
    import math

    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(path, "a finite number", value)
    return float(value)


def _numbers(value: Any, path: str, counts: tuple[int, ...]) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) not in counts:
        raise _bad(path, f"a list of {' or '.join(map(str, counts))} numbers", value)
    return [_number(v, f"{path}[{i}]") for i, v in enumerate(value)]


def validate_card(card: ModelCard) -> ModelCard:
    """Check every value of a card read from a file: type, range, and counts against each other (labels against
    the output units, mean/std against the channels). Fields a newer card adds are checked by kind (numbers must
    be finite, texts must be texts).

    Raises:
        ModelError: one line naming the field (``preprocessing.std[0]``), what was expected and what was received.
    """
    from edgecnn.imaging import COLORS, INTERPOLATIONS

    labels = card.labels
    if not isinstance(labels, list):
        raise _bad("labels", "a list of class names", labels)
    if not 1 <= len(labels) <= MAX_LABELS:
        raise _bad("labels", f"1 to {MAX_LABELS:,} class names", labels)
    for i, label in enumerate(labels):
        if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS:
            raise _bad(f"labels[{i}]", f"a text of at most {MAX_LABEL_CHARS} characters", label)
    spec = card.input
    _int(spec.height, "input.height", 1, MAX_SIDE)
    _int(spec.width, "input.width", 1, MAX_SIDE)
    channels = _int(spec.channels, "input.channels", 1, 3)
    if channels == 2:
        raise _bad("input.channels", "1 (grayscale) or 3 (RGB)", channels)
    if spec.layout not in LAYOUTS:
        raise _bad("input.layout", f"one of {list(LAYOUTS)}", spec.layout)
    if spec.dtype not in DTYPES:
        raise _bad("input.dtype", f"one of {list(DTYPES)}", spec.dtype)
    lo, hi = _numbers(spec.range, "input.range", (2,))
    if not lo < hi:
        raise _bad("input.range", "[low, high] with low < high", spec.range)
    for where, q in (("input.quantization", spec.quantization), ("output.quantization", card.output.quantization)):
        if q is not None:
            if not _number(q.scale, f"{where}.scale") > 0:
                raise _bad(f"{where}.scale", "a number above 0", q.scale)
            _int(q.zero_point, f"{where}.zero_point", -(2**31), 2**31 - 1)
    out = card.output
    if out.activation not in ACTIVATIONS:
        raise _bad("output.activation", f"one of {list(ACTIVATIONS)}", out.activation)
    if out.dtype not in DTYPES:
        raise _bad("output.dtype", f"one of {list(DTYPES)}", out.dtype)
    if out.units is not None:
        units = _int(out.units, "output.units", 1, MAX_LABELS)
        if len(labels) != units and not (units == 1 and len(labels) == 2):
            raise ModelError(f"Model card field labels: expected {units} labels for output.units={units}"
                             f"{' (or 2 for one sigmoid unit)' if units == 1 else ''}; received {len(labels)}.")
    pre = card.preprocessing
    if pre.color not in COLORS:
        raise _bad("preprocessing.color", f"one of {list(COLORS)}", pre.color)
    if (pre.color == "grayscale") != (channels == 1) and pre.color in ("rgb", "grayscale"):
        raise ModelError(f"Model card field preprocessing.color: expected {'grayscale' if channels == 1 else 'rgb'} "
                         f"for input.channels={channels}; received {pre.color!r}.")
    if pre.resize not in INTERPOLATIONS:
        raise _bad("preprocessing.resize", f"one of {sorted(INTERPOLATIONS)}", pre.resize)
    from edgecnn import imaging

    modes = getattr(imaging, "RESIZE_MODES", None)
    if modes is not None and getattr(pre, "resize_mode", modes[0]) not in modes:
        raise _bad("preprocessing.resize_mode", f"one of {list(modes)}", pre.resize_mode)
    convention = getattr(pre, "convention", None)
    if convention is not None and (not isinstance(convention, str) or len(convention) > 100):
        raise _bad("preprocessing.convention", "a short text or null", convention)
    if not isinstance(pre.rescale_in_graph, bool):
        raise _bad("preprocessing.rescale_in_graph", "true or false", pre.rescale_in_graph)
    _number(pre.scale, "preprocessing.scale")
    _number(pre.offset, "preprocessing.offset")
    mean = _numbers(pre.mean, "preprocessing.mean", (1, channels))
    std = _numbers(pre.std, "preprocessing.std", (1, channels))
    for i, v in enumerate(std):
        if not v > 0:
            raise _bad(f"preprocessing.std[{i}]", "a number above 0 (pixels are divided by it)", v)
    del mean
    for section, obj in (("input", spec), ("output", out), ("preprocessing", pre)):  # fields a newer card adds
        for name, value in vars(obj).items():
            if isinstance(value, float):
                _number(value, f"{section}.{name}")
            elif isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
                for i, v in enumerate(value):
                    _number(v, f"{section}.{name}[{i}]")
    for name in ("name", "task", "schema"):
        if not isinstance(getattr(card, name), str):
            raise _bad(name, "a text", getattr(card, name))
    for name in ("artifact", "config", "dataset", "metrics", "provenance", "reference"):
        if not hasattr(card, name):
            continue
        if not isinstance(getattr(card, name), dict):
            raise _bad(name, "an object", getattr(card, name))
    return card


def check_card_against_model(card: ModelCard, input_shape: Any, output_shape: Any, name: str) -> None:
    """The card must fit the model it describes: labels against the output's last dimension, channels against
    the input tensor (NHWC or NCHW, as the card's layout says), where the tensors' sizes are fixed.

    Raises:
        ModelError: one line naming the field and both counts.
    """
    units = output_shape[-1] if output_shape else None
    if isinstance(units, int) and units > 0:
        n = len(card.labels)
        if n != units and not (units == 1 and n == 2):
            raise ModelError(f"{name}: model card field labels lists {n} labels but the model's output has {units} "
                             f"values; fix the card's labels (or the labels file) to match the model.")
    shape = list(input_shape or [])
    if len(shape) == 4:
        c = shape[1] if card.input.layout == "NCHW" else shape[3]
        if isinstance(c, int) and c > 0 and c != card.input.channels:
            raise ModelError(f"{name}: model card field input.channels is {card.input.channels} but the model's input "
                             f"has {c} channels ({card.input.layout} {shape}); fix the card.")
