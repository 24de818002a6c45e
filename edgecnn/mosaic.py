"""Prediction mosaics and thumbnails: what Ultralytics users look at after training and validation.

Pillow only (no matplotlib), so ``edgecnn evaluate`` on an edge box draws them too. A mosaic is a grid of images,
each captioned with its true and predicted label and score; a wrong prediction gets a red frame and a red
caption, a right one green. Files are written atomically.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.fileio import atomic_path

GOOD, BAD, INK, PAPER = (32, 140, 64), (200, 30, 30), (20, 20, 20), (255, 255, 255)


@dataclass(frozen=True)
class Tile:
    """One captioned image of a mosaic."""

    image: np.ndarray  # uint8 HxW, HxWx1 or HxWx3
    true: str
    predicted: str
    score: float

    @property
    def wrong(self) -> bool:
        return self.true != self.predicted


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[:, :, None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]


def _fit(text: str, draw: Any, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render_mosaic(tiles: Sequence[Tile], columns: int = 8, size: int = 112, title: str | None = None) -> Any:
    """A PIL image of the tiles in a grid, each ``size`` px square with a two-line caption."""
    from PIL import Image, ImageDraw

    font, big = _font(11), _font(14)
    columns = max(1, min(columns, len(tiles)))
    rows = (len(tiles) + columns - 1) // columns
    cap, pad, head = 30, 6, 26 if title else 0
    sheet = Image.new("RGB", (columns * (size + pad) + pad, head + rows * (size + cap + pad) + pad), PAPER)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill=INK, font=big)
    for i, t in enumerate(tiles):
        x = pad + (i % columns) * (size + pad)
        y = head + pad + (i // columns) * (size + cap + pad)
        img = Image.fromarray(_rgb(np.asarray(t.image, dtype=np.uint8)))
        scale = size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.NEAREST if scale >= 2 else Image.BILINEAR)
        sheet.paste(img, (x + (size - img.width) // 2, y + (size - img.height) // 2))
        color = BAD if t.wrong else GOOD
        draw.rectangle((x - 2, y - 2, x + size + 1, y + size + 1), outline=color, width=3 if t.wrong else 2)
        draw.text((x, y + size + 3), _fit(f"true {t.true}", draw, font, size), fill=INK, font=font)
        if t.wrong:  # a cross in the corner (drawn: the default font has no ✗)
            c = x + size - 14
            draw.rectangle((c, y, c + 13, y + 13), fill=BAD)
            draw.line((c + 3, y + 3, c + 10, y + 10), fill=PAPER, width=2)
            draw.line((c + 3, y + 10, c + 10, y + 3), fill=PAPER, width=2)
        draw.text((x, y + size + 16), _fit(f"pred {t.predicted} {t.score:.2f}", draw, font, size), fill=color,
                  font=font)
    return sheet


def write_mosaic(tiles: Sequence[Tile], path: str | os.PathLike[str], columns: int = 8, size: int = 112,
                 title: str | None = None) -> Path | None:
    """Write the mosaic as PNG (atomically); None when there is nothing to draw."""
    if not tiles:
        return None
    sheet = render_mosaic(tiles, columns, size, title)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(path)


def pick(true: Sequence[str], predicted: Sequence[str], scores: Sequence[float], limit: int = 32) -> list[int]:
    """Indices of up to ``limit`` images to draw: every wrong prediction first (most confident first), then right
    ones spread evenly over the rest."""
    order = range(len(true))
    wrong = sorted((i for i in order if true[i] != predicted[i]), key=lambda i: -scores[i])
    right = [i for i in order if true[i] == predicted[i]]
    room = max(0, limit - len(wrong))
    if right and room:
        right = right[::max(1, len(right) // room)][:room]
    return wrong[:limit] + (right if room else [])


def thumbnail_uri(image: np.ndarray, size: int = 72) -> str:
    """A small JPEG of an image as a ``data:`` URI, for self-contained HTML reports."""
    from PIL import Image

    img = Image.fromarray(_rgb(np.asarray(image, dtype=np.uint8)))
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


__all__ = ["Tile", "pick", "render_mosaic", "thumbnail_uri", "write_mosaic"]
