"""Fixtures of the export tests: tiny Keras models built in the test, and calibration images."""

from __future__ import annotations

import numpy as np
import pytest

SIZE = 16


def build_model(classes: int = 3, channels: int = 3, seed: int = 0):
    """A 2-conv CNN at 16 px taking 0..255 pixels (rescaling in the graph), as edgecnn models do."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, channels), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny16")


@pytest.fixture(scope="session")
def tiny_model():
    return build_model()


@pytest.fixture(scope="session")
def pixels() -> np.ndarray:
    """40 random-but-structured uint8 images (smooth gradients + noise) at 16 px."""
    rng = np.random.default_rng(1)
    base = np.linspace(0, 255, SIZE, dtype=np.float32)
    imgs = []
    for i in range(40):
        g = np.stack(np.meshgrid(base, base[::-1]), -1).mean(-1) if i % 2 else np.outer(base, np.ones(SIZE))
        img = np.clip(g[..., None] * rng.uniform(0.3, 1.0, 3) + rng.normal(0, 20, (SIZE, SIZE, 3)), 0, 255)
        imgs.append(img)
    return np.stack(imgs).astype(np.uint8)


@pytest.fixture(scope="session")
def card_dict() -> dict:
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec

    card = ModelCard(labels=["a", "b", "c"], input=InputSpec(height=SIZE, width=SIZE, channels=3),
                     output=OutputSpec(units=3), name="tiny16", provenance={"source_sha256": "0" * 64})
    return card.to_dict()
