"""``edgecnn export`` through the real CLI: artifacts, reports, golden, overwrite rules and every bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.modelcard import load_card

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_copy(tiny_run, tmp_path_factory):
    """A private copy of the tiny run (so tests can write SOURCE/export)."""
    dst = tmp_path_factory.mktemp("exportcli") / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def test_export_writes_artifacts_reports_and_golden(run_copy):
    res = invoke("export", run_copy, "-f", "tflite", "-f", "onnx", "--quantize", "none", "--quantize", "int8", "--calib-samples", "40")
    assert res.exit_code == 0, res.output
    out = run_copy / "export"
    names = {p.name for p in out.iterdir()}
    assert {"model-float32.tflite", "model-int8.tflite", "model-float32.onnx", "model-int8.onnx", "golden.npz",
            "export_report.json", "export_report.md"} <= names
    assert not [n for n in names if n.startswith(".")]
    report = json.loads((out / "export_report.json").read_text())
    assert report["checked"] and report["passed"]
    rows = {a["artifact"]: a for a in report["artifacts"]}
    int8 = rows["model-int8.tflite"]
    assert int8["agreement"] >= 0.98 and int8["passed"] and int8["size_ratio"] < 1.0
    assert rows["model-float32.tflite"]["max_abs"] <= 1e-4 and rows["model-float32.tflite"]["size_ratio"] == 1.0
    assert all(a["conversion_seconds"] > 0 and a["size_bytes"] > 0 for a in report["artifacts"])
    assert report["calibration"]["samples"] == 40 and report["calibration"]["source"].endswith("splits.json:train")
    assert report["check_data"]["source"].endswith("splits.json:test")
    assert any(c.startswith("edgecnn run ") for c in report["commands"])
    assert any(c.startswith("edgecnn bench ") for c in report["commands"])
    md = (out / "export_report.md").read_text()
    assert "model-int8.tflite" in md and "PASS" in md and "edgecnn bench" in md
    assert "model-int8.tflite" in res.output and "PASS" in res.output
    with np.load(out / "golden.npz") as z:
        assert z["inputs"].dtype == np.uint8 and z["inputs"].shape[1:] == (24, 24, 3)
        assert len(z["inputs"]) == len(z["outputs"]) == len(z["targets"]) <= 64
        assert list(z["labels"]) == ["alpha", "beta", "gamma"]

    # no overwrite without --force: exit non-zero, files untouched
    before = (out / "model-int8.tflite").stat().st_mtime_ns
    res = invoke("export", run_copy, "--quantize", "int8")
    assert res.exit_code != 0 and "--force" in res.output
    assert (out / "model-int8.tflite").stat().st_mtime_ns == before
    from edgecnn.modelcard import load_card

    assert load_card(out / "model-int8.tflite").input.dtype == "uint8"  # the default
    res = invoke("export", run_copy, "--quantize", "int8", "--force", "--io-dtype", "int8", "--calib-samples", "20")
    assert res.exit_code == 0, res.output
    assert load_card(out / "model-int8.tflite").input.dtype == "int8"


def test_export_keras_file_without_card_warns_and_uses_numeric_labels(run_copy, tmp_path, shapes_dir):
    model = tmp_path / "bare.keras"
    shutil.copy(run_copy / "model.keras", model)
    # --gate-consumer 0: this test is about the labels; tiny_run (area-resized training only) is not robust to
    # bilinear consumers on 32 px images, which tests/export/test_consumer_gate.py covers
    res = invoke("export", model, "--check-data", shapes_dir, "--out", tmp_path / "out", "--gate-consumer", "0")
    assert res.exit_code == 0, res.output
    from edgecnn.modelcard import load_card

    card = load_card(tmp_path / "out" / "model-float32.tflite")
    assert card.labels == ["class_0", "class_1", "class_2"]
    assert "WARNING" in res.output and "class_0" in res.output


def test_no_check_says_so(run_copy, tmp_path):
    res = invoke("export", run_copy, "--no-check", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "NOT" in res.output and "not checked" in res.output
    assert json.loads((tmp_path / "o" / "export_report.json").read_text())["checked"] is False


# ---------------------------------------------------------------------- bad input
def _assert_clean_failure(res, *needles, out=None):
    assert res.exit_code != 0
    # CliRunner keeps an escaped exception in res.exception (never in res.output): a clean failure is a SystemExit
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    for n in needles:
        assert n in res.output, res.output
    if out is not None:
        assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_missing_source(tmp_path):
    _assert_clean_failure(invoke("export", tmp_path / "nope"), "not found")


def test_source_not_keras(tmp_path):
    f = tmp_path / "model.txt"
    f.write_text("hello")
    _assert_clean_failure(invoke("export", f), "Keras", "model.txt")
    g = tmp_path / "broken.keras"
    g.write_bytes(b"not a zip")
    _assert_clean_failure(invoke("export", g, "--out", tmp_path / "o"), "broken.keras", out=tmp_path / "o")


def test_int8_with_saved_model_refused(run_copy, tmp_path):
    _assert_clean_failure(invoke("export", run_copy, "-f", "saved_model", "--quantize", "int8", "--out", tmp_path / "o"),
                          "saved_model", "int8", out=tmp_path / "o")


def test_io_dtype_without_int8_refused(run_copy, tmp_path):
    _assert_clean_failure(invoke("export", run_copy, "--quantize", "fp16", "--io-dtype", "uint8", "--out", tmp_path / "o"),
                          "--io-dtype", out=tmp_path / "o")


def test_unknown_format_dies_at_the_edge(run_copy):
    res = invoke("export", run_copy, "-f", "coreml")
    assert res.exit_code == 2 and "coreml" in res.output


def test_empty_calibration_folder(run_copy, tmp_path):
    (tmp_path / "calib" / "alpha").mkdir(parents=True)
    _assert_clean_failure(invoke("export", run_copy, "--quantize", "int8", "--calib-data", tmp_path / "calib", "--out", tmp_path / "o"),
                          "no images", out=tmp_path / "o")


def test_calibration_folder_with_other_classes(run_copy, tmp_path, shapes_dir):
    calib = tmp_path / "calib"
    for cls in ("alpha", "beta"):
        shutil.copytree(shapes_dir / cls, calib / cls)
    _assert_clean_failure(invoke("export", run_copy, "--quantize", "int8", "--calib-data", calib, "--out", tmp_path / "o"),
                          "2 classes", "3", out=tmp_path / "o")


def test_lambda_layer_refused_unless_unsafe(tmp_path, shapes_dir):
    import keras

    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    _assert_clean_failure(invoke("export", path, "--check-data", shapes_dir, "--out", tmp_path / "o"),
                          "Lambda", "--unsafe", out=tmp_path / "o")
    res = invoke("export", path, "--unsafe", "--check-data", shapes_dir, "--out", tmp_path / "o",
                 "--gate-consumer", "0")  # an untrained model: its near-tie answers hang on the resize
    assert res.exit_code == 0, res.output


def test_unconvertible_layer_is_named(tmp_path, shapes_dir):
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="edgecnn_tests")
    class ZetaLayer(keras.layers.Layer):
        def call(self, x):
            return tf.math.zeta(x + 2.0, x + 1.0)

    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255)(inputs))
    x = ZetaLayer(name="zeta_block")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    path = tmp_path / "zeta.keras"
    model.save(path)
    _assert_clean_failure(invoke("export", path, "--check-data", shapes_dir, "--out", tmp_path / "o"),
                          "zeta_block", "Zeta", out=tmp_path / "o")


def _blank_calibration(tmp_path):
    calib = tmp_path / "blank"
    for cls in ("alpha", "beta", "gamma"):
        (calib / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (32, 32), (0, 0, 0)).save(calib / cls / f"{i}.png")
    return calib


def test_calibrating_on_blank_images_fails_the_int8_gate_without_repair(run_copy, tmp_path):
    out = tmp_path / "o"
    res = invoke("export", run_copy, "--quantize", "int8", "--calib-data", _blank_calibration(tmp_path), "--out", out,
                 "--no-repair")
    assert res.exit_code != 0, res.output
    assert "Parity gate failed" in res.output and "model-int8.tflite" in res.output
    assert "Traceback" not in res.output
    report = json.loads((out / "export_report.json").read_text())
    assert report["passed"] is False
    row = report["artifacts"][0]
    assert not row["passed"] and row["failures"] and row["repair"] is None
    assert row["layer_errors"], "the report names the layers with the largest quantization error"
    assert "largest quantization error" in (out / "export_report.md").read_text()


def test_int8_that_fails_its_gate_repairs_itself(run_copy, tmp_path):
    """Calibrated on blank images, full int8 fails; export keeps the worst layers in float until the gate passes."""
    out = tmp_path / "o"
    res = invoke("export", run_copy, "--format", "tflite", "--format", "onnx", "--quantize", "int8", "--calib-data",
                 _blank_calibration(tmp_path), "--out", out)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "export_report.json").read_text())
    assert report["passed"] is True
    md = (out / "export_report.md").read_text()
    assert "## int8 repair" in md
    assert "## int8 settings" in md and "XNNPACK" in md and "U8S8" in md  # the chosen settings and why
    for row in report["artifacts"]:
        rep = row["repair"]
        assert row["passed"] and rep["passed"], row
        assert rep["full_int8"]["failures"], "the full-int8 attempt failed first"
        assert 1 <= len(rep["float_layers"]) <= 8
        assert rep["rounds"][-1]["passed"] and not any(r["passed"] for r in rep["rounds"][:-1])
        cost = rep["cost"]
        assert cost["size_bytes_repaired"] > 0 and cost["p50_ms_repaired"] > 0 and cost["p50_ms_full_int8"] > 0
        for layer in rep["float_layers"]:
            assert f"`{layer['layer']}`" in md
        card = load_card(out / Path(row["path"]).name)
        assert card.artifact["int8"]["float_nodes"], "the artifact's card records which layers stayed float"
        assert (out / Path(row["path"]).name).exists() and not (out / "rejected").exists()
    tfl = next(r for r in report["artifacts"] if r["format"] == "tflite")
    kept = load_card(out / "model-int8.tflite").artifact["int8"]["float_nodes"]
    assert all(f["node"] in kept for f in tfl["repair"]["float_layers"])


def test_io_dtype_applies_to_tflite_int8_only_when_onnx_int8_is_also_asked(run_copy, tmp_path):
    """--format all --quantize int8 --io-dtype uint8 used to crash with a ValueError traceback on the ONNX int8
    artifact (io_dtype was passed to every converter) and left a lone model-int8.tflite behind."""
    out = tmp_path / "o"
    res = invoke("export", run_copy, "-f", "tflite", "-f", "onnx", "--quantize", "int8", "--io-dtype", "int8",
                 "--calib-samples", "20", "--out", out)
    assert res.exit_code == 0, res.output
    from edgecnn.modelcard import load_card

    assert load_card(out / "model-int8.tflite").input.dtype == "int8"
    assert load_card(out / "model-int8.onnx").input.dtype == "float32"


def test_artifacts_are_world_readable_like_other_files(run_copy, tmp_path):
    """Converters wrote artifacts with mkstemp's 0600: a service user on the device could not read them."""
    import os
    import stat

    out = tmp_path / "o"
    res = invoke("export", run_copy, "-f", "tflite", "-f", "onnx", "-f", "saved_model", "--no-check", "--out", out)
    assert res.exit_code == 0, res.output
    umask = os.umask(0)
    os.umask(umask)
    want = 0o666 & ~umask
    for name in ("model-float32.tflite", "model-float32.onnx", "export_report.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == want, name
    assert stat.S_IMODE((out / "model-float32_saved_model").stat().st_mode) == 0o777 & ~umask


def test_interrupted_export_leaves_no_partial_folder(run_copy, tmp_path, monkeypatch):
    """Ctrl-C after the first artifact used to leave it without report/golden, blocking the next export.

    The interrupt is a real SIGINT sent at the fault point right after the first conversion (a watcher thread racing
    the converter was too late on a loaded machine, and the export then finished).
    """
    out = tmp_path / "o"
    monkeypatch.setenv("EDGECNN_FAULT_POINT", "export:converted")
    monkeypatch.setenv("EDGECNN_FAULT_SIGNAL", "INT")
    res = invoke("export", run_copy, "-f", "all", "--quantize", "all", "--calib-samples", "20", "--out", out)
    assert res.exit_code == 130, res.output
    assert "Traceback" not in res.output
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert not list(tmp_path.glob(".o.*")), "the staging folder is removed"


def test_bare_grayscale_keras_warning_says_grayscale(tmp_path):
    """The no-modelcard warning claimed RGB preprocessing for a 1-channel model (the card itself was grayscale)."""
    from edgecnn.modelcard import load_card

    from .conftest import build_model

    path = tmp_path / "gray.keras"
    build_model(classes=2, channels=1).save(path)
    res = invoke("export", path, "--no-check", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "grayscale/area preprocessing" in res.output and "RGB" not in res.output
    assert load_card(tmp_path / "o" / "model-float32.tflite").preprocessing.color == "grayscale"
