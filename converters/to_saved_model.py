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
