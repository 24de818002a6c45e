"""ONNX Runtime node placement (which provider ran each node) and the one-warning fallback of GPU providers.

This host has no GPU: the placement is read from a real profiled CPU session (the same code reads CUDA/TensorRT
placements on a GPU server), and a requested GPU provider that is not available is refused in one line.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.errors import ModelError
from edgecnn.runtime.backends import ONNXBackend, describe_placement


def test_first_inference_reports_the_provider_of_every_node(exported_artifacts, monkeypatch):
    monkeypatch.setattr(ONNXBackend, "profile_placement", True)
    be = ONNXBackend(exported_artifacts["onnx-float32"])
    assert be.info()["node_providers"] is None  # known after the first inference only
    x = np.zeros((1, *be.input.shape[1:]), np.uint8)
    first = be.predict(x)
    placement = be.info()["node_providers"]
    assert placement and set(placement) == {"CPUExecutionProvider"} and placement["CPUExecutionProvider"] >= 3
    assert describe_placement(placement).endswith("on CPUExecutionProvider")
    np.testing.assert_allclose(be.predict(x), first)  # profiling stopped; results unchanged
    assert be._profile_dir is None  # the profile file is gone


def test_cpu_only_session_is_not_profiled(exported_artifacts):
    be = ONNXBackend(exported_artifacts["onnx-float32"])
    be.predict(np.zeros((1, *be.input.shape[1:]), np.uint8))
    assert be.info()["providers"] == ["CPUExecutionProvider"] and be.info()["node_providers"] is None


def test_requesting_cuda_where_it_is_missing_is_one_clear_error(exported_artifacts):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this host has onnxruntime-gpu with CUDA")
    with pytest.raises(ModelError, match="CUDAExecutionProvider.*not available"):
        ONNXBackend(exported_artifacts["onnx-float32"], providers=["cuda", "cpu"])
