"""The augmentation: off when no knob is set, geometry-only, shape- and range-preserving, flips exact, and the
same geometry as Keras' ``affine_transform`` on every backend (same matrices → same pixels)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgecnn.training.augmentation import AugmentSpec, augment, compose, warp
from edgecnn.training.backend import KERAS_BACKENDS


def _batch(n=8, size=16, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def test_no_knobs_no_change():
    x = _batch()
    assert not AugmentSpec().active
    assert augment(x, AugmentSpec(), np.random.default_rng(0)) is x


def test_hflip_only_gives_original_or_mirror():
    x = _batch(32)
    out = augment(x, AugmentSpec(hflip=True), np.random.default_rng(0))
    same = [np.array_equal(o, i) for o, i in zip(out, x)]
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert any(same) and any(mirrored)


def test_vflip_only_grayscale():
    x = _batch(32, channels=1)
    out = augment(x, AugmentSpec(vflip=True), np.random.default_rng(1))
    assert out.shape == x.shape
    assert all(np.array_equal(o, i) or np.array_equal(o, i[::-1]) for o, i in zip(out, x))


def test_full_augmentation_keeps_shape_and_range_and_changes_pixels():
    spec = AugmentSpec(rotation=20, width_shift=0.1, height_shift=0.1, shear=10, zoom=0.2, hflip=True)
    x = _batch(8, 24, 1)
    out = augment(x, spec, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.uint8
    assert not np.array_equal(out, x)
    again = augment(x, spec, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)  # a seed fixes the draw


def test_shift_moves_content():
    x = np.zeros((16, 20, 20, 1), np.uint8)
    x[:, 8:12, 8:12] = 255
    out = augment(x, AugmentSpec(width_shift=0.3), np.random.default_rng(0))
    cols = [np.argmax(o[10, :, 0]) for o in out]
    assert len(set(cols)) > 1  # the square landed at different columns
    assert all(o[10, :, 0].max() > 200 for o in out)  # still a bright square, only moved


def test_pure_shift_is_exact():
    x = _batch(1, 12)
    t = compose([0.0], [3.0], [-2.0], [0.0], [1.0], [1.0], 12, 12)  # input = output + (3, -2)
    out = warp(x, t)
    np.testing.assert_array_equal(out[0, 2:, :9], x[0, :10, 3:])


_KERAS_WARP = """
import json, sys
import numpy as np
import keras
x = np.load(sys.argv[1]); t = np.load(sys.argv[2])
out = keras.ops.image.affine_transform(x.astype("float32"), t, interpolation="bilinear", fill_mode="nearest")
np.save(sys.argv[3], keras.ops.convert_to_numpy(out))
print(json.dumps(keras.backend.backend()))
"""


@pytest.mark.parametrize("backend", KERAS_BACKENDS)
def test_same_geometry_as_keras_affine_transform_on_every_backend(backend, tmp_path):
    """cv2's warp of our matrices equals keras.ops.image.affine_transform of the same matrices on each backend,
    so the ImageDataGenerator meaning (and the TensorFlow op it replaced) holds whatever backend trains."""
    x = np.random.default_rng(3).integers(0, 256, (6, 24, 20, 3)).astype(np.uint8)
    x = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)  # smooth-ish content: bilinear rounding stays small
    spec = AugmentSpec(rotation=25, width_shift=0.15, height_shift=0.1, shear=12, zoom=0.2, hflip=True, vflip=True)
    t = spec.sample(len(x), x.shape[1], x.shape[2], np.random.default_rng(7))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    env = {"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    import os

    proc = subprocess.run([sys.executable, "-c", _KERAS_WARP, str(tmp_path / "x.npy"), str(tmp_path / "t.npy"),
                           str(tmp_path / "out.npy")], env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == backend
    theirs = np.load(tmp_path / "out.npy")
    ours = warp(x, t).astype(np.float32)
    diff = np.abs(ours - theirs)
    assert diff.mean() < 0.6, diff.mean()  # uint8 rounding of the bilinear result
    assert np.quantile(diff, 0.999) <= 3.0, np.quantile(diff, 0.999)
