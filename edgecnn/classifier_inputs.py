"""What :meth:`edgecnn.Classifier.predict` accepts, checked: an image array, a PIL image, a file path or encoded
bytes, each turned into RGB uint8 HxWx3 exactly as ``edgecnn run`` decodes a file, or refused in one line that says
what was expected, what was received and the fix (:class:`~edgecnn.errors.DataError`). Nothing is rescaled or
guessed. :mod:`edgecnn.classifier` re-exports these names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import DataError

_FLOAT_FIX = ("convert it first: (np.clip(x, 0, 1) * 255).round().astype(np.uint8) for 0..1 floats, "
              "or np.clip(x, 0, 255).round().astype(np.uint8) for 0..255 floats")


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "mode") and hasattr(obj, "convert")


def _describe(x: np.ndarray) -> str:
    return f"a {x.dtype} array of shape {tuple(x.shape)}"


def array_to_rgb(x: np.ndarray, bgr: bool = False, what: str = "input") -> np.ndarray:
    """Check an image array and return it as RGB uint8 HxWx3, as ``edgecnn run`` decodes files.

    Accepted: HxW (gray), HxWx1 (gray), HxWx3 (RGB, or BGR with ``bgr``) and HxWx4 (RGBA/BGRA: alpha is
    dropped, as decoding an RGBA PNG does), of dtype uint8 or any integer dtype whose values lie in 0..255.

    Raises:
        DataError: float/bool/complex/object arrays, values outside 0..255, an empty array, a wrong number
            of dimensions or channels (channels-first arrays are recognised and the transpose suggested).
    """
    import cv2

    x = np.asarray(x)
    if x.dtype.kind == "f":
        lo, hi = (float(np.nanmin(x)), float(np.nanmax(x))) if x.size else (0.0, 0.0)
        raise DataError(f"Expected uint8 pixels 0..255 in {what}; received {_describe(x)} (values {lo:g}..{hi:g}). "
                        f"Float images are refused because their scale is ambiguous: {_FLOAT_FIX}.")
    if x.dtype.kind not in "ui":
        raise DataError(f"Expected uint8 pixels 0..255 in {what}; received {_describe(x)}. "
                        "Pass an image array of dtype uint8 (e.g. x.astype(np.uint8)).")
    if x.size == 0:
        raise DataError(f"Expected a non-empty image in {what}; received an empty array of shape {tuple(x.shape)}.")
    if x.ndim not in (2, 3):
        raise DataError(f"Expected an image array HxW or HxWxC (C = 1, 3 or 4) in {what}; received {x.ndim} "
                        f"dimension(s), shape {tuple(x.shape)}. Pass a list of images for several.")
    if x.ndim == 3 and x.shape[2] not in (1, 3, 4):
        hint = (" It looks channels-first (CxHxW): pass x.transpose(1, 2, 0)."
                if x.shape[0] in (1, 3, 4) else "")
        raise DataError(f"Expected 1 (gray), 3 (RGB) or 4 (RGBA) channels in {what}; received shape "
                        f"{tuple(x.shape)} ({x.shape[2]} channels).{hint}")
    if x.dtype != np.uint8:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"Expected pixel values 0..255 in {what}; received {_describe(x)} with values "
                            f"{lo}..{hi}. Scale it to 0..255 and convert with .astype(np.uint8) first.")
        x = x.astype(np.uint8)
    x = np.ascontiguousarray(x)
    if x.ndim == 2 or x.shape[2] == 1:
        return cv2.cvtColor(x.reshape(x.shape[0], x.shape[1]), cv2.COLOR_GRAY2RGB)
    if x.shape[2] == 4:
        return cv2.cvtColor(x, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(x, cv2.COLOR_BGR2RGB) if bgr else x


def to_rgb(item: Any, bgr: bool = False, what: str = "input") -> tuple[np.ndarray, str]:
    """Any accepted input → (RGB uint8 HxWx3, source name). Files decode exactly as in ``edgecnn run``.

    Raises:
        DataError: an input of another type, a bad array (see :func:`array_to_rgb`), a folder, or a file that
            is missing or cannot be decoded.
    """
    from edgecnn.imaging import decode_image, pil_to_rgb

    if isinstance(item, np.ndarray):
        return array_to_rgb(item, bgr, what), "<array>"
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if path.is_dir():
            raise DataError(f"Expected an image file in {what}; {path} is a folder. "
                            "Use clf.stream(source=FOLDER) to classify a folder.")
        return decode_image(path), str(path)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return decode_image(bytes(item)), "<bytes>"
    if _is_pil(item):
        return pil_to_rgb(item, name="<PIL image>"), "<PIL image>"
    raise DataError(f"Expected an image in {what}: a HxWxC uint8 numpy array, a PIL image, a file path or encoded "
                    f"image bytes; received {type(item).__name__}.")
