"""What an image file's header says before it is decoded: a PNG's or JPEG's size and channels, and the EXIF
orientation wherever a file keeps it (JPEG APP1, PNG eXIf or text chunks, WebP, TIFF, XMP), and the one rotation
that applies it (:func:`orient`). Read by :mod:`edgecnn.imaging`, the one decoder.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_SOF = (0xC0, 0xC1, 0xC2)  # baseline, extended, progressive Huffman


def _jpeg_components(data: bytes) -> int | None:
    """Number of colour components of a JPEG's frame header, or None when it is not a plain Huffman JPEG."""
    frame = _jpeg_frame(data)
    return frame[0] if frame is not None else None


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(marker, position, length)`` of each marker segment of a JPEG from its start (fill bytes and standalone
    markers skipped), until the bytes run out or one is not a marker."""
    pos, n = 2, len(data)
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield marker, pos, length
        pos += 2 + length


def _jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """(components, width, height) of a plain Huffman JPEG's frame header, or None."""
    n = len(data)
    for marker, pos, _ in _jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if marker not in _JPEG_SOF or pos + 9 >= n:
                return None
            height = int.from_bytes(data[pos + 5: pos + 7], "big")
            width = int.from_bytes(data[pos + 7: pos + 9], "big")
            return data[pos + 9], width, height
        if marker == 0xDA:  # scan before any frame header
            return None
    return None

#: Tag 274 of EXIF's IFD0: 1 upright, 2 mirrored, 3 180°, 4 flipped, 5 transposed, 6 turned 90° clockwise to view,
#: 7 transversed, 8 turned 90° counter-clockwise to view (Pillow's ``ImageOps.exif_transpose`` table).
EXIF_ORIENTATION_TAG = 0x0112


def orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Turn decoded pixels upright for an EXIF ``orientation`` (1-8; anything else leaves them as they are).

    Pixel for pixel ``PIL.ImageOps.exif_transpose`` and ``cv2.imread``'s default (tested on all eight values).
    """
    if orientation == 2:
        out = rgb[:, ::-1]
    elif orientation == 3:
        out = rgb[::-1, ::-1]
    elif orientation == 4:
        out = rgb[::-1]
    elif orientation == 5:
        out = rgb.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(rgb, -1)
    elif orientation == 7:
        out = rgb[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(rgb, 1)
    else:
        return rgb
    return np.ascontiguousarray(out)


def exif_orientation(blob: bytes | None) -> int:
    """The Orientation tag of an EXIF block (``Exif\\0\\0`` + TIFF, or bare TIFF); 1 when absent or unreadable."""
    if not blob:
        return 1
    while blob.startswith(b"Exif\0\0"):
        blob = blob[6:]
    if blob[:4] not in (b"II*\0", b"MM\0*"):
        return 1
    order = "little" if blob[:2] == b"II" else "big"
    ifd = int.from_bytes(blob[4:8], order)
    if ifd + 2 > len(blob):
        return 1
    count = int.from_bytes(blob[ifd : ifd + 2], order)
    for k in range(count):
        entry = blob[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            break
        if int.from_bytes(entry[:2], order) == EXIF_ORIENTATION_TAG and int.from_bytes(entry[2:4], order) == 3:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else 1
    return 1


_XMP = b"http://ns.adobe.com/xap/1.0/"


def _embedded_orientation(data: bytes) -> int | None:
    """EXIF orientation of a JPEG or PNG read from its header segments (1 when none); None when the file
    carries an orientation Pillow would also read elsewhere (XMP, a PNG text profile), so Pillow decodes it."""
    if data[:2] == b"\xff\xd8":
        found = None
        for marker, pos, length in _jpeg_segments(data):
            if marker in (0xDA, 0xD9):
                break
            if marker == 0xE1:
                segment = data[pos + 4 : pos + 2 + length]
                if segment.startswith(b"Exif\0\0") and found is None:  # the first EXIF block, as Pillow
                    found = exif_orientation(segment)
                elif segment.startswith(_XMP):
                    return None
        return found or 1
    if data.startswith(_PNG_SIGNATURE):
        pos, n = 8, len(data)
        while pos + 8 <= n:
            length = int.from_bytes(data[pos : pos + 4], "big")
            kind = data[pos + 4 : pos + 8]
            if kind == b"IEND":
                break
            if kind == b"eXIf":
                return exif_orientation(data[pos + 8 : pos + 8 + length])
            if kind in (b"tEXt", b"zTXt", b"iTXt") and data[pos + 8 : pos + 8 + length].startswith(
                (b"Raw profile type exif", b"XML:com.adobe.xmp")
            ):
                return None
            pos += 12 + length
        return 1
    return 1


#: ``info`` keys under which Pillow finds an orientation (EXIF, a PNG text profile, XMP).
_PIL_ORIENTATION_KEYS = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")


def pil_orientation(im: Image.Image) -> int:
    """The EXIF orientation Pillow reads for ``im`` (1 when none). Parses EXIF only when the image carries some,
    so a plain image costs nothing (no TIFF plugin import on a one-image cold start)."""
    if im.format not in ("TIFF", "MPO") and not any(k in im.info for k in _PIL_ORIENTATION_KEYS):
        return 1
    try:
        value = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001  (a corrupt EXIF block must not make a good image unreadable)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


__all__ = ["EXIF_ORIENTATION_TAG", "exif_orientation", "orient", "pil_orientation"]
