"""Keras → TensorFlow SavedModel via ``model.export`` (Keras 3), written to a temp folder then renamed."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from converters.to_tflite import conversion_error


def export(model: Any, folder: Path) -> None:
    """Write the SavedModel (``serve`` endpoint) into ``folder`` (which must not exist yet)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the endpoint summary
            model.export(str(folder), format="tf_saved_model", verbose=False)
    except Exception as exc:  # noqa: BLE001
        raise conversion_error(model, exc, "SavedModel") from exc


def tensor_details(model: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ins = [{"name": "image", "shape": [None, *[int(v) for v in model.inputs[0].shape[1:]]], "dtype": "float32",
            "quantization": None}]
    outs = [{"name": "output", "shape": [None, *[int(v) for v in model.outputs[0].shape[1:]]], "dtype": "float32",
             "quantization": None}]
    return ins, outs


def predict(folder: Path, x: Any, batch: int = 64) -> tuple[Any, str]:
    """Raw outputs of a SavedModel's ``serve`` endpoint on NHWC pixels 0..255, and the TensorFlow version that ran it."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    outs = [np.asarray(loaded.serve(tf.constant(np.asarray(x[i : i + batch], dtype=np.float32))))
            for i in range(0, len(x), batch)]
    return np.concatenate(outs).reshape(len(x), -1), tf.__version__
