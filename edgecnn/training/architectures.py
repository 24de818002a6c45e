"""The architecture registry: one table drives ``--arch`` choices, validation and docs.

Every model takes float32 NHWC pixels in 0..255 on an input named ``image``; its first layer is
``Rescaling(1/255)`` so rescaling travels with the model. Only built-in layers are used (no Lambda),
so every model converts cleanly to TFLite and, through tf2onnx, to ONNX.

Importing this module does not import Keras; builders import it when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArchKnobs:
    """Architecture hyper-parameters (``--filters``, ``--kernel-size``, ...). Each builder documents its use."""

    # The defaults live here; ``TrainConfig`` (and so ``--help``) refers to them.
    filters: int = 32
    kernel_size: int = 3
    strides: int = 1
    pool_size: int = 2
    dropout: float = 0.25
    l2: float = 0.0
    dense_units: int = 128
    depth: int = 3

    @classmethod
    def from_config(cls, cfg: Any) -> ArchKnobs:
        return cls(**{k: getattr(cfg, k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Backbone:
    """A Keras Applications network used as a feature extractor (``include_top=False``, average pooling).

    Attributes:
        application: Its constructor in ``keras.applications``.
        cache_file: Keras' cache file of its ImageNet weights without the top (``{rows}``: the input size
            the weights were trained at, for the families that have several).
        url: Where Keras downloads that file from (named in the message when it is missing).
        scale: ``(scale, offset)`` of the Rescaling in front of it (0..255 in), None when the network
            rescales itself (EfficientNet's own Rescaling + Normalization).
        block: Regular expression whose first group names the block of a layer (fine-tuning unfreezes the
            top N blocks).
        kwargs: Extra constructor arguments.
        sizes: Input sizes that have their own ImageNet weights file (``{rows}``); others use the last.
    """

    application: str
    cache_file: str
    url: str
    scale: tuple[float, float] | None
    block: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    sizes: tuple[int, ...] = ()

    def weights_file(self, size: int) -> str:
        rows = size if size in self.sizes else (self.sizes[-1] if self.sizes else size)
        return self.cache_file.format(rows=rows)


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its name, a one-line description and the builder of its feature body
    (or, for a pretrained network, its :class:`Backbone`)."""

    name: str
    description: str
    body: Callable[[Any, ArchKnobs], Any] | None
    backbone: Backbone | None = None


ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, description: str) -> Callable[[Callable[[Any, ArchKnobs], Any]], Callable[[Any, ArchKnobs], Any]]:
    """Decorator adding a body builder ``fn(x, knobs) -> features`` to :data:`ARCHITECTURES`."""

    def deco(fn: Callable[[Any, ArchKnobs], Any]) -> Callable[[Any, ArchKnobs], Any]:
        ARCHITECTURES[name] = Architecture(name, description, fn)
        return fn

    return deco


def _reg(knobs: ArchKnobs) -> Any:
    import keras

    return keras.regularizers.L2(knobs.l2) if knobs.l2 > 0 else None


def _dense_head(layers: Any, x: Any, k: ArchKnobs, dense: bool = True) -> Any:
    """Optional Dense(units, relu) then optional Dropout: the tail shared by simple, blocks and dsconv."""
    if dense and k.dense_units:
        x = layers.Dense(k.dense_units, activation="relu", kernel_regularizer=_reg(k), name="dense")(x)
    if k.dropout:
        x = layers.Dropout(k.dropout, name="dropout")(x)
    return x


def _pool(layers: Any, x: Any, knobs: ArchKnobs, name: str) -> Any:
    """Max-pool unless the feature map is already smaller than the pool."""
    if min(x.shape[1], x.shape[2]) >= knobs.pool_size:
        x = layers.MaxPooling2D(knobs.pool_size, name=name)(x)
    return x


@register("simple", "Conv(f)-Pool-Conv(2f)-Pool-Dense(units)-Dropout-out: the classic Keras MNIST CNN.")
def _simple(x: Any, k: ArchKnobs) -> Any:
    from keras import layers

    x = layers.Conv2D(k.filters, k.kernel_size, strides=k.strides, padding="same", activation="relu",
                      kernel_regularizer=_reg(k), name="conv1")(x)
    x = _pool(layers, x, k, "pool1")
    x = layers.Conv2D(k.filters * 2, k.kernel_size, padding="same", activation="relu",
                      kernel_regularizer=_reg(k), name="conv2")(x)
    x = _pool(layers, x, k, "pool2")
    x = layers.Flatten(name="flatten")(x)
    return _dense_head(layers, x, k)


@register("lenet", "Two conv blocks (Conv-BN-ReLU ×2, MaxPool, Dropout, L2; block 2 has 2f+4 filters), "
                   "two Dense-BN-ReLU-Dropout layers.")
def _lenet(x: Any, k: ArchKnobs) -> Any:
    from keras import layers

    for block, filters in ((1, k.filters), (2, k.filters * 2 + 4)):
        for j in (1, 2):
            x = layers.Conv2D(filters, k.kernel_size, strides=k.strides if j == 1 and block == 1 else 1,
                              padding="same", use_bias=False, kernel_regularizer=_reg(k), name=f"conv{block}_{j}")(x)
            x = layers.BatchNormalization(name=f"bn{block}_{j}")(x)
            x = layers.ReLU(name=f"relu{block}_{j}")(x)
        x = _pool(layers, x, k, f"pool{block}")
        if k.dropout:
            x = layers.Dropout(k.dropout, name=f"dropout{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    units = k.dense_units or 64
    for j, n in ((1, units * 2), (2, units)):
        x = layers.Dense(n, use_bias=False, kernel_regularizer=_reg(k), name=f"dense{j}")(x)
        x = layers.BatchNormalization(name=f"dense{j}_bn")(x)
        x = layers.ReLU(name=f"dense{j}_relu")(x)
        if k.dropout:
            x = layers.Dropout(k.dropout, name=f"dense{j}_dropout")(x)
    return x


@register("blocks", "depth × (Conv-BN-ReLU-MaxPool), filters doubling per block (capped at 8f), "
                    "global average pooling, optional Dense.")
def _blocks(x: Any, k: ArchKnobs) -> Any:
    from keras import layers

    for i in range(k.depth):
        filters = k.filters * min(2**i, 8)
        x = layers.Conv2D(filters, k.kernel_size, strides=k.strides if i == 0 else 1, padding="same",
                          use_bias=False, kernel_regularizer=_reg(k), name=f"block{i + 1}_conv")(x)
        x = layers.BatchNormalization(name=f"block{i + 1}_bn")(x)
        x = layers.ReLU(name=f"block{i + 1}_relu")(x)
        x = _pool(layers, x, k, f"block{i + 1}_pool")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return _dense_head(layers, x, k)


@register("dsconv", "MobileNet-style: strided Conv stem, depth × (DepthwiseConv-BN-ReLU6, 1×1 Conv-BN-ReLU6), "
                    "stride 2 on each block, global average pooling. Small and fast on edge boxes.")
def _dsconv(x: Any, k: ArchKnobs) -> Any:
    from keras import layers

    x = layers.Conv2D(k.filters, k.kernel_size, strides=2 if min(x.shape[1], x.shape[2]) >= 16 else 1,
                      padding="same", use_bias=False, kernel_regularizer=_reg(k), name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for i in range(k.depth):
        stride = 2 if min(x.shape[1], x.shape[2]) >= 4 else 1
        filters = k.filters * min(2 ** (i + 1), 16)
        x = layers.DepthwiseConv2D(k.kernel_size, strides=stride, padding="same", use_bias=False,
                                   name=f"ds{i + 1}_dw")(x)
        x = layers.BatchNormalization(name=f"ds{i + 1}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"ds{i + 1}_dw_relu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, kernel_regularizer=_reg(k), name=f"ds{i + 1}_pw")(x)
        x = layers.BatchNormalization(name=f"ds{i + 1}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"ds{i + 1}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return _dense_head(layers, x, k, dense=False)


_V3 = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
#: Keras Applications that suit an edge box, as registry rows (ImageNet weights: ``--weights imagenet``).
#: EfficientNet-Lite is not in Keras Applications (its TF-Hub/TF1 checkpoints need a port): not registered.
BACKBONES: dict[str, tuple[str, Backbone]] = {
    "mobilenet-v3-small": ("MobileNetV3 Small (Keras Applications, 0.9 M parameters without the top; hard-swish, SE).",
                           Backbone("MobileNetV3Small", "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", _V3,
                                    (1 / 127.5, -1.0), r"^(expanded_conv(?:_\d+)?)_",
                                    (("include_preprocessing", False),))),
    "mobilenet-v3-large": ("MobileNetV3 Large (Keras Applications, 3.0 M parameters without the top).",
                           Backbone("MobileNetV3Large", "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", _V3,
                                    (1 / 127.5, -1.0), r"^(expanded_conv(?:_\d+)?)_",
                                    (("include_preprocessing", False),))),
    "mobilenet-v2": ("MobileNetV2 (Keras Applications, alpha 1.0, 2.3 M parameters without the top).",
                     Backbone("MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
                              "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
                              (1 / 127.5, -1.0), r"^(block_\d+)_", sizes=(96, 128, 160, 192, 224))),
    "efficientnet-b0": ("EfficientNet-B0 (Keras Applications, 4.0 M parameters without the top; rescales and "
                        "normalises inside).",
                        Backbone("EfficientNetB0", "efficientnetb0_notop.h5", "https://storage.googleapis.com/keras-applications/",
                                 None, r"^(block\d+[a-z])_")),
}


for _name, (_desc, _spec) in BACKBONES.items():
    ARCHITECTURES[_name] = Architecture(_name, _desc, None, _spec)

#: Name of the nested Keras Applications model inside an edgecnn model.
BACKBONE_LAYER = "backbone"
#: Batch-norm momentum of a backbone trained from scratch (no ``--weights``): see :func:`build_backbone`.
SCRATCH_BN_MOMENTUM = 0.9
#: Epochs a backbone trained from scratch gets before early stopping counts: its validation loss stays at chance
#: while the batch-norm statistics settle (a MobileNetV2 on 180 images: 33 % until epoch 9, 92 % at epoch 10), and
#: ``--patience 5`` stopped it at epoch 6 with the epoch-1 weights.
SCRATCH_WARMUP_EPOCHS = 10


def build_backbone(spec: Backbone, input_shape: tuple[int, int, int], weights: str | None = None) -> Any:
    """The Keras Applications model without its top, global-average pooled, named :data:`BACKBONE_LAYER`.

    Args:
        weights: None (random initialisation) or the path of a weights file Keras loads (Keras' own cache file
            or the user's); never ``"imagenet"``: nothing is downloaded.
    """
    import keras

    from edgecnn.errors import ConfigError

    if input_shape[2] != 3:
        raise ConfigError(f"Expected --channels 3 for a pretrained backbone ({spec.application} takes RGB); "
                          f"received {input_shape[2]}. Use --arch simple/blocks/dsconv for grayscale.")
    if min(input_shape[:2]) < 32:
        raise ConfigError(f"Expected --img-size at least 32 for {spec.application}; received "
                          f"{input_shape[0]}x{input_shape[1]}.")
    ctor = getattr(keras.applications, spec.application)
    base = ctor(include_top=False, weights=weights, input_shape=input_shape, pooling="avg", **dict(spec.kwargs))
    base.name = BACKBONE_LAYER
    if weights is None:
        # trained from scratch: Keras Applications' batch norm averages with momentum 0.999 (MobileNetV3), made
        # for ImageNet's millions of steps; a few hundred steps leave the inference statistics mostly at their
        # initial values, and a MobileNetV3-Small at 100 % training accuracy answered one class for every
        # validation image. 0.9 follows a small set's statistics within its first epochs.
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    return base


def backbone_blocks(base: Any, spec: Backbone) -> list[str]:
    """Block names of ``base`` in order (the layers after the last block form its own top, kept with it)."""
    import re

    seen: list[str] = []
    for layer in base.layers:
        m = re.match(spec.block, layer.name)
        if m and m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def set_trainable(model: Any, spec: Backbone, unfreeze_blocks: int | None) -> int:
    """Freeze the backbone (``unfreeze_blocks`` None or 0) or unfreeze its top N blocks and the layers after them;
    BatchNormalization stays frozen (inference statistics), as Keras' fine-tuning guide does. Returns the number of
    trainable backbone layers."""
    import re

    import keras

    base = model.get_layer(BACKBONE_LAYER)
    if not unfreeze_blocks:
        base.trainable = False
        return 0
    blocks = backbone_blocks(base, spec)
    top = set(blocks[-unfreeze_blocks:])
    base.trainable = True
    started = False
    count = 0
    for layer in base.layers:
        m = re.match(spec.block, layer.name)
        if m and m.group(1) in top:
            started = True
        on = started and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = on
        count += on and bool(layer.weights)
    return count


def resolve_head(head: str, num_classes: int) -> str:
    """``auto`` → ``sigmoid`` for two classes, ``softmax`` otherwise; ``sigmoid`` needs exactly two classes."""
    from edgecnn.errors import ConfigError

    if head == "auto":
        return "sigmoid" if num_classes == 2 else "softmax"
    if head == "sigmoid" and num_classes != 2:
        raise ConfigError(f"A sigmoid head needs exactly 2 classes; received {num_classes}. Use --head softmax.")
    return head


def build_model(
    arch: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    head: str = "softmax",
    knobs: ArchKnobs | None = None,
    backbone_weights: str | None = None,
) -> Any:
    """Build an uncompiled ``keras.Model`` of architecture ``arch``.

    Args:
        arch: A key of :data:`ARCHITECTURES`.
        input_shape: (height, width, channels).
        num_classes: Number of labels.
        head: ``softmax`` (``num_classes`` units) or ``sigmoid`` (1 unit: probability of label 1).
        knobs: Architecture hyper-parameters (a backbone uses ``dropout`` only).
        backbone_weights: A backbone's weights file (see :func:`build_backbone`).
    """
    import keras

    from edgecnn.config import suggest
    from edgecnn.errors import ConfigError

    if arch not in ARCHITECTURES:
        raise ConfigError(f"Unknown arch {arch!r}; expected one of {list(ARCHITECTURES)}.{suggest(arch, ARCHITECTURES)}")
    knobs = knobs or ArchKnobs()
    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    spec = ARCHITECTURES[arch].backbone
    if spec is not None:
        x = inputs
        if spec.scale is not None:
            x = keras.layers.Rescaling(spec.scale[0], offset=spec.scale[1], name="rescale")(x)
        x = build_backbone(spec, input_shape, backbone_weights)(x)
        if knobs.dropout:
            x = keras.layers.Dropout(knobs.dropout, name="dropout")(x)
    else:
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        x = ARCHITECTURES[arch].body(x, knobs)  # type: ignore[misc]
    units = 1 if head == "sigmoid" else num_classes
    outputs = keras.layers.Dense(units, activation=head, dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=arch)
