"""Keras backend: the original ``.keras`` model, the reference for parity and debugging (Keras imported lazily)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgecnn.runtime.backends.base import Backend, TensorInfo
from edgecnn.runtime.keras_model import KERAS_FORMAT, KERAS_SUFFIXES


class KerasBackend(Backend):
    """The original Keras model, imported lazily: the reference for parity and debugging."""

    name = KERAS_FORMAT
    suffixes = KERAS_SUFFIXES
    extra = "train"
    modules = ("keras",)

    def __init__(self, path: str | os.PathLike[str], *args: Any, unsafe: bool = False, **kwargs: Any) -> None:
        self.unsafe = unsafe
        super().__init__(path, *args, **kwargs)

    def _load(self) -> None:
        from edgecnn.runtime.keras_model import load_keras

        self.model = load_keras(self.path, unsafe=self.unsafe, purpose="to run .keras models")
        import keras

        shape = tuple(self.model.inputs[0].shape)
        self.input = TensorInfo("image", (None,) + tuple(int(v) for v in shape[1:]), np.dtype("float32"))
        self.output = TensorInfo("output", tuple(self.model.outputs[0].shape), np.dtype("float32"))
        self.output_shapes = [tuple(t.shape) for t in self.model.outputs]
        self._keras = keras

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(prepared, training=False))

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "runtime": "keras", "runtime_version": self._keras.__version__,
                "threads": self.threads, "delegate": None, "provider": None}
