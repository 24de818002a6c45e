"""Fixtures of the training tests: tiny real image folders and a CliRunner helper for ``edgecnn train``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.synthetic import write_dataset


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def train_cli(runner, tmp_path):
    """Invoke ``edgecnn train ARGS --project <tmp>/runs``; returns the click Result."""
    from edgecnn.cli import app

    def invoke(*args: str, project: Path | None = None):
        argv = ["train", *map(str, args), "--project", str(project or tmp_path / "runs")]
        return runner.invoke(app, argv)

    return invoke


@pytest.fixture(scope="session")
def small_dir(tmp_path_factory) -> Path:
    """3 learnable classes × 16 images, 20 px PNG."""
    return write_dataset(tmp_path_factory.mktemp("small") / "data", classes=3, per_class=16, size=20, seed=1)


@pytest.fixture(autouse=True)
def _data_home(tmp_path_factory, monkeypatch):
    """Built-in datasets materialise into a per-session temporary folder, never into ~/.cache."""
    monkeypatch.setenv("EDGECNN_DATA_DIR", str(tmp_path_factory.getbasetemp() / "edgecnn-datasets"))
