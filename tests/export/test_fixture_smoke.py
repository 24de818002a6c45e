"""The shared ``exported_artifacts`` fixture yields real, runnable, card-carrying artifacts."""

from __future__ import annotations

import numpy as np

from edgecnn.modelcard import load_card
from edgecnn.parity import load_golden
from edgecnn.runtime.backends import load_backend


def test_exported_artifacts_run_and_match_golden(exported_artifacts):
    assert {"tflite-float32", "tflite-float16", "tflite-int8", "onnx-float32", "onnx-int8", "golden", "dir"} <= set(
        exported_artifacts
    )
    golden = load_golden(exported_artifacts["golden"])
    assert golden.inputs.dtype == np.uint8 and 0 < len(golden.inputs) <= 64
    for key in ("tflite-float32", "onnx-float32"):
        with load_backend(exported_artifacts[key]) as backend:
            np.testing.assert_allclose(backend.predict(golden.inputs), golden.probs, atol=1e-4)
    card = load_card(exported_artifacts["tflite-int8"])
    assert card.artifact["precision"] == "int8" and card.input.dtype == "uint8"
    assert card.input.quantization is not None and card.input.quantization.scale > 0
