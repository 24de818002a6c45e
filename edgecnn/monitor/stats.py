"""Cheap per-image statistics shared by the train-time reference and the run-time monitors, and the drift test.

Every figure is computed on the *analysis view* of what the model sees: the image preprocessed to the model's
input size (:func:`edgecnn.imaging.preprocess`, the one resize), then strided down to at most
:data:`ANALYSIS_SIDE` pixels a side. Training computes the reference on its validation split this way and the
station computes its rolling figures the same way, so the two are comparable and a frame costs a few tens of
microseconds whatever the camera's resolution.

The drift test is the Population Stability Index on binned histograms,
``PSI = sum((p_i - q_i) * ln(p_i / q_i))`` (the symmetric Kullback-Leibler divergence of the two binned
distributions). Why PSI rather than Kolmogorov-Smirnov:

* PSI needs only the reference's bin fractions (16 numbers per channel), which fit in the model card; KS needs
  the reference sample itself (or its CDF at every value).
* KS's p-value is meaningless here: a window holds hundreds of thousands of pixels, so any shift, however
  harmless, is "significant". PSI is an effect size with conventional readings (< 0.1 stable, 0.1-0.25 moderate,
  > 0.25 significant), which give the alarm's default thresholds.
* KS's statistic is the largest CDF gap, most sensitive near the median and blind to mass moving between the
  tails (a saturating highlight, a darkening background); PSI weighs every bin, so it sees both.
* The same test applies unchanged to pixel intensities, top-1 scores and prediction entropies, and it is
  O(bins) per window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Largest side of the analysis view (the model input, strided down).
ANALYSIS_SIDE = 64
#: Intensity histogram bins per channel over 0..255.
PIXEL_BINS = 16
#: Bins of the top-1 score (0..1) and of the normalised prediction entropy (0..1).
PRED_BINS = 10
#: Pixel values at or above this count as saturated (below 255: JPEG ringing pulls clipped pixels down), at or below :data:`DARK_VALUE` as black.
SATURATED_VALUE = 240
DARK_VALUE = 5
#: Floor of a bin's fraction in PSI (an empty bin would make the logarithm infinite).
PSI_EPS = 1e-4
REFERENCE_VERSION = 1


def analysis_view(img: np.ndarray) -> np.ndarray:
    """``img`` (HxWxC uint8 at model size) strided down to at most :data:`ANALYSIS_SIDE` a side."""
    step = max(1, math.ceil(max(img.shape[0], img.shape[1]) / ANALYSIS_SIDE))
    return img[::step, ::step] if step > 1 else img


def gray(view: np.ndarray) -> np.ndarray:
    """Luma (BT.601) of an HxWxC view as float32 HxW."""
    v = view.astype(np.float32)
    if v.ndim == 2:
        return v
    if v.shape[2] == 1:
        return v[:, :, 0]
    return 0.299 * v[:, :, 0] + 0.587 * v[:, :, 1] + 0.114 * v[:, :, 2]


def laplacian_var(g: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a float image (the classic focus measure)."""
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


@dataclass
class ImageStats:
    """The figures of one analysis view.

    Attributes:
        hist: Per-channel intensity counts, ``channels x PIXEL_BINS`` (int64).
        brightness: Mean luma 0..255.
        dark: Fraction of pixels whose every channel is <= :data:`DARK_VALUE`.
        saturated: Fraction of pixels with a channel >= :data:`SATURATED_VALUE`.
        sharpness: Variance of the Laplacian of the luma.
        contrast: Variance of the luma. ``sharpness / contrast`` is a focus measure that a dimmer light does
            not change (both scale with the square of the gain), used by the blur check.
        thumb: 16x16 luma thumbnail (float32) for the frozen-camera check.
    """

    hist: np.ndarray
    brightness: float
    dark: float
    saturated: float
    sharpness: float
    contrast: float
    thumb: np.ndarray

    @property
    def focus(self) -> float:
        return self.sharpness / (self.contrast + 1.0)


def image_stats(img: np.ndarray) -> ImageStats:
    """Statistics of a model-sized uint8 image (HxWxC, C = 1 or 3)."""
    view = analysis_view(img if img.ndim == 3 else img[:, :, None])
    c = view.shape[2]
    bins = (view >> 4).reshape(-1, c).astype(np.int64)  # 256 / PIXEL_BINS = 16 values a bin
    offsets = np.arange(c, dtype=np.int64) * PIXEL_BINS
    hist = np.bincount((bins + offsets).ravel(), minlength=c * PIXEL_BINS).reshape(c, PIXEL_BINS)
    g = gray(view)
    top = view.max(axis=2).ravel() if c > 1 else view.ravel()
    th = max(1, g.shape[0] // 16), max(1, g.shape[1] // 16)
    n = float(top.size)
    return ImageStats(
        hist=hist,
        brightness=float(g.mean()),
        dark=float(np.count_nonzero(top <= DARK_VALUE)) / n,
        saturated=float(np.count_nonzero(top >= SATURATED_VALUE)) / n,
        sharpness=laplacian_var(g),
        contrast=float(g.var()),
        thumb=g[:: th[0], :: th[1]][:16, :16].copy(),
    )


def prediction_stats(probs: Any) -> tuple[float, float]:
    """(top-1 score, entropy / ln(classes)) of one probability vector; a one-unit sigmoid counts as two classes."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    if p.size == 1:
        p = np.array([1.0 - p[0], p[0]])
    p = np.clip(p, 0.0, 1.0)
    total = p.sum()
    if total <= 0:
        return 0.0, 1.0
    p = p / total
    nz = p[p > 0]
    ent = float(-(nz * np.log(nz)).sum() / math.log(len(p))) if len(p) > 1 else 0.0
    return float(p.max()), min(1.0, max(0.0, ent))


def pred_bin(x: float) -> int:
    """Bin of a 0..1 figure among :data:`PRED_BINS`."""
    return min(PRED_BINS - 1, max(0, int(x * PRED_BINS)))


def fractions(counts: np.ndarray) -> np.ndarray:
    """Counts to fractions along the last axis (all-zero rows stay zero)."""
    c = np.asarray(counts, dtype=np.float64)
    s = c.sum(axis=-1, keepdims=True)
    return np.divide(c, s, out=np.zeros_like(c), where=s > 0)


def psi(expected: Any, actual: Any, n_expected: float | None = None, n_actual: float | None = None,
        eps: float = PSI_EPS) -> float:
    """Population Stability Index of two binned distributions (fractions or counts, same bins).

    ``n_expected``/``n_actual`` are the samples behind each side (images, not pixels: pixels of one image are
    not independent). When given, each side's fractions are smoothed with half a count per bin (the Jeffreys
    prior), so a bin that a 40-image reference happens to leave empty does not make a window's few frames in it
    read as a huge shift; otherwise empty bins are floored at ``eps``.
    """
    p = fractions(np.asarray(expected, dtype=np.float64))
    q = fractions(np.asarray(actual, dtype=np.float64))
    bins = p.shape[-1]
    p = (p * n_expected + 0.5) / (n_expected + 0.5 * bins) if n_expected else np.maximum(p, eps)
    q = (q * n_actual + 0.5) / (n_actual + 0.5 * bins) if n_actual else np.maximum(q, eps)
    p, q = p / p.sum(), q / q.sum()
    return float(((q - p) * np.log(q / p)).sum())


def _pcts(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    p = np.percentile(values, [5, 50, 95])
    return {"p5": round(float(p[0]), 4), "p50": round(float(p[1]), 4), "p95": round(float(p[2]), 4),
            "mean": round(float(values.mean()), 4)}


def reference_from(images: np.ndarray, probs: np.ndarray | None) -> dict[str, Any]:
    """The drift reference of a set of model-sized images (the validation split) and the model's probabilities
    on them: what the model card stores under ``reference``.

    Args:
        images: N x H x W x C uint8, preprocessed to the model input.
        probs: N x K probabilities (or None: no score/entropy reference).
    """
    n = len(images)
    if n == 0:
        return {}
    stats = [image_stats(img) for img in images]
    hist = np.sum([s.hist for s in stats], axis=0)
    ref: dict[str, Any] = {
        "version": REFERENCE_VERSION,
        "split": "val",
        "num_images": int(n),
        "analysis_side": ANALYSIS_SIDE,
        "pixel_bins": PIXEL_BINS,
        "pixel_hist": [[round(float(x), 6) for x in row] for row in fractions(hist)],
        "brightness": _pcts(np.array([s.brightness for s in stats])),
        "sharpness": _pcts(np.array([s.sharpness for s in stats])),
        "focus": _pcts(np.array([s.focus for s in stats])),
        "dark": _pcts(np.array([s.dark for s in stats])),
        "saturated": _pcts(np.array([s.saturated for s in stats])),
    }
    if probs is not None and len(probs) == n:
        pairs = np.array([prediction_stats(p) for p in probs])
        ref["pred_bins"] = PRED_BINS
        for i, key in enumerate(("score", "entropy")):
            counts = np.bincount([pred_bin(x) for x in pairs[:, i]], minlength=PRED_BINS)
            ref[f"{key}_hist"] = [round(float(x), 6) for x in fractions(counts)]
            ref[key] = _pcts(pairs[:, i])
    return ref


__all__ = ["ANALYSIS_SIDE", "ImageStats", "PIXEL_BINS", "PRED_BINS", "analysis_view", "image_stats",
           "prediction_stats", "psi", "reference_from"]
