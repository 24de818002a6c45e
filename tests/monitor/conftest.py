"""Fixtures of the monitor tests: a learnable image set, held-out images from the same distribution, and a
parent run trained by the real ``edgecnn.train`` (so its card carries the drift reference)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # streams.py


@pytest.fixture(scope="session")
def monitor_data(tmp_path_factory) -> Path:
    from edgecnn.synthetic import write_dataset

    root = tmp_path_factory.mktemp("monitor")
    write_dataset(root / "data", classes=3, per_class=60, size=48, seed=0)
    write_dataset(root / "held", classes=3, per_class=30, size=48, seed=7)
    return root


@pytest.fixture(scope="session")
def parent_run(monitor_data) -> Path:
    from edgecnn.training.config import build_config
    from edgecnn.training.trainer import train

    cfg = build_config(overrides=dict(data=str(monitor_data / "data"), img_size="24", epochs=6, filters=8,
                                      project=str(monitor_data / "runs"), name="parent", plots=False, quiet=True))
    return train(cfg).run_dir
