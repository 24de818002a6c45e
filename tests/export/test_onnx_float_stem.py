"""ONNX int8 keeps its stem in float as Conv → MaxPool → Relu: exactly the float graph's values, and onnxruntime
then quantizes after the Relu (it does not move the QuantizeLinear above it into a slow uint8 NCHW MaxPool)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from converters.graph import onnx_float_stem
from edgecnn.modelcard import load_card


@pytest.fixture(scope="module")
def onnx_pair(exported_artifacts) -> tuple[Path, Path]:
    return Path(exported_artifacts["onnx-float32"]), Path(exported_artifacts["onnx-int8"])


def _session(proto_or_path) -> ort.InferenceSession:
    data = proto_or_path.SerializeToString() if isinstance(proto_or_path, onnx.ModelProto) else str(proto_or_path)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def test_reordered_stem_computes_the_same_values(onnx_pair):
    fp32 = onnx.load(onnx_pair[0])
    reordered = onnx.load(onnx_pair[0])
    names = onnx_float_stem(reordered)
    ops = {n.name: n.op_type for n in reordered.graph.node}
    assert [ops[n] for n in names] == ["Conv", "MaxPool", "Relu"]
    order = [n.name for n in reordered.graph.node]
    assert order.index(names[0]) < order.index(names[1]) < order.index(names[2])
    onnx.checker.check_model(reordered)
    a, b = _session(fp32), _session(reordered)
    inp = a.get_inputs()[0]
    x = np.random.default_rng(0).integers(0, 256, (1, *inp.shape[1:]), dtype=np.uint8).astype(np.float32)
    np.testing.assert_allclose(b.run(None, {inp.name: x})[0], a.run(None, {inp.name: x})[0], rtol=1e-5, atol=1e-6)


def test_int8_artifact_runs_its_stem_in_float(onnx_pair):
    int8 = onnx.load(onnx_pair[1])
    card = load_card(onnx_pair[1])
    assert card.artifact["int8"]["float_stem"] is True
    nodes = list(int8.graph.node)
    conv = next(n for n in nodes if n.op_type == "Conv")
    weights = {t.name: t for t in int8.graph.initializer}
    assert weights[conv.input[1]].data_type == onnx.TensorProto.FLOAT  # not a DequantizeLinear of int8 weights
    pool = next(n for n in nodes if n.op_type == "MaxPool")
    relu = next(n for n in nodes if n.op_type == "Relu")
    assert pool.input[0] == conv.output[0] and relu.input[0] == pool.output[0]
    assert any(n.op_type == "QuantizeLinear" and n.input[0] == relu.output[0] for n in nodes)


def test_no_stem_no_change(onnx_pair):
    """A graph whose first Conv takes more than 4 channels (or has no Relu → MaxPool after it) is left alone."""
    proto = onnx.load(onnx_pair[0])
    before = proto.SerializeToString()
    assert onnx_float_stem(proto, max_channels=2) == []
    assert proto.SerializeToString() == before
