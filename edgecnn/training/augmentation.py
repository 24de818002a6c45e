"""Training-time augmentation with the knobs of Keras' classic ``ImageDataGenerator``.

Rotation, width/height shift, shear, zoom and flips are composed into ONE random affine matrix per image
and applied with a single ``ImageProjectiveTransformV3`` op on the whole batch (bilinear sampling,
``nearest`` fill like ``ImageDataGenerator``'s default). One resampling instead of one per layer is
both faster and sharper than chaining ``RandomRotation``/``RandomZoom``/… layers.

It runs inside the training ``tf.data`` map only; it is never part of the saved or exported model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecnn.training.config import TrainConfig


@dataclass(frozen=True)
class AugmentSpec:
    """Augmentation ranges, with ``ImageDataGenerator`` meaning.

    Attributes:
        rotation: Max rotation in degrees (uniform in ±rotation).
        width_shift: Max horizontal shift as a fraction of the width.
        height_shift: Max vertical shift as a fraction of the height.
        shear: Max shear angle in degrees.
        zoom: Zoom range: scale factors uniform in [1 - zoom, 1 + zoom], independently per axis.
        hflip: Random horizontal flips.
        vflip: Random vertical flips.
    """

    rotation: float = TrainConfig.rotation  # defaults live in TrainConfig only
    width_shift: float = TrainConfig.width_shift
    height_shift: float = TrainConfig.height_shift
    shear: float = TrainConfig.shear
    zoom: float = TrainConfig.zoom
    hflip: bool = TrainConfig.hflip
    vflip: bool = TrainConfig.vflip

    @property
    def active(self) -> bool:
        return any((self.rotation, self.width_shift, self.height_shift, self.shear, self.zoom, self.hflip, self.vflip))

    @classmethod
    def from_config(cls, cfg: Any) -> AugmentSpec:
        return cls(**{k: getattr(cfg, k) for k in cls.__dataclass_fields__})


def make_augmenter(spec: AugmentSpec) -> Callable[[Any], Any] | None:
    """A function ``float32 NHWC batch -> augmented batch`` (TensorFlow ops), or None when nothing is enabled.

    Randomness follows TensorFlow's global seed (``keras.utils.set_random_seed``).
    """
    if not spec.active:
        return None
    import tensorflow as tf

    deg = math.pi / 180.0

    def uniform(n: Any, limit: float) -> Any:
        return tf.random.uniform((n,), -limit, limit, dtype=tf.float32)

    def augment(images: Any) -> Any:
        shape = tf.shape(images)
        n = shape[0]
        h = tf.cast(shape[1], tf.float32)
        w = tf.cast(shape[2], tf.float32)
        zeros = tf.zeros((n,), tf.float32)
        ones = tf.ones((n,), tf.float32)
        theta = uniform(n, spec.rotation * deg) if spec.rotation else zeros
        shear = uniform(n, spec.shear * deg) if spec.shear else zeros
        zx = 1.0 + uniform(n, spec.zoom) if spec.zoom else ones
        zy = 1.0 + uniform(n, spec.zoom) if spec.zoom else ones
        if spec.hflip:
            zx = zx * tf.where(tf.random.uniform((n,)) < 0.5, -1.0, 1.0)
        if spec.vflip:
            zy = zy * tf.where(tf.random.uniform((n,)) < 0.5, -1.0, 1.0)
        tx = uniform(n, spec.width_shift) * w if spec.width_shift else zeros
        ty = uniform(n, spec.height_shift) * h if spec.height_shift else zeros
        # Output pixel p maps to input pixel c + R(theta) @ Shear(s) @ Zoom @ (p - c) + t.
        cos, sin = tf.cos(theta), tf.sin(theta)
        a0 = cos * zx
        a1 = (-cos * tf.sin(shear) - sin * tf.cos(shear)) * zy
        b0 = sin * zx
        b1 = (-sin * tf.sin(shear) + cos * tf.cos(shear)) * zy
        cx = (w - 1.0) / 2.0
        cy = (h - 1.0) / 2.0
        a2 = cx - a0 * cx - a1 * cy + tx
        b2 = cy - b0 * cx - b1 * cy + ty
        transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=shape[1:3],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="NEAREST",
        )
        return tf.clip_by_value(out, 0.0, 255.0)

    return augment
