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
class Architecture:
    """A registered architecture: its name, a one-line description and the builder of its feature body."""

    name: str
    description: str
    body: Callable[[Any, ArchKnobs], Any]


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
) -> Any:
    """Build an uncompiled ``keras.Model`` of architecture ``arch``.

    Args:
        arch: A key of :data:`ARCHITECTURES`.
        input_shape: (height, width, channels).
        num_classes: Number of labels.
        head: ``softmax`` (``num_classes`` units) or ``sigmoid`` (1 unit: probability of label 1).
        knobs: Architecture hyper-parameters.
    """
    import keras

    from edgecnn.config import suggest
    from edgecnn.errors import ConfigError

    if arch not in ARCHITECTURES:
        raise ConfigError(f"Unknown arch {arch!r}; expected one of {list(ARCHITECTURES)}.{suggest(arch, ARCHITECTURES)}")
    knobs = knobs or ArchKnobs()
    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = ARCHITECTURES[arch].body(x, knobs)
    units = 1 if head == "sigmoid" else num_classes
    outputs = keras.layers.Dense(units, activation=head, dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=arch)
