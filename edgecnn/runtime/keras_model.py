"""The one Keras model loader (train, evaluate, parity, bench and export use it), imported lazily.

Keras is imported only inside these functions (rule 2): the edge side never pays for it unless a
``.keras`` model is actually run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import ModelError, require
from edgecnn.metrics import class_probs

#: Format name of a Keras model (the ``keras`` backend runs it).
KERAS_FORMAT = "keras"
#: File suffixes of Keras models.
KERAS_SUFFIXES = (".keras", ".h5")


def load_keras(path: str | Path, unsafe: bool = False, purpose: str = "to load Keras models") -> Any:
    """Load a Keras model with ``safe_mode`` on (Lambda layers refused unless ``unsafe``), uncompiled.

    Raises:
        MissingDependencyError: TensorFlow/Keras is not installed (``purpose`` says what for).
        ModelError: not a Keras model, a Lambda layer without ``unsafe``, or an unknown custom layer (named).
    """
    import zipfile

    path = Path(path)
    require("tensorflow", "train", purpose)
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise ModelError(f"{path.name} is not a loadable Keras model: a .keras file is a zip archive and this one "
                         f"is not ({path.stat().st_size} bytes; truncated or another format?).")
    import keras

    from converters.qat import register

    register()  # a quantization-aware model (export --qat-epochs) holds edgecnn's fake-quantization layers
    try:
        return keras.models.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as exc:  # noqa: BLE001  (Keras raises ValueError, TypeError, OSError, zipfile errors...)
        msg = str(exc)
        first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
        if "safe_mode" in msg or "Lambda" in msg:
            raise ModelError(
                f"{path.name} contains a Lambda layer (arbitrary Python code); refusing to load it with safe_mode. "
                "Pass --unsafe only if you trust this file."
            ) from exc
        m = re.search(r"Could not (?:locate|deserialize) (?:class|function) '?([\w.]+)'?", msg)
        if m:
            raise ModelError(
                f"{path.name} uses layer class {m.group(1)!r}, which this Keras cannot build (custom layer not "
                "registered); export it from the code that defines it, or replace the layer."
            ) from exc
        raise ModelError(f"{path.name} is not a loadable Keras model: {first[:200]}") from exc


def keras_probs(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Keras class probabilities for uint8 NHWC inputs (the model called on batches, inference mode)."""
    import keras  # the model is a Keras model: Keras is loaded; convert_to_numpy also takes torch/jax device tensors

    outs = [keras.ops.convert_to_numpy(model(x[i : i + batch].astype(np.float32), training=False))
            for i in range(0, len(x), batch)]
    return class_probs(np.concatenate(outs))
