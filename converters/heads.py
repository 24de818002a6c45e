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


def two_class(model: Any) -> Any:
    """A functional model around ``model`` whose output is ``[1 - p, p]`` (named ``probabilities``)."""
    import keras

    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name="image")
    p = model(inputs)
    one_minus_p = keras.layers.Rescaling(scale=-1.0, offset=1.0, name="one_minus_p")(p)
    outputs = keras.layers.Concatenate(name="probabilities")([one_minus_p, p])
    return keras.Model(inputs, outputs, name=model.name)


def two_class_card(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The card of the wrapped model: two output units, the head noted in ``output``."""
    card = copy.deepcopy(metadata or {})
    out = card.setdefault("output", {})
    out["units"] = 2
    return card
