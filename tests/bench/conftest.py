"""Bench fixtures: the shared exported artifacts, fast loop settings, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.bench.measure import BenchSettings

#: Loop bounds that keep every bench in the tests to a few milliseconds (tests assert behaviour, not speed).
FAST_ARGS = ["--runs", "3", "--min-seconds", "0", "--warmup", "1", "--warmup-seconds", "0", "--max-seconds", "5"]


def fast_settings(runs: int = 3) -> BenchSettings:
    return BenchSettings(runs=runs, min_seconds=0, warmup=1, warmup_seconds=0, max_seconds=5)


@pytest.fixture(scope="session")
def fast_args() -> list[str]:
    return list(FAST_ARGS)


@pytest.fixture(scope="session")
def fast():
    """Factory of fast loop settings."""
    return fast_settings


@pytest.fixture(scope="session")
def arts(exported_artifacts) -> dict[str, Path]:
    """Real exported artifacts of the tiny run (tflite fp32/fp16/dynamic/int8, onnx fp32/int8, golden, dir)."""
    return {k: Path(v) for k, v in exported_artifacts.items()}


@pytest.fixture()
def cli():
    from edgecnn.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke
