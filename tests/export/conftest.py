"""Fixtures of the export tests: tiny Keras models built in the test, and calibration images."""

from __future__ import annotations

import numpy as np
import pytest

SIZE = 16


def build_model(classes: int = 3, channels: int = 3, seed: int = 0):
    """The shared tiny CNN (tests/conftest.py) at 16 px."""
    from tinymodels import build_tiny_model

    return build_tiny_model(classes, channels, size=SIZE, seed=seed, name="tiny16")


@pytest.fixture(scope="session")
def tiny_model():
    return build_model()


@pytest.fixture(scope="session")
def pixels() -> np.ndarray:
    """40 random-but-structured uint8 images (smooth gradients + noise) at 16 px."""
    from tinymodels import structured_pixels

    return structured_pixels(40, SIZE)


@pytest.fixture(scope="session")
def card_dict() -> dict:
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec

    card = ModelCard(labels=["a", "b", "c"], input=InputSpec(height=SIZE, width=SIZE, channels=3),
                     output=OutputSpec(units=3), name="tiny16", provenance={"source_sha256": "0" * 64})
    return card.to_dict()
