"""Learnable synthetic image datasets written as real image files (for tests, benchmarks and smoke runs).

Each class is a distinct, noisy pattern (stripes of different orientation, a disc, a cross, a checker, ...)
so a tiny CNN learns it in a few epochs. Files can be written in mixed formats and colour modes to
exercise the same decoding paths users hit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

PATTERNS = ("hstripes", "vstripes", "disc", "cross", "checker", "diag", "ring", "blank_edge")
FORMATS = ("png", "jpg", "bmp", "gif", "webp")
MODES = ("RGB", "L", "RGBA")


def pattern_image(kind: str, size: int, rng: np.random.Generator, noise: float = 25.0) -> np.ndarray:
    """A ``size``×``size`` RGB uint8 image of pattern ``kind`` with random phase, colour and noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = max(4.0, size / rng.uniform(3.0, 5.0))
    phase = rng.uniform(0, period)
    cy, cx = size / 2 + rng.uniform(-size / 8, size / 8, 2)
    r = np.hypot(yy - cy, xx - cx)
    if kind == "hstripes":
        m = ((yy + phase) % period) < period / 2
    elif kind == "vstripes":
        m = ((xx + phase) % period) < period / 2
    elif kind == "disc":
        m = r < size * rng.uniform(0.22, 0.32)
    elif kind == "cross":
        w = size * 0.12
        m = (np.abs(yy - cy) < w) | (np.abs(xx - cx) < w)
    elif kind == "checker":
        m = (((yy + phase) // period) + ((xx + phase) // period)) % 2 == 0
    elif kind == "diag":
        m = ((xx + yy + phase) % period) < period / 2
    elif kind == "ring":
        rad = size * rng.uniform(0.25, 0.33)
        m = np.abs(r - rad) < size * 0.07
    elif kind == "blank_edge":
        m = (yy < size * 0.15) | (yy > size * 0.85)
    else:
        raise ValueError(f"unknown pattern {kind!r}; expected one of {PATTERNS}")
    fg = rng.uniform(170, 255, 3)
    bg = rng.uniform(0, 70, 3)
    img = np.where(m[:, :, None], fg, bg) + rng.normal(0, noise, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_dataset(
    root: str | os.PathLike[str],
    classes: int | list[str] = 3,
    per_class: int = 20,
    size: int | tuple[int, int] = 32,
    formats: tuple[str, ...] = ("png",),
    modes: tuple[str, ...] = ("RGB",),
    seed: int = 0,
    vary_size: bool = False,
) -> Path:
    """Write a class-folder dataset of learnable patterns.

    Args:
        root: Destination folder (created).
        classes: Number of classes (named ``c0``, ``c1``…) or explicit class names (UTF-8 kept).
        per_class: Images per class.
        size: Image side (or (h, w) range lower/upper when ``vary_size``).
        formats: File formats, cycled per image.
        modes: PIL colour modes, cycled per image (``RGB``, ``L``, ``RGBA``).
        seed: RNG seed.
        vary_size: Give each image a random size between ``size`` and twice it.
    """
    root = Path(root)
    names = [f"c{i}" for i in range(classes)] if isinstance(classes, int) else list(classes)
    if len(names) > len(PATTERNS):
        raise ValueError(f"at most {len(PATTERNS)} synthetic classes")
    rng = np.random.default_rng(seed)
    base = size if isinstance(size, int) else size[0]
    k = 0
    for ci, name in enumerate(names):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = int(rng.integers(base, 2 * base + 1)) if vary_size else base
            arr = pattern_image(PATTERNS[ci], side, rng)
            fmt = formats[k % len(formats)]
            mode = modes[k % len(modes)]
            k += 1
            im = Image.fromarray(arr, "RGB")
            if mode == "L":
                im = im.convert("L")
            elif mode == "RGBA":
                im = im.convert("RGBA")
            if fmt in ("jpg", "bmp") and mode == "RGBA":
                im = im.convert("RGB")
            if fmt == "gif":
                im = im.convert("P") if im.mode != "L" else im
            path = d / f"{name}_{i:04d}.{fmt}"
            im.save(path, quality=95) if fmt == "jpg" else im.save(path)
    return root


def write_level_dataset(root: str | os.PathLike[str], per_class: int = 1000, size: int = 32, band: float = 4.0,
                        outliers: float = 0.05, threshold: float = 128.0, noise: float = 4.0, seed: int = 0) -> Path:
    """Write a two-class GO/NG level set where post-training int8 loses accuracy: ``dark``/``bright`` by the mean
    grey level of the image against ``threshold``.

    Most images lie within ``band`` grey levels of the threshold (the parts a line sees); a fraction ``outliers``
    are over- or under-exposed frames (levels 0..20 or 235..255, labelled the same way). Those few frames set the
    calibrated range of every tensor on the decision path, so a per-tensor int8 step spans about a grey level
    there: the parts within a step of the threshold flip. Quantization-aware training learns to keep the range it
    needs. Used by ``benchmarks/qat.py`` and the QAT test.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = {"dark": 0, "bright": 0}
    for name in counts:
        (root / name).mkdir(parents=True, exist_ok=True)
    while min(counts.values()) < per_class:
        if rng.uniform() < outliers:
            level = rng.uniform(0, 20) if rng.uniform() < 0.5 else rng.uniform(235, 255)
        else:
            level = rng.uniform(threshold - band, threshold + band)
        name = "bright" if level > threshold else "dark"
        if counts[name] >= per_class:
            continue
        grey = np.clip(rng.normal(level, noise, (size, size)), 0, 255).astype(np.uint8)
        Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(root / name / f"{name}_{counts[name]:04d}.png")
        counts[name] += 1
    return root
