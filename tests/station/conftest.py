"""Station fixtures: the shared exported int8 model (tests/conftest.py), streams served on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def int8_model(exported_artifacts) -> Path:
    return Path(exported_artifacts["tflite-int8"])
