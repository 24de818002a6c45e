"""``edgecnn train --backend tensorflow|jax|torch --devices N`` for real, on CPU, on a learnable synthetic set.

Every run is a whole ``edgecnn train`` process (Keras fixes its backend at import), so each one also proves that
jax and torch training import no TensorFlow. Data-parallel runs use two CPU devices: JAX through
``XLA_FLAGS=--xla_force_host_platform_device_count=2``, TensorFlow through two logical CPU devices.
A model trained on JAX then exports through TensorFlow to every format and passes the parity gates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.modelcard import load_card
from edgecnn.synthetic import write_dataset
from edgecnn.training.backend import KERAS_BACKENDS

ACCURACY_FLOOR = 0.8
#: Runs the CLI in-process and reports whether TensorFlow got imported along the way.
_CLI = """
import json, sys
from edgecnn.cli import app
code = 0
try:
    app(sys.argv[1:], prog_name="edgecnn")
except SystemExit as exc:
    code = exc.code or 0
print("EDGECNN_TF_IMPORTED=" + json.dumps("tensorflow" in sys.modules))
sys.exit(code)
"""


@pytest.fixture(scope="module")
def learnable(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("backends") / "data", classes=3, per_class=30, size=20, seed=4)


def _train(data: Path, project: Path, name: str, backend: str, devices: int = 1, *extra: str):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "XLA_FLAGS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if backend == "jax" and devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    argv = ["train", "--data", str(data), "--img-size", "16", "--epochs", "6", "--batch", "16", "--test-split", "0.2",
            "--backend", backend, "--devices", str(devices), "--project", str(project), "--name", name, "--no-plots",
            *extra]
    proc = subprocess.run([sys.executable, "-c", _CLI, *argv], env=env, capture_output=True, text=True, timeout=600)
    return proc


_RUNS: dict[tuple[str, int], tuple[subprocess.CompletedProcess[str], Path]] = {}


@pytest.fixture(scope="module")
def trained(learnable, tmp_path_factory):
    """``trained(backend, devices)`` → (process, run folder), each run trained once per module."""
    project = tmp_path_factory.mktemp("backend-runs")

    def get(backend: str, devices: int = 1):
        key = (backend, devices)
        if key not in _RUNS:
            name = f"{backend}-{devices}"
            _RUNS[key] = (_train(learnable, project, name, backend, devices), project / name)
        return _RUNS[key]

    yield get
    _RUNS.clear()


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("backend", KERAS_BACKENDS)
def test_every_backend_trains_to_the_accuracy_floor(trained, backend):
    proc, run = trained(backend)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"Training with {backend}" in proc.stderr + proc.stdout  # the device line printed at the start
    tf_imported = json.loads(proc.stdout.split("EDGECNN_TF_IMPORTED=")[1].split()[0])
    assert tf_imported is (backend == "tensorflow")  # jax and torch never import TensorFlow
    metrics = _metrics(run)
    assert metrics["test_accuracy"] >= ACCURACY_FLOOR, metrics["test_accuracy"]
    training = metrics["training"]
    assert training["backend"] == backend and training["accelerator"] == "cpu"
    assert training["device_count"] >= 1 and training["devices_used"] == 1 and training["device_name"]
    assert training["distribution"] == {"strategy": "single-device", "devices": 1, "global_batch": 16,
                                        "per_device_batch": 16, "lr_scaling": "none"}
    assert training["train_images_per_second"] > 0
    card = load_card(run / "modelcard.json")
    assert card.provenance["training"]["backend"] == backend
    assert card.config["backend"] == backend and "backend = " in (run / "config.toml").read_text()
    for f in ("model.keras", "weights/best.keras", "weights/last.keras", "weights/state.json", "history.csv"):
        assert (run / f).is_file(), f


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_data_parallel_on_two_devices_reaches_single_device_accuracy(trained, backend):
    single_proc, single = trained(backend, 1)
    proc, run = trained(backend, 2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert single_proc.returncode == 0
    training = _metrics(run)["training"]
    strategy = {"jax": "keras.distribution.DataParallel", "tensorflow": "tf.distribute.MirroredStrategy"}[backend]
    assert training["devices_used"] == 2 and training["distribution"] == {
        "strategy": strategy, "devices": 2, "global_batch": 16, "per_device_batch": 8, "lr_scaling": "none"}
    dp_acc, single_acc = _metrics(run)["test_accuracy"], _metrics(single)["test_accuracy"]
    assert dp_acc >= ACCURACY_FLOOR and dp_acc >= single_acc - 0.1, (dp_acc, single_acc)
    assert load_card(run / "modelcard.json").provenance["training"]["distribution"]["devices"] == 2


def test_resume_on_another_backend(trained, learnable, tmp_path):
    """A checkpoint is a .keras file: a run started on jax continues on torch."""
    proc, run = trained("jax", 1)
    assert proc.returncode == 0
    import shutil

    copy = tmp_path / "runs" / "r"
    shutil.copytree(run, copy)
    (copy / "model.keras").unlink()
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    argv = ["train", "--resume", "--name", "r", "--project", str(tmp_path / "runs"), "--epochs", "7",
            "--backend", "torch", "--no-plots"]
    res = subprocess.run([sys.executable, "-c", _CLI, *argv], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    metrics = _metrics(copy)
    assert metrics["training"]["backend"] == "torch" and metrics["epochs_run"] == 7


def test_torch_on_two_devices_is_refused_in_one_line(train_cli, learnable):
    """This pytest process has Keras on TensorFlow: a torch run goes to a child process, whose error comes back."""
    import keras

    assert keras.backend.backend() == "tensorflow"
    res = train_cli("--data", learnable, "--img-size", "16", "--epochs", "1", "--backend", "torch", "--devices", "2")
    assert res.exit_code != 0
    assert "no data-parallel fit on PyTorch" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args, fragment", [
    (["--devices", "zero"], "Expected --devices N"),
    (["--devices", "3", "--batch", "16"], "divisible"),
    (["--backend", "mxnet"], "mxnet"),
])
def test_bad_backend_options(train_cli, learnable, args, fragment):
    res = train_cli("--data", learnable, "--epochs", "1", *args)
    assert res.exit_code != 0 and fragment in res.output, res.output
    assert "Traceback" not in res.output


def test_trained_on_jax_exports_through_tensorflow_and_passes_parity(trained, tmp_path):
    """One model, any origin: jax's model.keras → every format (TFLite, ONNX, SavedModel) with the parity gates.
    (Quantized exports of it go through the same converters; benchmarks/gpu_train.py also gates int8.)"""
    from typer.testing import CliRunner

    from edgecnn.cli import app

    proc, run = trained("jax", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = CliRunner().invoke(app, ["export", str(run), "--format", "all", "--quantize", "none",
                                   "--out", str(tmp_path / "export")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "export" / "export_report.json").read_text())
    assert report["checked"] and report["passed"]
    formats = {a["artifact"].rsplit(".", 1)[-1] for a in report["artifacts"]}
    assert {"tflite", "onnx"} <= formats and len(report["artifacts"]) >= 3  # TFLite, ONNX, SavedModel
    card = load_card(tmp_path / "export" / "model-float32.tflite")
    assert card.provenance["training"]["backend"] == "jax"
