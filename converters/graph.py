"""Exact, converter-side graph simplifications applied before export.

Only rewrites that leave every output bit-for-bit equivalent in real arithmetic are made here (the float
result changes only by rounding order), so parity gates keep their meaning.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fold_input_rescaling(model: Any) -> tuple[Any, str | None]:
    """Fold a leading ``Rescaling(scale, offset=0)`` into the convolution it feeds.

    ``conv(x * s) == conv'(x)`` with ``kernel' = kernel * s``, for any padding because zero padding stays zero
    when the offset is 0. tf2onnx otherwise writes a float ``Mul`` before the first ``Conv``; in an int8 ONNX
    model that ``Mul`` costs a DequantizeLinear → Mul → QuantizeLinear round trip per inference, which is
    pure overhead (TFLite's converter already folds it itself).

    Returns:
        (model, folded layer name) — the model unchanged and None when the pattern is absent
        (no Rescaling first, a non-zero offset, a per-channel scale, or the rescaled tensor feeding anything
        other than a single Conv2D/DepthwiseConv2D).
    """
    import keras

    layers = getattr(model, "layers", [])
    if len(model.inputs) != 1 or not layers:
        return model, None
    resc = next((ly for ly in layers if isinstance(ly, keras.layers.Rescaling)), None)
    if resc is None or not _single_input_from(resc, model.inputs[0]):
        return model, None
    scale, offset = np.asarray(resc.scale, dtype=np.float64), np.asarray(resc.offset, dtype=np.float64)
    if scale.size != 1 or np.any(offset != 0):
        return model, None
    consumers = [ly for ly in layers if ly is not resc and _consumes(ly, resc.output)]
    if len(consumers) != 1 or type(consumers[0]) not in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D):
        return model, None
    conv_name = consumers[0].name

    def clone_fn(layer: Any) -> Any:
        if layer is resc:
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=clone_fn)
    clone.set_weights(model.get_weights())
    conv = clone.get_layer(conv_name)
    weights = conv.get_weights()
    weights[0] = (weights[0].astype(np.float64) * float(scale)).astype(weights[0].dtype)
    conv.set_weights(weights)
    return clone, conv_name


def _single_input_from(layer: Any, tensor: Any) -> bool:
    try:
        return layer.input is tensor
    except (AttributeError, ValueError):
        return False


def _consumes(layer: Any, tensor: Any) -> bool:
    try:
        inp = layer.input
    except (AttributeError, ValueError):
        return False
    items = inp if isinstance(inp, (list, tuple)) else [inp]
    return any(t is tensor for t in items)


def stable_node_names(proto: Any) -> Any:
    """Strip tf2onnx's process-wide counters (``MatMul_Gemm__30``) from node names, in place.

    tf2onnx numbers generated nodes with a counter that keeps growing within a process, so converting the same
    model twice names its nodes differently; names kept in float by an int8 repair must survive a re-conversion.
    Clashes get ``_2``, ``_3`` in graph order, which is deterministic.
    """
    import re

    seen: dict[str, int] = {}
    for node in proto.graph.node:
        base = re.sub(r"__\d+$", "", node.name) or node.op_type
        seen[base] = seen.get(base, 0) + 1
        node.name = base if seen[base] == 1 else f"{base}_{seen[base]}"
    return proto
