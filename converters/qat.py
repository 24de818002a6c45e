"""Quantization-aware training (QAT) for Keras 3 CNNs, as the TFLite converter expects it.

tensorflow-model-optimization forces Keras 2, and Keras' own ``model.quantize("int8")`` skips convolutions and writes
no TFLite int8 kernels. This module rewrites a trained edgecnn model into its QAT twin, built on
``keras.quantizers.fake_quant_with_min_max_vars`` (on the TensorFlow backend it *is*
``tf.quantization.fake_quant_with_min_max_vars`` and its per-channel form, the ops the converter reads ranges from):

* **Folded batch norm.** Each BatchNormalization that follows a Conv2D, DepthwiseConv2D or Dense (its only consumer)
  is folded into that layer's kernel and bias, with its statistics frozen, as TFLite folds it at conversion. The
  fine-tune then sees exactly the weights the int8 kernels get.
* **Weights per channel.** Conv2D and DepthwiseConv2D kernels are fake-quantized per output channel, symmetric,
  narrow range (int8 -127..127, zero point 0), as TFLite's per-channel kernels store them; a Dense kernel per
  tensor (TF-MOT's choice, which every TFLite FULLY_CONNECTED kernel reads).
* **Activations per tensor.** A :class:`FakeQuant` follows every tensor that TFLite stores between ops: the input
  pixels (0..255: scale 1, so the uint8 input is the camera's bytes), the Rescaling, each layer's output after its
  fused ReLU/ReLU6, pooling means, additions and products, and the logits. Max-pooling, flattening, reshaping and
  dropout keep their input's scale, as TFLite's int8 kernels require, so they get none. The ranges start from a
  calibration pass over training images (post-training quantization's starting point) and follow an exponential
  moving average of each batch's range while fine-tuning.
* **The head.** Softmax and sigmoid outputs carry TFLite's fixed int8 output range (scale 1/256, zero point -128).
* **Activations TFLite does not fuse** are rebuilt as its int8 ops run them: a sigmoid (an SE gate inside a
  convolution, too) is LOGISTIC with that fixed range after the quantized pre-activation; swish (EfficientNet's) is
  LOGISTIC then MUL, each output quantized (TFLite has no int8 swish). A Normalization (EfficientNet's input) is a
  per-channel MUL, then ADD, like an offset Rescaling.

The QAT model is an ordinary ``.keras`` file (its layers registered as ``edgecnn>FakeQuant``...); its TFLite int8
export has no float layer in the body (:func:`converters.to_tflite.convert_qat`: no calibration, no repair).
"""

from __future__ import annotations

from typing import Any

#: Exponential moving average of the activation ranges while fine-tuning (TF-MOT's MovingAverageQuantizer: 0.999
#: over ImageNet epochs; edgecnn fine-tunes for a few hundred steps, so a faster average).
EMA_DECAY = 0.99
#: TFLite's int8 softmax/logistic output: scale 1/256, zero point -128, i.e. the range [0, 255/256].
PROBABILITY_RANGE = (0.0, 255.0 / 256.0)
#: The pixel range every edgecnn model takes (uint8 input: scale 1, zero point 0).
PIXEL_RANGE = (0.0, 255.0)

_classes: dict[str, Any] = {}


def _keras_classes() -> dict[str, Any]:
    """The QAT layer classes (made on first use: Keras is imported lazily), registered for ``.keras`` loading."""
    if _classes:
        return _classes
    import keras
    from keras import ops

    fake_quant = keras.quantizers.fake_quant_with_min_max_vars
    register = keras.saving.register_keras_serializable(package="edgecnn")

    @register
    class FakeQuant(keras.layers.Layer):
        """Per-tensor activation fake quantization (8 bits, asymmetric).

        ``fixed`` pins the range (the input pixels, a probability output); otherwise the range is calibrated
        (:func:`calibrate`) and then follows an exponential moving average of each training batch's range.
        """

        #: What :mod:`converters` looks for: a model holding such a layer is converted as a QAT model.
        fake_quantized = True

        def __init__(self, fixed: tuple[float, float] | list[float] | None = None, decay: float = EMA_DECAY,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.fixed = [float(v) for v in fixed] if fixed is not None else None
            self.decay = float(decay)
            self.calibrating = False

        def build(self, input_shape: Any) -> None:
            lo, hi = self.fixed or (0.0, 0.0)
            self.range_min = self.add_weight(name="range_min", shape=(), trainable=False,
                                             initializer=keras.initializers.Constant(lo))
            self.range_max = self.add_weight(name="range_max", shape=(), trainable=False,
                                             initializer=keras.initializers.Constant(hi))

        def call(self, x: Any, training: bool | None = None) -> Any:
            if self.fixed is not None:
                return fake_quant(x, self.fixed[0], self.fixed[1], num_bits=8, narrow_range=False)
            if self.calibrating:  # eager, before fine-tuning: the whole calibration set's range (PTQ's)
                self.range_min.assign(ops.minimum(self.range_min, ops.minimum(ops.min(x), 0.0)))
                self.range_max.assign(ops.maximum(self.range_max, ops.maximum(ops.max(x), 0.0)))
                return x
            if training:
                d = self.decay
                lo = d * self.range_min + (1.0 - d) * ops.minimum(ops.min(x), 0.0)
                hi = d * self.range_max + (1.0 - d) * ops.maximum(ops.max(x), 0.0)
                self.range_min.assign(lo)
                self.range_max.assign(hi)
            else:
                lo, hi = self.range_min, self.range_max
            return fake_quant(x, lo, hi, num_bits=8, narrow_range=False)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "fixed": self.fixed, "decay": self.decay}

    def symmetric(kernel: Any, axes: tuple[int, ...] | None, axis: int | None) -> Any:
        """Symmetric narrow-range int8 fake quantization of a kernel (per channel along ``axis``, or per tensor)."""
        m = ops.max(ops.abs(kernel), axis=axes) if axes is not None else ops.max(ops.abs(kernel))
        m = ops.maximum(m, 1e-8)
        return fake_quant(kernel, -m, m, num_bits=8, narrow_range=True, axis=axis)

    @register
    class QuantConv2D(keras.layers.Conv2D):
        """Conv2D whose kernel is fake-quantized per output channel."""

        def convolution_op(self, inputs: Any, kernel: Any) -> Any:
            return super().convolution_op(inputs, symmetric(kernel, (0, 1, 2), -1))

    @register
    class QuantDepthwiseConv2D(keras.layers.DepthwiseConv2D):
        """DepthwiseConv2D whose kernel is fake-quantized per channel (TFLite's depthwise channel: in × multiplier)."""

        def call(self, inputs: Any) -> Any:
            k = self.kernel
            h, w, c, mult = k.shape
            flat = ops.reshape(k, (h, w, c * mult))
            q = ops.reshape(symmetric(flat, (0, 1), -1), (h, w, c, mult))
            outputs = ops.depthwise_conv(inputs, q, strides=self.strides, padding=self.padding,
                                         dilation_rate=self.dilation_rate, data_format=self.data_format)
            if self.use_bias:
                outputs = ops.add(outputs, self.bias)
            return self.activation(outputs) if self.activation is not None else outputs

    @register
    class QuantDense(keras.layers.Dense):
        """Dense whose kernel is fake-quantized per tensor."""

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            x = ops.matmul(inputs, symmetric(self.kernel, None, None))
            if self.bias is not None:
                x = ops.add(x, self.bias)
            return self.activation(x) if self.activation is not None else x

    _classes.update(FakeQuant=FakeQuant, QuantConv2D=QuantConv2D, QuantDepthwiseConv2D=QuantDepthwiseConv2D,
                    QuantDense=QuantDense)
    return _classes


def register() -> None:
    """Register the QAT layers with Keras (call before loading a QAT ``.keras`` file)."""
    _keras_classes()


#: Layers whose int8 output keeps its input's scale in TFLite (no FakeQuant of their own).
_SAME_SCALE = ("MaxPooling2D", "MaxPooling1D", "Flatten", "Reshape", "Dropout", "SpatialDropout2D",
               "GaussianNoise", "Identity", "InputLayer", "_StaticFlatten", "StaticFlatten", "ZeroPadding2D",
               "Cropping2D")
#: Activations TFLite fuses into the op before it (one quantized tensor after both).
_FUSABLE = ("relu", "relu6")
#: Elementwise layers and ops (besides convolutions and dense) that TFLite gives a fused activation.
_FUSING_OPS = ("Add", "Subtract", "Multiply")


#: Activation layers the twin rebuilds as TFLite's int8 ops run them (see ``activation`` in :func:`quantize_model`).
_SPLIT = ("sigmoid", "swish", "silu")


def _named(activation: Any) -> str | None:
    """The name of a layer config's activation (a string, or Keras' serialized form), None when absent."""
    if isinstance(activation, dict):
        activation = activation.get("config", {}).get("name", activation.get("class_name"))
    return activation if isinstance(activation, str) or activation is None else getattr(activation, "__name__", None)


def _activation_name(layer: Any) -> str | None:
    import keras

    if isinstance(layer, keras.layers.ReLU):
        cfg = layer.get_config()
        if not cfg.get("negative_slope") and not cfg.get("threshold"):
            return "relu6" if cfg.get("max_value") == 6.0 else "relu" if cfg.get("max_value") is None else None
        return None
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", None)
    return None


def _consumers(model: Any) -> dict[int, list[Any]]:
    """``id(operation)`` → the layers and ops that take its output (within one functional model)."""
    out: dict[int, list[Any]] = {}
    for layer in model.operations:
        for node in getattr(layer, "_inbound_nodes", []):
            for t in node.input_tensors:
                producer = t._keras_history[0]  # noqa: SLF001
                out.setdefault(id(producer), []).append(layer)
    return out


def _is_input(tensor: Any) -> bool:
    history = getattr(tensor, "_keras_history", None)
    return history is not None and type(history[0]).__name__ == "InputLayer"


def fold_batch_norm(kernel: Any, bias: Any, bn: Any, channel_axis: int) -> tuple[Any, Any]:
    """Kernel and bias of a layer with the BatchNormalization after it folded in (inference statistics)."""
    import numpy as np

    gamma = np.asarray(bn.gamma.numpy() if bn.gamma is not None else 1.0, dtype=np.float64)
    beta = np.asarray(bn.beta.numpy() if bn.beta is not None else 0.0, dtype=np.float64)
    mean = np.asarray(bn.moving_mean.numpy(), dtype=np.float64)
    var = np.asarray(bn.moving_variance.numpy(), dtype=np.float64)
    scale = gamma / np.sqrt(var + bn.epsilon)
    shape = [1] * kernel.ndim
    shape[channel_axis] = -1
    k = kernel.astype(np.float64) * scale.reshape(shape)
    b = (bias.astype(np.float64) if bias is not None else 0.0) - mean
    b = b * scale + beta
    return k.astype(np.float32), np.asarray(b, dtype=np.float32)


def quantize_model(model: Any) -> Any:
    """The QAT twin of a trained functional ``model``: batch norm folded, weights and activations fake-quantized.

    Nested functional models (a backbone) are rewritten too. Its activation ranges are
    empty until :func:`calibrate` sets them (call it next).

    Raises:
        ConversionError: a layer QAT cannot quantize faithfully (named), or a model that is not functional.
    """
    import keras
    import numpy as np

    from converters.errors import ConversionError

    cls = _keras_classes()
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth") and not hasattr(model, "operations"):
        raise ConversionError("Expected a functional Keras model for quantization-aware training.")

    def rewrite(m: Any) -> Any:
        consumers = _consumers(m)
        folded: dict[int, Any] = {}  # id(conv) -> the BN folded into it
        skipped: set[int] = set()  # BN layers folded away
        for layer in m.layers:
            if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D | keras.layers.Dense):
                after = consumers.get(id(layer), [])
                if (len(after) == 1 and isinstance(after[0], keras.layers.BatchNormalization)
                        and layer.activation in (None, keras.activations.linear)):
                    folded[id(layer)] = after[0]
                    skipped.add(id(after[0]))
        # outputs TFLite fuses with the ReLU/ReLU6 that alone reads them (CONV_2D, DEPTHWISE_CONV_2D,
        # FULLY_CONNECTED, ADD, SUB, MUL carry a fused activation): one quantized tensor after both, no FakeQuant
        # between (a range before the ReLU would round twice where TFLite rounds once)
        fused: set[int] = set()
        for layer in m.operations:
            after = consumers.get(id(layer), [])
            if id(layer) in folded:
                after = consumers.get(id(folded[id(layer)]), [])
            fusing = (isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D | keras.layers.Dense)
                      or type(layer).__name__ in _FUSING_OPS)
            if fusing and len(after) == 1 and _activation_name(after[0]) in _FUSABLE:
                fused.add(id(layer))
        by_name = {layer.name: layer for layer in m.operations}
        pixels: dict[int, Any] = {}

        def clone(layer: Any) -> Any:
            if isinstance(layer, keras.Model):
                return rewrite(layer)
            if id(layer) in skipped:
                return keras.layers.Identity(name=layer.name)
            config = layer.get_config()
            kinds = ((keras.layers.DepthwiseConv2D, cls["QuantDepthwiseConv2D"]),
                     (keras.layers.Conv2D, cls["QuantConv2D"]),
                     (keras.layers.Dense, cls["QuantDense"]))
            for base, qcls in kinds:
                if isinstance(layer, base) and type(layer).__name__ in (base.__name__, qcls.__name__):
                    if isinstance(layer, keras.layers.Conv2D) and layer.groups != 1:
                        raise ConversionError(f"QAT cannot quantize grouped convolution {layer.name!r}.")
                    weights = layer.get_weights()
                    kernel, bias = weights[0], (weights[1] if len(weights) > 1 else None)
                    activation = config.get("activation")
                    head = isinstance(layer, keras.layers.Dense) and activation in ("softmax", "sigmoid")
                    if id(layer) in folded:
                        if isinstance(layer, keras.layers.DepthwiseConv2D):
                            h, w, c, mult = kernel.shape
                            k2, b2 = fold_batch_norm(kernel.reshape(h, w, c * mult), bias, folded[id(layer)], 2)
                            kernel, bias = k2.reshape(h, w, c, mult), b2
                        else:
                            kernel, bias = fold_batch_norm(kernel, bias, folded[id(layer)], kernel.ndim - 1)
                    if bias is None:
                        bias = np.zeros(kernel.shape[-1] if not isinstance(layer, keras.layers.DepthwiseConv2D)
                                        else kernel.shape[2] * kernel.shape[3], np.float32)
                    config["use_bias"] = True
                    for key in ("bias_regularizer", "kernel_constraint", "depthwise_constraint", "bias_constraint"):
                        if key in config:
                            config[key] = None
                    # an activation TFLite cannot fuse (sigmoid, swish: EfficientNet's) is its own op after the
                    # layer's quantized output, as the head's softmax is
                    split = head or _named(activation) not in (None, "linear", *_FUSABLE)
                    if split:
                        config["activation"] = "linear"
                    new = qcls.from_config(config)
                    new.build(layer.input.shape)
                    new.set_weights([kernel, bias])
                    new._qat_head = activation if head else None  # noqa: SLF001
                    new._qat_activation = _named(activation) if split and not head else None  # noqa: SLF001
                    return new
            if isinstance(layer, keras.layers.Normalization):  # (x - mean) / std: a per-channel MUL, then ADD
                mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float64).reshape(-1)
                std = np.maximum(np.sqrt(np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float64)
                                         .reshape(-1)), keras.config.epsilon())
                if layer.axis not in ((-1,), (len(layer.input.shape) - 1,)) or getattr(layer, "invert", False):
                    raise ConversionError(f"QAT cannot quantize Normalization {layer.name!r} over axis {layer.axis}.")
                new = keras.layers.Rescaling((1.0 / std).tolist(), name=layer.name)
                new._qat_offset = (-mean / std).tolist()  # noqa: SLF001
                return new
            if isinstance(layer, keras.layers.Rescaling) and config.get("offset"):
                offset = config["offset"]
                config["offset"] = 0.0
                new = layer.__class__.from_config(config)
                new._qat_offset = offset  # noqa: SLF001  (call() adds it as its own quantized op)
                return new
            if isinstance(layer, keras.layers.BatchNormalization):
                raise ConversionError(f"QAT cannot fold batch norm {layer.name!r}: it does not follow a convolution or "
                                 "dense layer whose only consumer it is.")
            return layer.__class__.from_config(config)

        def activation(name: str, x: Any, prefix: str) -> Any:
            """``name`` applied to the quantized ``x`` as TFLite's int8 ops run it: LOGISTIC with its fixed output
            range; swish as LOGISTIC then MUL (TFLite has no int8 swish), each output quantized."""
            if name == "sigmoid":
                out = keras.layers.Activation("sigmoid", name=f"{prefix}_sigmoid")(x)
                return cls["FakeQuant"](fixed=PROBABILITY_RANGE, name=f"{prefix}_fq")(out)
            if name in ("swish", "silu"):
                gate = keras.layers.Activation("sigmoid", name=f"{prefix}_sigmoid")(x)
                gate = cls["FakeQuant"](fixed=PROBABILITY_RANGE, name=f"{prefix}_sigmoid_fq")(gate)
                out = keras.layers.Multiply(name=f"{prefix}_mul")([x, gate])
                return cls["FakeQuant"](name=f"{prefix}_fq")(out)
            out = keras.layers.Activation(name, name=f"{prefix}_{name}")(x)
            return cls["FakeQuant"](name=f"{prefix}_fq")(out)

        def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(layer, keras.layers.Identity):  # a folded batch norm: gone
                return args[0]
            if m is model and args and _is_input(args[0]):  # the pixels: fixed 0..255 (uint8 input, scale 1)
                key = id(args[0])
                if key not in pixels:
                    pixels[key] = cls["FakeQuant"](fixed=PIXEL_RANGE, name=f"{m.name}_input_fq")(args[0])
                args = (pixels[key], *args[1:])
            if _activation_name(layer) in _SPLIT:
                return activation(_activation_name(layer), args[0], layer.name)
            out = layer(*args, **kwargs)
            if isinstance(layer, keras.Model):
                return out
            head = getattr(layer, "_qat_head", None)
            if head:  # logits, then the fixed-range probabilities of TFLite's int8 softmax/logistic
                out = cls["FakeQuant"](name=f"{layer.name}_logits_fq")(out)
                out = keras.layers.Activation(head, name=f"{layer.name}_{head}")(out)
                return cls["FakeQuant"](fixed=PROBABILITY_RANGE, name=f"{layer.name}_fq")(out)
            if isinstance(layer, keras.layers.Rescaling) and getattr(layer, "_qat_offset", None) is not None:
                # x * scale + offset is two TFLite ops (MUL, ADD): each output gets its range, both stay int8
                out = cls["FakeQuant"](name=f"{layer.name}_scaled_fq")(out)
                out = keras.layers.Rescaling(1.0, offset=layer._qat_offset, name=f"{layer.name}_offset")(out)  # noqa: SLF001
                return cls["FakeQuant"](name=f"{layer.name}_fq")(out)
            split = getattr(layer, "_qat_activation", None)
            if split:
                out = cls["FakeQuant"](name=f"{layer.name}_preact_fq")(out)
                return activation(split, out, layer.name)
            source = by_name.get(layer.name)
            if source is not None and id(source) in fused:
                return out
            if type(layer).__name__ in _SAME_SCALE:
                return out
            return cls["FakeQuant"](name=f"{layer.name}_fq")(out)

        return keras.models.clone_model(m, clone_function=clone, call_function=call)

    for layer in model.layers:
        if type(layer).__name__ == "Lambda":
            raise ConversionError(f"QAT cannot quantize Lambda layer {layer.name!r}.")
    return rewrite(model)


def fake_quants(model: Any) -> list[Any]:
    """Every :class:`FakeQuant` layer of ``model`` and its nested models."""
    out: list[Any] = []
    cls = _keras_classes()["FakeQuant"]
    for layer in model.layers:
        if isinstance(layer, cls):
            out.append(layer)
        elif hasattr(layer, "layers"):
            out.extend(fake_quants(layer))
    return out


def calibrate(model: Any, images: Any, batch_size: int = 32) -> int:
    """Set every calibrated FakeQuant's range to its range over ``images`` (float32 NHWC pixels), in eager mode,
    as post-training quantization calibrates. Returns the number of ranges set."""
    import numpy as np

    layers = [fq for fq in fake_quants(model) if fq.fixed is None]
    for fq in layers:
        fq.range_min.assign(0.0)
        fq.range_max.assign(0.0)
        fq.calibrating = True
    try:
        for start in range(0, len(images), batch_size):
            model(np.asarray(images[start:start + batch_size], np.float32), training=False)
    finally:
        for fq in layers:
            fq.calibrating = False
    return len(layers)


def onnx_qdq_weights(proto: Any) -> int:
    """Give the weights of a QAT model's ONNX graph their int8 form, in place; returns the layers rewritten.

    tf2onnx writes a QAT model's activation fake quantization as QuantizeLinear/DequantizeLinear pairs but folds its
    fake-quantized weights into float constants, so onnxruntime would run float convolutions between the pairs. The
    weights already lie on the int8 grid QAT trained them on (symmetric, zero point 0: per output channel for Conv,
    per tensor for MatMul/Gemm), so each is written back exactly as int8 with a DequantizeLinear: onnxruntime then
    fuses QLinearConv and QGemm, as for any QDQ model.

    Raises:
        ConversionError: a weight that is not on an int8 grid (not a QAT model's), named.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    from converters.errors import ConversionError

    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    added = []
    for node in graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or len(node.input) < 2 or node.input[1] not in inits:
            continue
        name = node.input[1]
        w = numpy_helper.to_array(inits[name]).astype(np.float64)
        per_channel = node.op_type == "Conv"
        peak = np.abs(w).reshape(w.shape[0], -1).max(1) if per_channel else np.array(np.abs(w).max())
        scale = np.maximum(peak, 1e-12) / 127.0
        shaped = scale.reshape([-1] + [1] * (w.ndim - 1)) if per_channel else scale
        q = np.clip(np.round(w / shaped), -127, 127)
        if np.abs(q * shaped - w).max() > 1e-4 * max(float(peak.max()), 1e-12):
            raise ConversionError(f"the weights of {node.name!r} are not on an int8 grid (not a quantization-aware "
                                  "model's)")
        graph.initializer.remove(inits[name])
        graph.initializer.extend([numpy_helper.from_array(q.astype(np.int8), f"{name}_int8"),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
                                  numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero")])
        added.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"], [name],
                                      name=f"{name}_dequantize", **({"axis": 0} if per_channel else {})))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(added + nodes)  # they read initializers only: first keeps the graph topologically sorted
    return len(added)


__all__ = ["EMA_DECAY", "PIXEL_RANGE", "PROBABILITY_RANGE", "calibrate", "fake_quants", "fold_batch_norm",
           "onnx_qdq_weights", "quantize_model", "register"]
