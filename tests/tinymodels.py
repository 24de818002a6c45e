"""Tiny real Keras models shared by the fixtures (one module name, unlike the several conftest.py files)."""

from __future__ import annotations

TINY_SIZE = 24


def build_tiny_model(num_classes: int, channels: int = 3, size: int = TINY_SIZE, seed: int | None = None,
                     name: str = "tiny"):
    """A 2-conv CNN taking 0..255 pixels (rescaling in the graph), as edgecnn models do."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)
