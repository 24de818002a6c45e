"""Issue 24: training randomises the resize method (area, bilinear with and without antialias, nearest) by default;
``--no-resize-augment`` turns it off. Validation, test and every runtime keep the card's interpolation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgecnn.imaging import CONSUMER_RESIZES, TRAIN_RESIZES, decode_image, preprocess, preprocess_as
from edgecnn.training.config import build_config
from edgecnn.training.datasets import load_training_data


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_consumer_resamplers_are_the_consumers_own():
    import cv2

    img = _noise(57, 43)
    np.testing.assert_array_equal(preprocess_as(img, 24, 20, "rgb", "opencv-linear"),
                                  cv2.resize(img, (20, 24), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(preprocess_as(img, 24, 20, "rgb", "pillow-bilinear"),
                                  np.asarray(Image.fromarray(img).resize((20, 24), Image.Resampling.BILINEAR)))
    np.testing.assert_array_equal(preprocess_as(img, 24, 20, "rgb", "edgecnn", "area"), preprocess(img, 24, 20))
    np.testing.assert_array_equal(preprocess_as(img, 24, 20, "grayscale", "nearest"),
                                  preprocess(img, 24, 20, "grayscale", "nearest"))
    outs = [preprocess_as(img, 24, 20, "rgb", m) for m in (*TRAIN_RESIZES, *CONSUMER_RESIZES)]
    assert all(o.shape == (24, 20, 3) and o.dtype == np.uint8 for o in outs)
    assert len({o.tobytes() for o in outs}) >= 5  # they really differ on noise
    same = _noise(24, 20)
    assert all(np.array_equal(preprocess_as(same, 24, 20, "rgb", m), same) for m in CONSUMER_RESIZES)  # no resize


def test_config_default_and_flag():
    cfg = build_config(overrides={"data": "x"})
    assert cfg.resize_augment is True
    assert cfg.resize_variants == ("bilinear", "pillow-bilinear", "nearest")  # all but the card's (area)
    assert build_config(overrides={"data": "x", "interpolation": "bilinear"}).resize_variants == (
        "area", "pillow-bilinear", "nearest")
    assert build_config(overrides={"data": "x", "resize_augment": False}).resize_variants == ()
    assert "resize_augment = true" in cfg.to_toml()


def test_training_split_carries_each_resize_and_batches_draw_them(mixed_dir):
    from edgecnn.training.loader import ArrayBatches

    variants = ("bilinear", "pillow-bilinear", "nearest")
    data = load_training_data(mixed_dir, (12, 12), "rgb", val_split=0.25, test_split=0.0, seed=0, variants=variants)
    plain = load_training_data(mixed_dir, (12, 12), "rgb", val_split=0.25, test_split=0.0, seed=0)
    np.testing.assert_array_equal(data.train.x, plain.train.x)  # the card's resize is unchanged
    assert plain.train.variants is None
    assert data.train.variants.shape == (3, *data.train.x.shape)
    for k, method in enumerate(variants):  # each variant is that method applied to the decoded file
        f = data.train.files[0]
        np.testing.assert_array_equal(data.train.variants[k, 0], preprocess_as(decode_image(f), 12, 12, "rgb", method))
    batches = ArrayBatches(data.train.x, data.train.y, 8, training=True, seed=1, variants=data.train.variants)
    versions = np.concatenate([data.train.x[None], data.train.variants])  # (4, N, ...)
    drawn = set()
    for _epoch in range(3):
        for b in range(len(batches)):
            x = batches[b][0].astype(np.uint8)
            for row, i in zip(x, batches.order[b * 8 : (b + 1) * 8]):
                match = [k for k in range(4) if np.array_equal(row, versions[k, i])]
                assert match, "a batch image is none of its resized versions"
                drawn.update(match)
        batches.on_epoch_end()
    assert drawn == {0, 1, 2, 3}
    again = ArrayBatches(data.train.x, data.train.y, 8, training=True, seed=1, variants=data.train.variants)
    np.testing.assert_array_equal(again[0][0], ArrayBatches(data.train.x, data.train.y, 8, training=True, seed=1,
                                                            variants=data.train.variants)[0][0])  # reproducible
    val = ArrayBatches(data.val.x, data.val.y, 8, training=False, variants=data.val.variants)
    np.testing.assert_array_equal(val[0][0], data.val.x[:8].astype(np.float32))  # never in validation


@pytest.mark.parametrize("flag", [True, False])
def test_train_records_the_choice(shapes_dir, tmp_path, flag):
    import edgecnn

    result = edgecnn.train(data=str(shapes_dir), img_size="12", epochs=1, batch=16, project=str(tmp_path),
                           name="r", plots=False, quiet=True, resize_augment=flag)
    assert result.card.config["resize_augment"] is flag
    assert f"resize_augment = {str(flag).lower()}" in (result.run_dir / "config.toml").read_text()
