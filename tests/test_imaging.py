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


def test_interpolation_flags_are_opencvs():
    import cv2

    from edgecnn.imaging import INTERPOLATIONS

    assert INTERPOLATIONS == {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST,
                              "bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


def test_numpy_area_resize_is_opencvs_pixel_for_pixel():
    """One image is resized without importing OpenCV; it must give exactly cv2.resize(INTER_AREA)'s pixels."""
    import cv2

    from edgecnn.area_resize import _area_general, resize_area

    rng = np.random.default_rng(12)
    checked = 0
    sizes = [(100, 110, 64, 64), (480, 640, 64, 64), (480, 640, 96, 96), (37, 41, 24, 24), (64, 100, 64, 64),
             (100, 64, 64, 64), (301, 7, 3, 5), (50, 50, 49, 1)]
    sizes += [(int(h), int(w), int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
              for h, w in rng.integers(2, 400, (120, 2))]
    for src_h, src_w, h, w in sizes:
        if not _area_general(src_h, src_w, h, w):
            continue
        for channels in (3, 1):
            shape = (src_h, src_w, 3) if channels == 3 else (src_h, src_w)
            img = rng.integers(0, 256, shape, dtype=np.uint8)
            if checked % 3 == 0:  # flat regions too, where ties in rounding are likeliest
                img = (img // 64 * 64).astype(np.uint8)
            expected = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(resize_area(img, h, w), expected, err_msg=f"{shape} -> {h}x{w}")
            checked += 1
    assert checked > 150


def test_area_resize_path_is_chosen_only_where_it_is_exact():
    from edgecnn.area_resize import _area_general

    assert _area_general(100, 110, 64, 64)
    assert not _area_general(128, 128, 64, 64)  # integer scale: OpenCV's own fast path (different rounding)
    assert not _area_general(32, 32, 64, 64)  # upscale: OpenCV interpolates
    assert _area_general(128, 100, 64, 64)  # one integer axis only: still the general path


def test_numpy_gray_is_opencvs_pixel_for_pixel_on_every_colour():
    """A grayscale model's one image is converted without OpenCV; all 16.7 million colours must match cv2."""
    import cv2

    from edgecnn.imaging import rgb_to_gray

    v = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    img = np.stack([r, g, b], -1).reshape(4096, 4096, 3)
    np.testing.assert_array_equal(rgb_to_gray(img), cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
