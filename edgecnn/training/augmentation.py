"""Training-time augmentation with the knobs of Keras' classic ``ImageDataGenerator``, the same on every backend.

Rotation, width/height shift, shear, zoom and flips are composed into ONE random affine matrix per image and
applied with one resampling (bilinear, ``nearest`` fill like ``ImageDataGenerator``'s default): faster and sharper
than chaining ``RandomRotation``/``RandomZoom``/… layers. It runs in numpy/OpenCV (``cv2.warpAffine``) inside the
input pipeline, so TensorFlow, JAX and PyTorch training see the same pixels for the same seed. It is never part
of the saved or exported model.

The matrices use the projective convention of ``keras.ops.image.affine_transform`` (and TensorFlow's
``ImageProjectiveTransformV3``): ``[a0, a1, a2, b0, b1, b2, 0, 0]`` maps an OUTPUT pixel ``(x, y)`` (column, row)
to the INPUT point ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``. ``tests/training/test_augmentation.py`` checks that
:func:`warp` matches ``keras.ops.image.affine_transform`` on every backend for the same matrices.

Pure numpy + OpenCV: importing this module imports no deep-learning framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AugmentSpec:
    """Augmentation ranges, with ``ImageDataGenerator`` meaning. The defaults live here (all off).

    Attributes:
        rotation: Max rotation in degrees (uniform in ±rotation).
        width_shift: Max horizontal shift as a fraction of the width.
        height_shift: Max vertical shift as a fraction of the height.
        shear: Max shear angle in degrees.
        zoom: Zoom range: scale factors uniform in [1 - zoom, 1 + zoom], independently per axis.
        hflip: Random horizontal flips.
        vflip: Random vertical flips.
    """

    rotation: float = 0.0
    width_shift: float = 0.0
    height_shift: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    hflip: bool = False
    vflip: bool = False

    @property
    def active(self) -> bool:
        return any((self.rotation, self.width_shift, self.height_shift, self.shear, self.zoom, self.hflip, self.vflip))

    @classmethod
    def from_config(cls, cfg: Any) -> AugmentSpec:
        return cls(**{k: getattr(cfg, k) for k in cls.__dataclass_fields__})

    def sample(self, n: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random transforms (float32 ``(n, 8)``, output pixel → input point) drawn from these ranges."""
        deg = math.pi / 180.0

        def uniform(limit: float) -> np.ndarray:
            return rng.uniform(-limit, limit, n) if limit else np.zeros(n)

        ones = np.ones(n)
        zx = 1.0 + uniform(self.zoom) if self.zoom else ones
        zy = 1.0 + uniform(self.zoom) if self.zoom else ones
        if self.hflip:
            zx = zx * np.where(rng.random(n) < 0.5, -1.0, 1.0)
        if self.vflip:
            zy = zy * np.where(rng.random(n) < 0.5, -1.0, 1.0)
        return compose(uniform(self.rotation * deg), uniform(self.width_shift) * width,
                       uniform(self.height_shift) * height, uniform(self.shear * deg), zx, zy, height, width)


def compose(theta: Any, tx: Any, ty: Any, shear: Any, zx: Any, zy: Any, height: int, width: int) -> np.ndarray:
    """Transforms ``(n, 8)`` for rotation ``theta`` and ``shear`` (radians), shifts ``tx``/``ty`` (pixels) and zooms
    ``zx``/``zy`` (a negative zoom flips) about the image centre: input = c + R(theta) Shear Zoom (output - c) + t."""
    theta, tx, ty, shear, zx, zy = (np.asarray(v, np.float64) for v in (theta, tx, ty, shear, zx, zy))
    cos, sin = np.cos(theta), np.sin(theta)
    a0 = cos * zx
    a1 = (-cos * np.sin(shear) - sin * np.cos(shear)) * zy
    b0 = sin * zx
    b1 = (-sin * np.sin(shear) + cos * np.cos(shear)) * zy
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = cx - a0 * cx - a1 * cy + tx
    b2 = cy - b0 * cx - b1 * cy + ty
    zeros = np.zeros_like(a0)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(np.float32)


def warp(images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Resample each NHWC image with its transform (bilinear, edge pixels repeated). Keeps dtype and shape."""
    import cv2

    out = np.empty_like(images)
    h, w = images.shape[1:3]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for i, t in enumerate(np.asarray(transforms, np.float64)):
        m = np.array([[t[0], t[1], t[2]], [t[3], t[4], t[5]]])
        out[i] = cv2.warpAffine(images[i], m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE).reshape(
            images.shape[1:])
    return out


def augment(images: np.ndarray, spec: AugmentSpec, rng: np.random.Generator) -> np.ndarray:
    """A randomly augmented copy of an NHWC batch (``images`` unchanged when ``spec`` enables nothing)."""
    if not spec.active or len(images) == 0:
        return images
    return warp(images, spec.sample(len(images), images.shape[1], images.shape[2], rng))
