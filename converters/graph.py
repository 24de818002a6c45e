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


def onnx_float_stem(proto: Any, max_channels: int = 4) -> list[str]:
    """Make an ONNX stem ``Conv → Relu → MaxPool`` over ≤ ``max_channels`` input channels into ``Conv → MaxPool →
    Relu``, in place, and return its three node names (for int8 to keep in float); [] when there is no such stem.

    Exact: ReLU is monotonic, so the max of ReLUs is the ReLU of the max. It is what lets onnxruntime run the stem
    in float: with the quantization after the MaxPool, its QDQ propagation moves the QuantizeLinear above the
    MaxPool (a uint8 NCHW MaxPool, ~25× slower); after the Relu, which it does not cross, the pooled tensor is
    quantized where it is 4× smaller and every later layer runs on MLAS's int8 kernels.
    """
    graph = proto.graph
    nodes = list(graph.node)
    consumers: dict[str, list[Any]] = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    producers = {out: n for n in nodes for out in n.output}
    conv = next((n for n in nodes if n.op_type == "Conv"), None)
    if conv is None or not graph.input:
        return []
    source = producers.get(conv.input[0])  # the pixels, or the NHWC -> NCHW Transpose of them
    if conv.input[0] != graph.input[0].name and not (
            source is not None and source.op_type == "Transpose" and source.input[0] == graph.input[0].name):
        return []
    weights = next((t for t in graph.initializer if t.name == conv.input[1]), None)
    if weights is None or len(weights.dims) != 4 or weights.dims[1] > max_channels:
        return []
    after_conv = consumers.get(conv.output[0], [])
    if len(after_conv) != 1 or after_conv[0].op_type != "Relu":
        return []
    relu = after_conv[0]
    after_relu = consumers.get(relu.output[0], [])
    outputs = {o.name for o in graph.output}
    if len(after_relu) != 1 or after_relu[0].op_type != "MaxPool" or len(after_relu[0].output) != 1 or \
            {conv.output[0], relu.output[0]} & outputs:
        return []
    pool = after_relu[0]
    middle, pooled = relu.output[0], pool.output[0]
    pool.input[0], pool.output[0] = conv.output[0], middle
    relu.input[0], relu.output[0] = middle, pooled
    i, j = nodes.index(relu), nodes.index(pool)
    nodes[i], nodes[j] = pool, relu
    del graph.node[:]
    graph.node.extend(nodes)
    stale = [v for v in graph.value_info if v.name == middle]  # its shape is now the pooled one: infer it again
    for v in stale:
        graph.value_info.remove(v)
    return [conv.name, pool.name, relu.name]


def fake_quantized(model: Any) -> bool:
    """Whether ``model`` (or a model nested in it) holds quantization-aware training's fake quantization: a layer
    whose class says ``fake_quantized = True`` (edgecnn's ``FakeQuant``). Such a model carries its own int8 ranges."""
    for layer in getattr(model, "layers", []):
        if getattr(layer, "fake_quantized", False) or fake_quantized(layer):
            return True
    return False


def static_flatten(model: Any) -> Any:
    """``model`` with every ``Flatten`` replaced by a reshape to ``(-1, units)`` (the batch stays dynamic).

    Keras' ``Flatten`` (and ``Reshape``) computes the batch dimension at run time, which TFLite writes as
    ``SHAPE → STRIDED_SLICE → PACK → RESHAPE``; OpenCV DNN's TFLite importer (4.x and 5.x) has no ``SHAPE`` op and
    refuses such a file ("Unsupported operator type SHAPE"). A reshape to a constant ``[-1, units]`` is one
    ``RESHAPE`` that every runtime reads, computes the same values, and keeps the dynamic batch. The other layers
    are reused as they are (same weights); nested models are rewritten too. Returns ``model`` itself when it has
    no Flatten with a fully known input shape.
    """
    import keras

    def flattens(m: Any) -> bool:
        return any(isinstance(ly, keras.layers.Flatten) or (isinstance(ly, keras.Model) and flattens(ly))
                   for ly in getattr(m, "layers", []))

    if not flattens(model):
        return model

    def clone(layer: Any) -> Any:
        if isinstance(layer, keras.layers.Flatten):
            dims = tuple(layer.input.shape[1:])
            if all(isinstance(d, int) for d in dims):
                return _static_flatten_layer()(int(np.prod(dims)), name=layer.name)
            return layer
        if isinstance(layer, keras.Model):
            return static_flatten(layer)
        return layer

    return keras.models.clone_model(model, clone_function=clone)


_STATIC_FLATTEN: Any = None


def _static_flatten_layer() -> Any:
    """The layer class (made on first use: Keras is imported lazily)."""
    global _STATIC_FLATTEN
    if _STATIC_FLATTEN is None:
        import keras

        class StaticFlatten(keras.layers.Layer):
            """Flatten to ``(-1, units)`` with a constant shape (no run-time SHAPE op)."""

            def __init__(self, units: int, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.units = units

            def call(self, x: Any) -> Any:
                return keras.ops.reshape(x, (-1, self.units))

            def compute_output_shape(self, input_shape: Any) -> Any:
                return (input_shape[0], self.units)

            def get_config(self) -> dict[str, Any]:
                return {**super().get_config(), "units": self.units}

        _STATIC_FLATTEN = StaticFlatten
    return _STATIC_FLATTEN
