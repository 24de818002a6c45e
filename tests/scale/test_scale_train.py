"""Multi-process data parallelism without a cluster: each process's slice of a global batch, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest


def test_process_shards_of_a_global_batch_rebuild_it():
    from edgecnn.training.loader import ArrayBatches

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (21, 8, 8, 3), dtype=np.uint8)
    targets = rng.integers(0, 3, 21)
    whole = ArrayBatches(images, targets, 8, training=True, seed=3, num_classes=3, multiple_of=2)
    parts = [ArrayBatches(images, targets, 8, training=True, seed=3, num_classes=3, multiple_of=2, shard=(i, 2))
             for i in range(2)]
    assert len(whole) == len(parts[0]) == 3
    for index in range(len(whole)):  # the last batch (5 images) is padded to 6: 3 rows per process
        x, y, w = whole[index]
        sliced = [p[index] for p in parts]
        assert all(len(s[0]) == len(x) // 2 for s in sliced)
        np.testing.assert_array_equal(np.concatenate([s[0] for s in sliced]), x)
        np.testing.assert_array_equal(np.concatenate([s[1] for s in sliced]), y)
        np.testing.assert_array_equal(np.concatenate([s[2] for s in sliced]), w)
    assert float(parts[1][2][2].sum()) == 2.0  # the padded copy weighs nothing


def test_train_on_ray_refuses_tensorflow_in_one_line(tmp_path):
    from raytools import has_ray

    from edgecnn.errors import ConfigError
    from edgecnn.scale.infer import ScaleOptions
    from edgecnn.scale.train import train_ray
    from edgecnn.training import build_config

    if not has_ray():
        pytest.skip("Ray is not installed")
    cfg = build_config(overrides={"data": str(tmp_path), "backend": "tensorflow", "project": str(tmp_path / "runs")})
    with pytest.raises(ConfigError, match="keras-team/keras#20585"):
        train_ray(cfg, ScaleOptions(workers=2))
