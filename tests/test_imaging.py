"""The shared preprocessing: decoding every format/mode, listing rules, one resize for all."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgecnn.errors import DataError
from edgecnn.imaging import (
    UnreadableImageError,
    bgr_to_rgb,
    decode_image,
    list_images,
    load_image,
    parse_img_size,
    preprocess,
    scan_labelled_folder,
)


def test_list_images_ignores_hidden_and_non_images(mixed_dir):
    files = list_images(mixed_dir)
    names = {f.name for f in files}
    assert "notes.txt" not in names and ".hidden.png" not in names
    assert "empty.png" in names and "truncated.png" in names  # listed; decoding decides
    assert files == sorted(files, key=lambda p: str(p.relative_to(mixed_dir)))
    exts = {f.suffix for f in files}
    assert {".png", ".jpg", ".bmp", ".gif", ".webp"} <= exts


def test_every_format_and_mode_decodes_to_rgb(mixed_dir):
    ok = 0
    for f in list_images(mixed_dir):
        if f.name in ("empty.png", "truncated.png"):
            with pytest.raises(UnreadableImageError):
                decode_image(f)
            continue
        img = decode_image(f)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        ok += 1
    assert ok == 24


def test_preprocess_gray_and_rgb_shapes(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    assert preprocess(rgb, 16, 24, "rgb").shape == (16, 24, 3)
    g = preprocess(rgb, 16, 24, "grayscale")
    assert g.shape == (16, 24, 1) and g.dtype == np.uint8
    with pytest.raises(DataError, match="interpolation"):
        preprocess(rgb, 16, 16, "rgb", "fancy")


def test_gray_file_and_gray_frame_give_identical_pixels(tmp_path):
    """A grayscale PNG on disk and the same picture arriving as a BGR camera frame preprocess identically."""
    gray = np.random.default_rng(1).integers(0, 255, (30, 30), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    from_file = load_image(tmp_path / "g.png", 12, 12, "grayscale")
    frame_bgr = np.repeat(gray[:, :, None], 3, axis=2)
    from_frame = preprocess(bgr_to_rgb(frame_bgr), 12, 12, "grayscale")
    np.testing.assert_array_equal(from_file, from_frame)


def test_sixteen_bit_png_is_scaled(tmp_path):
    arr = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    img = decode_image(tmp_path / "d.png")
    assert img.max() > 200 and img.dtype == np.uint8


@pytest.mark.parametrize("value,expected", [("64", (64, 64)), (32, (32, 32)), ("48x64", (48, 64)), ((8, 9), (8, 9))])
def test_parse_img_size(value, expected):
    assert parse_img_size(value) == expected


@pytest.mark.parametrize("value", ["0", "abc", "-3", "4x0"])
def test_parse_img_size_rejects(value):
    with pytest.raises(DataError, match="img-size"):
        parse_img_size(value)


def test_scan_labelled_folder_and_errors(shapes_dir, tmp_path):
    ds = scan_labelled_folder(shapes_dir)
    assert ds.labels == ["alpha", "beta", "gamma"] and len(ds.files) == 90
    assert ds.per_class == {"alpha": 30, "beta": 30, "gamma": 30}
    with pytest.raises(DataError, match="not found"):
        scan_labelled_folder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="sub-folder"):
        scan_labelled_folder(tmp_path / "flat")
    with pytest.raises(DataError, match="does not know"):
        scan_labelled_folder(shapes_dir, labels=["alpha", "beta"])


@pytest.mark.parametrize(
    "fmt,mode,kw",
    [("PNG", "RGB", {}), ("PNG", "RGBA", {}), ("PNG", "L", {}), ("PNG", "P", {}), ("PNG", "LA", {}),
     ("BMP", "RGB", {}), ("BMP", "L", {}), ("JPEG", "RGB", {"quality": 90}), ("JPEG", "L", {}),
     ("JPEG", "RGB", {"progressive": True}), ("JPEG", "CMYK", {}), ("WEBP", "RGB", {}), ("GIF", "P", {})],
)
def test_fast_and_pillow_decoders_give_the_same_pixels(fmt, mode, kw):
    """decode_image takes OpenCV (parallel, GIL-free) where it matches Pillow exactly, Pillow elsewhere."""
    import io

    from edgecnn.imaging import _decode_opencv, _decode_pillow
    from edgecnn.synthetic import pattern_image

    rgb = pattern_image("disc", 40, np.random.default_rng(3))
    buf = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buf, fmt, **kw)
    data = buf.getvalue()
    reference = _decode_pillow(data, "x")
    np.testing.assert_array_equal(decode_image(data), reference)
    fast = _decode_opencv(data)
    if fmt in ("PNG", "BMP") or (fmt == "JPEG" and mode != "CMYK"):
        assert fast is not None  # the fast path is really taken for the common formats
        np.testing.assert_array_equal(fast, reference)
    else:
        assert fast is None


def test_truncated_jpeg_and_png_are_errors_not_grey_images():
    import io

    from edgecnn.synthetic import pattern_image

    rgb = pattern_image("cross", 64, np.random.default_rng(4))
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        data = buf.getvalue()
        for cut in (len(data) // 3, 2 * len(data) // 3):
            with pytest.raises(UnreadableImageError, match="Cannot decode"):
                decode_image(data[:cut])
