"""Fixtures of the Ray tests: a real two-node Ray cluster on 127.0.0.1 (one per module), a folder of 2,101 images.

Tests marked ``ray`` are skipped when Ray Data is not installed; ``make test`` installs the ``ray`` extra so CI
runs them. The cluster is always torn down, also when a test fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.synthetic import write_dataset

CLASSES = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def ray_cluster():
    """A head and a second node, 1 CPU each, small object stores, no dashboard; drivers of this process join it."""
    from edgecnn.scale.localcluster import LocalCluster

    cluster = LocalCluster(nodes=2, cpus_per_node=1, object_store_mb=100)
    cluster.start()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in cluster.driver_env.items():
            mp.setenv(key, value)
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """2,100 images (PNG and JPEG, 3 classes) and one file that is not an image: 2,101 inputs."""
    root = write_dataset(tmp_path_factory.mktemp("archive") / "data", classes=CLASSES, per_class=700, size=32,
                         formats=("png", "jpg"))
    (root / "beta" / "broken.png").write_bytes(b"not a png at all")
    return root


@pytest.fixture(scope="session")
def tflite_model(exported_artifacts) -> Path:
    """The tiny run exported to float32 TFLite (shared with the other suites)."""
    return Path(exported_artifacts["tflite-float32"])
