"""OpenCV's ``INTER_AREA`` in numpy (:func:`resize_area`), pixel for pixel, for the sizes where OpenCV's own
integer-factor path does not apply: the resize of training and of every runtime without loading OpenCV."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def _area_general(src_h: int, src_w: int, height: int, width: int) -> bool:
    """True when OpenCV's INTER_AREA takes its general (non-integer scale) downscaling path."""
    if height > src_h or width > src_w:
        return False  # upscaling: OpenCV interpolates bilinearly
    return not (src_h % height == 0 and src_w % width == 0)  # integer scales take OpenCV's fast path


@lru_cache(maxsize=32)
def _area_table(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's ``computeResizeAreaTab`` as (source index, weight, valid) arrays of shape (dst, K), in its order."""
    scale = src / dst
    entries: list[list[tuple[int, float]]] = []
    for d in range(dst):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, src - f1)
        s1, s2 = math.ceil(f1), math.floor(f2)
        s2 = min(s2, src - 1)
        s1 = min(s1, s2)
        row = []
        if s1 - f1 > 1e-3:
            row.append((s1 - 1, (s1 - f1) / cell))
        row += [(i, 1.0 / cell) for i in range(s1, s2)]
        if f2 - s2 > 1e-3:
            row.append((s2, min(min(f2 - s2, 1.0), cell) / cell))
        entries.append(row)
    k = max(len(r) for r in entries)
    index = np.zeros((dst, k), np.intp)
    weight = np.zeros((dst, k), np.float32)  # OpenCV keeps the weights in float32
    valid = np.zeros((dst, k), bool)
    for d, row in enumerate(entries):
        for j, (i, w) in enumerate(row):
            index[d, j], weight[d, j], valid[d, j] = i, w, True
    return index, weight, valid


def resize_area(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV's ``INTER_AREA`` downscaling with a non-integer scale, in numpy, pixel for pixel.

    The same weights (float32), the same order of float32 additions (rows, then columns) and the same
    rounding (half to even) as OpenCV's ``resizeArea_``; a test compares it with ``cv2.resize`` on many
    sizes. :func:`preprocess` uses it for a single image when OpenCV is not loaded (importing OpenCV costs a
    cold start more time and memory than the model); otherwise, and for other cases, OpenCV resizes.
    """
    src = img.astype(np.float32)
    if src.ndim == 2:
        src = src[:, :, None]
    index, weight, valid = _area_table(src.shape[1], width)
    rows = np.zeros((src.shape[0], width, src.shape[2]), np.float32)
    for j in range(index.shape[1]):
        rows = np.where(valid[None, :, j, None], rows + src[:, index[:, j], :] * weight[None, :, j, None], rows)
    index, weight, valid = _area_table(src.shape[0], height)
    out = rows[index[:, 0]] * weight[:, 0, None, None]
    for j in range(1, index.shape[1]):
        out = np.where(valid[:, j, None, None], out + rows[index[:, j]] * weight[:, j, None, None], out)
    result = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return result if img.ndim == 3 else result[:, :, 0]


__all__ = ["resize_area"]
