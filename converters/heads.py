"""Output heads as every consumer expects them.

A two-class model trained with a one-unit sigmoid head outputs ``p`` = probability of ``labels[1]``. Standard
consumers (MediaPipe Tasks, the LiteRT support library, ONNX users) read an image classifier's output as one score
per label, so a one-value output makes them report ``labels[1]`` for every image. Artifacts therefore carry
``[1 - p, p]``: two probabilities in label order, the same numbers edgecnn has always reported.
"""

from __future__ import annotations

import copy
from typing import Any


def is_sigmoid_binary(model: Any, metadata: dict[str, Any] | None, labels: list[str]) -> bool:
    """Whether ``model`` has one output with one unit that the card calls a sigmoid over two labels."""
    out = (metadata or {}).get("output") or {}
    shape = tuple(model.outputs[0].shape) if len(getattr(model, "outputs", [])) == 1 else ()
    return out.get("activation") == "sigmoid" and len(labels) == 2 and len(shape) == 2 and shape[-1] == 1


#: TFLite's int8 logistic output range (scale 1/256, zero point -128), which ``1 - p`` of a QAT model shares.
PROBABILITY_RANGE = (0.0, 255.0 / 256.0)


def two_class(model: Any) -> Any:
    """A functional model around ``model`` whose output is ``[1 - p, p]`` (named ``probabilities``).

    For a quantization-aware model (:func:`converters.graph.fake_quantized`), ``1 - p`` is fake-quantized to the
    range of ``p``, so both halves of the concatenation share one int8 scale and no op falls back to float.
    """
    import keras

    from converters.graph import fake_quantized

    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name="image")
    p = model(inputs)
    if fake_quantized(model):  # -p, then 1 - p: two int8 ops, each with its fixed range
        lo, hi = PROBABILITY_RANGE

        def fq(lo: float, hi: float, name: str) -> Any:
            return keras.layers.Activation(
                lambda t: keras.quantizers.fake_quant_with_min_max_vars(t, lo, hi, num_bits=8), name=name)

        minus_p = fq(-hi, lo, "minus_p_fq")(keras.layers.Rescaling(scale=-1.0, name="minus_p")(p))
        one_minus_p = keras.layers.Rescaling(scale=1.0, offset=1.0, name="one_minus_p")(minus_p)
        one_minus_p = fq(lo, hi, "one_minus_p_fq")(one_minus_p)
    else:
        one_minus_p = keras.layers.Rescaling(scale=-1.0, offset=1.0, name="one_minus_p")(p)
    outputs = keras.layers.Concatenate(name="probabilities")([one_minus_p, p])
    return keras.Model(inputs, outputs, name=model.name)


def two_class_card(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The card of the wrapped model: two output units, the head noted in ``output``."""
    card = copy.deepcopy(metadata or {})
    out = card.setdefault("output", {})
    out["units"] = 2
    return card
