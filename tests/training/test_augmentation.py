"""The augmentation: off when no knob is set, geometry-only, shape- and range-preserving, flips exact."""

from __future__ import annotations

import numpy as np

from edgecnn.training.augmentation import AugmentSpec, make_augmenter


def _batch(n=8, size=16, channels=3):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (n, size, size, channels)).astype(np.float32)


def test_no_knobs_no_augmenter():
    assert make_augmenter(AugmentSpec()) is None


def test_hflip_only_gives_original_or_mirror():
    import tensorflow as tf

    tf.random.set_seed(0)
    x = _batch(32)
    out = np.asarray(make_augmenter(AugmentSpec(hflip=True))(tf.constant(x)))
    same = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, x)]
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert any(same) and any(mirrored)


def test_vflip_only():
    import tensorflow as tf

    tf.random.set_seed(1)
    x = _batch(32, channels=1)
    out = np.asarray(make_augmenter(AugmentSpec(vflip=True))(tf.constant(x)))
    assert all(np.allclose(o, i, atol=1e-3) or np.allclose(o, i[::-1], atol=1e-3) for o, i in zip(out, x))


def test_full_augmentation_keeps_shape_and_range_and_changes_pixels():
    import tensorflow as tf

    spec = AugmentSpec(rotation=20, width_shift=0.1, height_shift=0.1, shear=10, zoom=0.2, hflip=True)
    x = _batch(8, 24, 1)
    out = np.asarray(make_augmenter(spec)(tf.constant(x)))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, x)


def test_shift_moves_content():
    import tensorflow as tf

    x = np.zeros((16, 20, 20, 1), np.float32)
    x[:, 8:12, 8:12] = 255.0
    out = np.asarray(make_augmenter(AugmentSpec(width_shift=0.3))(tf.constant(x)))
    cols = [np.argmax(o[10, :, 0]) for o in out]
    assert len(set(cols)) > 1  # the square landed at different columns
    assert all(o[10, :, 0].max() > 200 for o in out)  # still a bright square, only moved
