"""Decoding, skipping, stratified splits, splits.json and the built-in digits dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecnn.errors import DataError
from edgecnn.imaging import load_image
from edgecnn.runs import load_split
from edgecnn.training.builtin import materialize_builtin
from edgecnn.training.datasets import load_training_data, stratified_split, write_splits


def test_stratified_split_is_shuffled_stratified_and_seeded():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    keep, held = stratified_split(y, 0.2, seed=3)
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(len(y)))
    assert np.bincount(y[held]).tolist() == [10, 6, 4, 2]
    assert held.tolist() != sorted(held.tolist())  # shuffled, never "the last N"
    assert not set(held) >= set(range(len(y) - len(held), len(y)))
    again = stratified_split(y, 0.2, seed=3)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(stratified_split(y, 0.2, seed=4)[1], held)


def test_mixed_folder_decodes_and_skips(mixed_dir):
    data = load_training_data(mixed_dir, (16, 16), "grayscale", val_split=0.25, test_split=0.0, seed=0)
    assert data.labels == ["ng", "ok"]
    assert sorted(data.skipped) == ["ng/truncated.png", "ok/empty.png"]
    assert data.train.x.dtype == np.uint8 and data.train.x.shape[1:] == (16, 16, 1)
    assert len(data.train) + len(data.val) == 24
    assert all(".hidden" not in str(f) and f.suffix != ".txt" for f in data.train.files + data.val.files)
    # the cache holds exactly what the shared preprocessing gives
    f = data.train.files[0]
    np.testing.assert_array_equal(data.train.x[0], load_image(f, 16, 16, "grayscale", "area"))


def test_strict_rejects_unreadable(mixed_dir):
    with pytest.raises(DataError, match=r"2 unreadable image.*--strict"):
        load_training_data(mixed_dir, (16, 16), "rgb", strict=True)


def test_splits_json_matches_the_runs_contract(shapes_dir, tmp_path):
    data = load_training_data(shapes_dir, (16, 16), "rgb", val_split=0.2, test_split=0.2, seed=0)
    write_splits(tmp_path, data)
    raw = json.loads((tmp_path / "splits.json").read_text(encoding="utf-8"))
    assert raw["root"] == str(shapes_dir.resolve()) and raw["test_root"] is None
    assert raw["labels"] == ["alpha", "beta", "gamma"]
    for split, images in (("train", data.train), ("val", data.val), ("test", data.test)):
        loaded = load_split(tmp_path, split)
        assert [str(p) for p in loaded.files] == [str(p) for p in images.files]
        assert loaded.targets == images.y.tolist()
    assert {len(data.train), len(data.val), len(data.test)} == {54, 18}
    all_files = {str(f) for s in (data.train, data.val, data.test) for f in s.files}
    assert len(all_files) == 90  # disjoint


def test_separate_test_folder(shapes_dir, tmp_path):
    from edgecnn.synthetic import write_dataset

    test_root = write_dataset(tmp_path / "test", classes=["alpha", "gamma"], per_class=3, size=20)
    data = load_training_data(shapes_dir, (16, 16), "rgb", test_root=test_root)
    assert data.test_root == test_root.resolve()
    assert sorted(set(data.test.y.tolist())) == [0, 2]  # label indices of the training folder
    write_splits(tmp_path, data)
    assert len(load_split(tmp_path, "test").files) == 6


def test_test_folder_with_unknown_class(shapes_dir, tmp_path):
    from edgecnn.synthetic import write_dataset

    test_root = write_dataset(tmp_path / "test", classes=["alpha", "delta"], per_class=2, size=20)
    with pytest.raises(DataError, match="delta"):
        load_training_data(shapes_dir, (16, 16), "rgb", test_root=test_root)


def test_loader_batches_and_augments_only_training(shapes_dir):
    from edgecnn.training.augmentation import AugmentSpec
    from edgecnn.training.loader import ArrayBatches

    data = load_training_data(shapes_dir, (16, 16), "rgb")
    spec = AugmentSpec(hflip=True, rotation=30)
    val = ArrayBatches(data.val.x, data.val.y, 8, training=False, spec=spec)
    xb, yb = val[0]
    np.testing.assert_array_equal(xb, data.val.x[:8].astype(np.float32))
    assert xb.dtype == np.float32 and yb.dtype == np.int32
    train = ArrayBatches(data.train.x, data.train.y, 8, training=True, spec=spec, num_classes=3, one_hot=True)
    xb, yb = train[0]
    assert xb.shape == (8, 16, 16, 3) and yb.shape == (8, 3)
    again = ArrayBatches(data.train.x, data.train.y, 8, training=True, spec=spec, num_classes=3, one_hot=True)
    np.testing.assert_array_equal(again[0][0], xb)  # a batch is a function of (seed, epoch, index)
    train.on_epoch_end()
    assert not np.array_equal(train[0][0], xb)  # reshuffled and re-augmented next epoch


def test_loader_pads_the_last_batch_for_devices_with_zero_weights(shapes_dir):
    from edgecnn.training.loader import ArrayBatches

    data = load_training_data(shapes_dir, (16, 16), "rgb")
    n = len(data.train)
    batches = ArrayBatches(data.train.x, data.train.y, 4, training=True, multiple_of=4,
                           class_weight={0: 2.0, 1: 1.0, 2: 0.5})
    sizes, total_weight = [], 0.0
    for i in range(len(batches)):
        x, y, w = batches[i]
        assert len(x) % 4 == 0 and len(x) == len(y) == len(w)
        sizes.append(int((w > 0).sum()))
        total_weight += float(w.sum())
    assert sum(sizes) == n  # every image once, padding weighs nothing
    expected = sum({0: 2.0, 1: 1.0, 2: 0.5}[int(t)] for t in data.train.y)
    assert total_weight == pytest.approx(expected)


def test_digits_materialised_once(tmp_path):
    first = materialize_builtin("digits", tmp_path)
    assert sorted(p.name for p in first.iterdir() if p.is_dir()) == [str(i) for i in range(10)]
    assert sum(1 for _ in first.rglob("*.png")) == 1797
    stamp = (first / "0" / "digits_00000.png").stat().st_mtime_ns
    assert materialize_builtin("digits", tmp_path) == first
    assert (first / "0" / "digits_00000.png").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits.")]  # no temp folders left
