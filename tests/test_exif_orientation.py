"""EXIF orientation: a phone photo is turned upright in ONE place (edgecnn.imaging), so training, ``run``,
``evaluate``, capture and ``predict(path | bytes | PIL image)`` see the same pixels; arrays are taken as given."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from edgecnn.imaging import decode_image, load_image, orient, pil_to_rgb
from edgecnn.synthetic import pattern_image

ROOT = Path(__file__).resolve().parents[1]


def _upright(h: int = 36, w: int = 52) -> np.ndarray:
    """A smooth, asymmetric picture (JPEG keeps it close, every turn of it differs)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + 2 * yy) % 256], axis=2).astype(np.uint8)
    img[: h // 3, : w // 4] = (250, 20, 20)  # a red block top-left marks "up"
    return img


def _with_orientation(rgb: np.ndarray, orientation: int, fmt: str = "JPEG") -> bytes:
    """A file whose stored pixels are ``rgb`` and whose EXIF Orientation tag is ``orientation`` (written by Pillow)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_decoder_turns_the_file_upright_like_exif_transpose(tmp_path, fmt, orientation):
    data = _with_orientation(_upright(), orientation, fmt)
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(data)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    with Image.open(path) as im:
        from_pil = pil_to_rgb(im)
    for got in (decode_image(path), decode_image(path, opencv=False), decode_image(data), from_pil):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_opencv_imread_agrees_pixel_for_pixel_on_jpeg(tmp_path, orientation):
    """The folder path decodes with OpenCV; ``cv2.imread`` (which applies EXIF orientation by default) agrees."""
    import cv2

    path = tmp_path / "photo.jpg"
    path.write_bytes(_with_orientation(_upright(), orientation))
    bgr = cv2.imread(str(path))
    np.testing.assert_array_equal(decode_image(path), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_a_rotated_jpeg_gives_the_upright_images_pixels_to_training(tmp_path):
    """The stored pixels are the photo turned 90 degrees (orientation 6): training decodes it upright, so it
    matches the same photo saved upright, not the sideways one."""
    upright = _upright()
    sideways = np.ascontiguousarray(np.rot90(upright, 1))  # what a phone stores for a portrait shot
    (tmp_path / "tagged.jpg").write_bytes(_with_orientation(sideways, 6))
    Image.fromarray(upright).save(tmp_path / "plain.jpg", quality=95)
    tagged = load_image(tmp_path / "tagged.jpg", 24, 24)
    plain = load_image(tmp_path / "plain.jpg", 24, 24)
    assert decode_image(tmp_path / "tagged.jpg").shape == upright.shape
    assert np.abs(tagged.astype(int) - plain.astype(int)).mean() < 4  # JPEG noise only


def test_arrays_are_taken_as_given():
    arr = _upright()
    assert orient(arr, 1) is arr
    im = Image.fromarray(arr)  # a PIL image without EXIF: no turn
    np.testing.assert_array_equal(pil_to_rgb(im), arr)


def test_exif_transposed_pil_image_is_not_turned_twice(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_with_orientation(_upright(), 8))
    with Image.open(path) as im:
        once = ImageOps.exif_transpose(im)
    np.testing.assert_array_equal(pil_to_rgb(once), decode_image(path))


def test_predict_path_bytes_pil_agree_and_follow_orientation(tiny_run, tmp_path):
    import edgecnn

    clf = edgecnn.load(tiny_run / "model.keras")
    upright = pattern_image("disc", 40, np.random.default_rng(3))
    upright[:8, :] = 0  # not symmetric under a quarter turn
    sideways = np.ascontiguousarray(np.rot90(upright, 1))
    data = _with_orientation(sideways, 6, "PNG")  # PNG: lossless, so the upright array is the exact reference
    path = tmp_path / "tagged.png"
    path.write_bytes(data)
    want = clf.predict(upright).probs
    for item in (path, str(path), data, Image.open(path)):
        np.testing.assert_allclose(clf.predict(item).probs, want, atol=1e-6)
    assert not np.allclose(clf.predict(sideways).probs, want, atol=1e-6)  # the array is taken as given


def test_a_plain_images_decode_does_not_load_the_exif_parser(tmp_path):
    """A one-image cold start on an image without EXIF imports no TIFF plugin (Pillow's EXIF reader)."""
    path = tmp_path / "plain.png"
    Image.fromarray(_upright()).save(path)
    code = ("import sys; from edgecnn.imaging import decode_image; decode_image(sys.argv[1], opencv=False); "
            "print('PIL.TiffImagePlugin' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
