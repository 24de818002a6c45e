"""Round trip of every (format, precision) in the converters registry on a tiny model built here:
convert → run the artifact with its real runtime → compare with Keras; the embedded card reads back."""

from __future__ import annotations

import numpy as np
import pytest

import converters
from converters.registry import (
    FORMATS,
    PRECISIONS,
    artifact_name,
    fits,
    parse_artifact_name,
    precision_name,
    targets,
)
from edgecnn.modelcard import load_card

# how close each precision must stay to Keras on these inputs (probabilities)
TOLERANCE = {"float32": 1e-5, "float16": 5e-3, "dynamic": 5e-2, "int8": 5e-2}


def _run(path, fmt, x):
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # keep a reference: its variables die with it
        return np.asarray(loaded.serve(tf.constant(x.astype(np.float32))))
    from edgecnn.runtime.backends import load_backend

    with load_backend(path) as backend:
        return backend.predict(x)


@pytest.mark.parametrize(("fmt", "precision"), targets(), ids=[f"{f}-{p}" for f, p in targets()])
def test_roundtrip(fmt, precision, tiny_model, pixels, card_dict, tmp_path):
    path = tmp_path / artifact_name(fmt, precision)
    done = converters.convert(tiny_model, fmt, precision, path, calibration=pixels[:30], metadata=card_dict,
                              labels=["a", "b", "c"])
    assert path.exists() and done.size_bytes > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
    x = pixels[30:]
    ref = np.asarray(tiny_model(x.astype(np.float32), training=False))
    got = _run(path, fmt, x)
    np.testing.assert_allclose(got, ref, atol=TOLERANCE[precision])
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.9

    card = load_card(path)
    assert card is not None and card.labels == ["a", "b", "c"]
    assert card.artifact["format"] == fmt and card.artifact["precision"] == precision
    assert card.provenance["source_sha256"] == "0" * 64
    # the card describes the real input tensor
    assert card.input.dtype == done.inputs[0]["dtype"]
    if fmt == "tflite" and precision == "int8":
        # uint8 I/O by default (what MediaPipe and cameras take), the input's range pinned to the raw pixel bytes
        assert card.input.dtype == "uint8" and card.output.dtype == "uint8"
        assert (card.input.quantization.scale, card.input.quantization.zero_point) == (1.0, 0)
        assert card.input.quantization is not None and card.output.quantization is not None
        assert card.input.quantization.scale == pytest.approx(done.inputs[0]["quantization"]["scale"])
    else:
        assert card.input.dtype == "float32" and card.input.quantization is None
    if fmt == "onnx":
        import onnx

        model = onnx.load(path)
        onnx.checker.check_model(model)
        assert card.artifact["opset"] == 17
        assert {p.key for p in model.metadata_props} >= {"edgecnn.modelcard", "labels"}
        if precision == "int8":
            ops = {n.op_type for n in model.graph.node}
            assert {"QuantizeLinear", "DequantizeLinear"} <= ops


@pytest.mark.parametrize("io_dtype", ["int8", "float32"])
def test_int8_io_dtype(io_dtype, tiny_model, pixels, card_dict, tmp_path):
    done = converters.convert(tiny_model, "tflite", "int8", tmp_path / "m.tflite", calibration=pixels,
                              metadata=card_dict, options=converters.ConvertOptions(io_dtype=io_dtype))
    assert done.inputs[0]["dtype"] == io_dtype and done.outputs[0]["dtype"] == io_dtype
    card = load_card(done.path)
    assert card.artifact["io_dtype"] == io_dtype and card.input.dtype == io_dtype
    ref = np.asarray(tiny_model(pixels.astype(np.float32), training=False))
    from edgecnn.runtime.backends import load_backend

    with load_backend(done.path) as backend:
        np.testing.assert_allclose(backend.predict(pixels), ref, atol=5e-2)


def test_onnx_dynamic_batch(tiny_model, pixels, card_dict, tmp_path):
    done = converters.convert(tiny_model, "onnx", "float32", tmp_path / "m.onnx", metadata=card_dict,
                              options=converters.ConvertOptions(dynamic_batch=True, opset=15))
    assert done.inputs[0]["shape"][0] is None
    import onnxruntime as ort

    sess = ort.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": pixels[:7].astype(np.float32)})[0]
    assert out.shape == (7, 3)
    assert load_card(done.path).artifact["opset"] == 15


def test_registry_is_the_one_table():
    from edgecnn.cli.export import FormatChoice, QuantizeChoice

    assert {c.value for c in FormatChoice} == {*FORMATS, "all"}
    assert {c.value for c in QuantizeChoice} == {p.alias for p in PRECISIONS.values()} | {"all"}
    assert precision_name("none") == "float32" and precision_name("fp16") == "float16"
    assert fits("tflite", "int8") and not fits("saved_model", "int8") and not fits("onnx", "fp16")
    assert artifact_name("tflite", "int8") == "model-int8.tflite"
    assert artifact_name("onnx", "none") == "model-float32.onnx"


def test_convert_rejects_bad_requests(tiny_model, pixels, tmp_path):
    with pytest.raises(ValueError, match="saved_model cannot be written in int8"):
        converters.convert(tiny_model, "saved_model", "int8", tmp_path / "x", calibration=pixels)
    with pytest.raises(converters.CalibrationError, match="calibration"):
        converters.convert(tiny_model, "tflite", "int8", tmp_path / "x.tflite")
    with pytest.raises(converters.CalibrationError, match="shape"):
        converters.convert(tiny_model, "tflite", "int8", tmp_path / "x.tflite", calibration=pixels[:, :8])
    with pytest.raises(ValueError, match="io_dtype"):
        converters.convert(tiny_model, "tflite", "float16", tmp_path / "x.tflite",
                           options=converters.ConvertOptions(io_dtype="uint8"))
    assert not list(tmp_path.iterdir())


def test_converters_never_imports_edgecnn():
    import subprocess
    import sys

    code = ("import sys, converters, converters.to_tflite, converters.to_onnx, converters.to_saved_model, "
            "converters.metadata; bad = [m for m in sys.modules if m == 'edgecnn' or m.startswith('edgecnn.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(converters.__file__).parents[1]))


@pytest.mark.parametrize(("fmt", "precision"), targets(), ids=[f"{f}-{p}" for f, p in targets()])
def test_artifact_names_read_back_through_the_registry(fmt, precision):
    """bench and export read a file's (format, precision) from its name with the registry, not private tables."""
    assert parse_artifact_name(artifact_name(fmt, precision)) == (fmt, precision)
    assert parse_artifact_name(artifact_name(fmt, precision, stem="cat-dog")) == (fmt, precision)


def test_names_outside_the_registry_are_not_guessed():
    assert parse_artifact_name("model-fp16.tflite") is None and parse_artifact_name("model.tflite") is None
