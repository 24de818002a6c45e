"""``edgecnn train`` end to end through Typer's CliRunner: real Keras training on tiny real image folders."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from edgecnn.modelcard import load_card, read_labels_txt
from edgecnn.runs import heldout_split, load_split
from edgecnn.synthetic import write_dataset

#: Options that keep a real training run to a few seconds on 2 CPU cores.
FAST = ["--img-size", "16", "--epochs", "2", "--batch", "16", "--no-plots", "--quiet"]

RUN_FILES = ("model.keras", "modelcard.json", "labels.txt", "config.toml", "splits.json", "history.csv",
             "metrics.json", "weights/best.keras", "weights/last.keras", "weights/state.json")
PLOTS = ("curves.png", "confusion_matrix.png", "augmented_samples.png", "model_summary.png")


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def _error(result, code, *fragments):
    assert result.exit_code == code, result.output
    # CliRunner keeps an escaped exception in result.exception, never in the output: a clean failure is a SystemExit
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Error:" in result.output and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


# ------------------------------------------------------------------------- bad input
def test_missing_folder(train_cli, tmp_path):
    _error(train_cli("--data", tmp_path / "nope", *FAST), 1, "not found")
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_folder_without_class_subfolders(train_cli, tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    _error(train_cli("--data", tmp_path / "flat", *FAST), 1, "sub-folder per class")


def test_single_class(train_cli, tmp_path):
    root = write_dataset(tmp_path / "one", classes=["only"], per_class=5, size=16)
    _error(train_cli("--data", root, *FAST), 1, "at least 2 class", "only")


def test_class_without_readable_image(train_cli, tmp_path):
    root = write_dataset(tmp_path / "d", classes=["a", "b"], per_class=6, size=16)
    (root / "c").mkdir()
    (root / "c" / "broken.png").write_bytes(b"\x89PNG nope")
    (root / "c" / "readme.txt").write_text("x")
    _error(train_cli("--data", root, *FAST), 1, "['c']", "no readable image")


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["--img-size", "0"], 2, ["positive --img-size"]),  # a value out of range: usage error
        (["--arch", "simpel"], 2, ["Unknown arch", "Did you mean 'simple'"]),
        (["--preset", "mnsit"], 2, ["Did you mean 'mnist'"]),
        (["--channels", "4"], 2, ["--channels 1 or 3"]),  # a usage error (issue 25)
        (["--dataset", "digits"], 2, ["not both"]),
    ],
)
def test_bad_options(train_cli, shapes_dir, args, code, fragments):
    _error(train_cli("--data", shapes_dir, "--quiet", *args), code, *fragments)


def test_unknown_flag_suggests(train_cli, shapes_dir):
    result = train_cli("--data", shapes_dir, "--epoch", "3")
    assert result.exit_code == 2 and "--epochs" in result.output


def test_unknown_key_in_config_file(train_cli, shapes_dir, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nepocs = 3\n", encoding="utf-8")
    _error(train_cli("--data", shapes_dir, "--config", cfg), 2, "epocs", "Did you mean 'epochs'")


def test_strict_fails_on_corrupt_files(train_cli, mixed_dir, tmp_path):
    _error(train_cli("--data", mixed_dir, "--strict", *FAST), 1, "--strict", "unreadable")
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------- real runs
def test_mixed_folder_trains_and_reports_skipped(train_cli, mixed_dir, tmp_path):
    result = _ok(train_cli("--data", mixed_dir, "--channels", "3", "--name", "mixed", "--img-size", "16",
                           "--epochs", "2", "--batch", "8", "--no-plots"))
    run = tmp_path / "runs" / "mixed"
    assert "Skipped 2 unreadable" in result.output and "empty.png" in result.output and "truncated.png" in result.output
    assert f"Run folder: {run}" in result.output and "accuracy:" in result.output
    assert re.search(r"^\s*2/2 ", result.output, re.M) and "ETA" in result.output  # progress: one row per epoch
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["skipped_files"] == 2 and sorted(metrics["skipped"]) == ["ng/truncated.png", "ok/empty.png"]
    card = load_card(run)
    assert card.labels == ["ng", "ok"] and card.output.activation == "sigmoid" and card.output.units == 1
    assert card.dataset["skipped_files"] == 2


def test_accuracy_floor_and_complete_run_folder(train_cli, tmp_path):
    import keras

    root = write_dataset(tmp_path / "learn", classes=4, per_class=40, size=20, seed=7)
    result = _ok(train_cli("--data", root, "--img-size", "20", "--arch", "simple", "--filters", "8",
                           "--dense-units", "32", "--epochs", "12", "--batch", "16", "--lr", "0.003",
                           "--lr-schedule", "cosine", "--patience", "4", "--top-k", "2", "--hflip", "--rotation", "5",
                           "--class-weights", "--name", "floor", "--test-split", "0.2"))
    run = tmp_path / "runs" / "floor"
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test_accuracy"] >= 0.9, metrics["test_accuracy"]
    assert f"Test accuracy: {metrics['test_accuracy']:.4f}" in result.output
    for split in ("train", "val", "test"):
        assert 0 <= metrics[f"{split}_accuracy"] <= 1 and 0 <= metrics[f"{split}_top2_accuracy"] <= 1
    assert set(metrics["test"]["per_class"]) == {"c0", "c1", "c2", "c3"}
    assert {"precision", "recall", "f1", "support"} <= set(metrics["test"]["per_class"]["c0"])
    cm = np.asarray(metrics["test"]["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == metrics["test"]["num_images"] == 32
    for name in RUN_FILES + PLOTS:
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    assert (run / "augmented_samples.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((run / "history.csv").open(encoding="utf-8")))
    assert rows and {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(rows[0])
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[-1] < lrs[0]  # cosine schedule applied
    # the saved model is the inference graph: no augmentation layers, rescaling inside, same accuracy
    model = keras.models.load_model(run / "model.keras")
    assert not any(type(layer).__name__.startswith("Random") for layer in model.layers)
    test = heldout_split(run)
    from edgecnn.imaging import load_image

    x = np.stack([load_image(f, 20, 20, "rgb", "area") for f in test.files]).astype(np.float32)
    acc = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == np.asarray(test.targets)))
    assert acc == pytest.approx(metrics["test_accuracy"])
    card = load_card(run / "model.keras")
    assert card.input_shape == (20, 20, 3) and card.preprocessing.resize == "area"
    assert card.architecture == "simple" and card.config["lr_schedule"] == "cosine"
    assert card.artifact["precision"] == "float32"  # a registry name (it said "fp32", which parity gated as int8)
    assert card.provenance["versions"]["tensorflow"] and card.provenance["edgecnn_version"]
    assert card.metrics["test_accuracy"] == metrics["test_accuracy"]
    assert read_labels_txt(run / "labels.txt") == ["c0", "c1", "c2", "c3"]


def test_existing_name_exist_ok_and_resume(train_cli, small_dir, tmp_path):
    args = ["--data", small_dir, *FAST, "--name", "r", "--patience", "0"]
    _ok(train_cli(*args))
    run = tmp_path / "runs" / "r"
    _error(train_cli(*args), 1, "already exists", "--exist-ok", "--resume")
    state = json.loads((run / "weights" / "state.json").read_text(encoding="utf-8"))
    assert state["epoch"] == 2
    split_before = (run / "splits.json").read_text(encoding="utf-8")
    # resume continues from epoch 2 up to the new --epochs, with the same splits and the saved config
    result = _ok(train_cli("--resume", "--name", "r", "--epochs", "3", "--quiet"))
    assert f"Run folder: {run}" in result.output
    rows = list(csv.DictReader((run / "history.csv").open(encoding="utf-8")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert (run / "splits.json").read_text(encoding="utf-8") == split_before
    assert "epochs = 3" in (run / "config.toml").read_text(encoding="utf-8")
    # --exist-ok starts over in the same folder
    _ok(train_cli(*args, "--exist-ok", "--epochs", "1"))
    rows = list(csv.DictReader((run / "history.csv").open(encoding="utf-8")))
    assert [int(r["epoch"]) for r in rows] == [1]
    # auto-named runs never collide
    _ok(train_cli("--data", small_dir, *FAST, "--epochs", "1"))
    _ok(train_cli("--data", small_dir, *FAST, "--epochs", "1"))
    assert (tmp_path / "runs" / "exp").is_dir() and (tmp_path / "runs" / "exp2").is_dir()


def test_resume_without_checkpoint(train_cli, tmp_path):
    _error(train_cli("--resume", "--name", "ghost"), 2, "Nothing to resume")


def test_utf8_labels_test_folder_and_small_data_warning(train_cli, tmp_path):
    letters = ["أ", "ب", "ت"]
    root = write_dataset(tmp_path / "ar", classes=letters, per_class=6, size=16)
    test_root = write_dataset(tmp_path / "ar_test", classes=letters, per_class=2, size=16, seed=5)
    cfg = tmp_path / "ar.toml"
    cfg.write_text('[model]\narch = "dsconv"\nfilters = 4\n[train]\nlabel_smoothing = 0.1\n', encoding="utf-8")
    result = _ok(train_cli("--data", root, "--test-data", test_root, "--config", cfg, "--channels", "1",
                           "--img-size", "16", "--epochs", "1", "--batch", "64", "--name", "ar", "--no-plots",
                           "--mixed-precision"))
    assert "fewer than one batch" in result.output
    assert "--mixed-precision needs a GPU" in result.output
    run = tmp_path / "runs" / "ar"
    assert read_labels_txt(run / "labels.txt") == sorted(letters)
    assert load_card(run).labels == sorted(letters)
    splits = json.loads((run / "splits.json").read_text(encoding="utf-8"))
    assert splits["test_root"] == str(test_root.resolve()) and len(splits["test"]) == 6
    assert splits["labels"] == sorted(letters) and splits["train"][0][0].split("/")[0] in letters
    assert len(load_split(run, "test").files) == 6
    assert load_card(run).config["arch"] == "dsconv" and load_card(run).input.channels == 1


def test_builtin_digits(train_cli, tmp_path):
    result = _ok(train_cli("--dataset", "digits", "--img-size", "8", "--channels", "1", "--epochs", "1",
                           "--no-plots", "--quiet", "--name", "digits"))
    run = tmp_path / "runs" / "digits"
    assert "Test accuracy" in result.output
    card = load_card(run)
    assert card.labels == [str(i) for i in range(10)] and card.dataset["num_images"] == 1797
    test = heldout_split(run)
    assert test is not None and all(f.is_file() for f in test.files)


@pytest.mark.parametrize(
    ("preset", "classes"),
    [("mnist", 3), ("arabic-letters", ["ا", "ب", "ت"]), ("fan-aoi", ["GO", "NG"]), ("emotion-lenet", 7)],
)
def test_every_preset_trains(train_cli, tmp_path, preset, classes):
    root = write_dataset(tmp_path / "d", classes=classes, per_class=5, size=24, seed=2)
    _ok(train_cli("--preset", preset, "--data", root, "--epochs", "1", "--batch", "8", "--no-plots", "--quiet",
                  "--name", preset))
    card = load_card(tmp_path / "runs" / preset)
    assert card.config["preset"] == preset and card.architecture == card.config["arch"]
    if preset == "fan-aoi":
        assert card.output.activation == "sigmoid" and card.input_shape == (80, 80, 3)
    if preset == "emotion-lenet":
        metrics = json.loads((tmp_path / "runs" / preset / "metrics.json").read_text(encoding="utf-8"))
        assert "test_top3_accuracy" in metrics and card.input_shape == (48, 48, 1)


def test_help_lists_registries(runner):
    from edgecnn.cli import app
    from edgecnn.training import preset_names
    from edgecnn.training.architectures import ARCHITECTURES

    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name in [*ARCHITECTURES, *preset_names()]:
        assert name in text, name


def test_exist_ok_removes_the_previous_runs_outputs(train_cli, small_dir, tmp_path):
    """--exist-ok kept the old run's export/ and plots beside the new model (stale artifacts of another model)."""
    args = ["--data", small_dir, *FAST, "--epochs", "1", "--name", "r"]
    _ok(train_cli(*args))
    run = tmp_path / "runs" / "r"
    (run / "export").mkdir()
    (run / "export" / "model-float32.tflite").write_bytes(b"old model")
    (run / "curves.png").write_bytes(b"old plot")
    (run / "notes.txt").write_text("mine")
    _ok(train_cli(*args, "--exist-ok"))
    assert not (run / "export").exists() and not (run / "curves.png").exists()
    assert (run / "notes.txt").read_text() == "mine"  # files edgecnn did not write are left alone
    for name in RUN_FILES:
        assert (run / name).exists(), name


def test_ctrl_c_during_training_leaves_a_resumable_run(train_cli, small_dir, tmp_path):
    """Ctrl-C: exit 130, one line, no model.keras, and the hint names the epoch that --resume starts from."""
    import _thread
    import re
    import threading
    import time

    run = tmp_path / "runs" / "c"
    stop = threading.Event()

    def interrupt_after_first_epoch() -> None:
        while not stop.is_set():
            if (run / "weights" / "state.json").exists():
                _thread.interrupt_main()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=interrupt_after_first_epoch, daemon=True)
    watcher.start()
    try:
        res = train_cli("--data", small_dir, "--img-size", "16", "--epochs", "200", "--patience", "0", "--batch", "16",
                        "--no-plots", "--name", "c")
    finally:
        stop.set()
        watcher.join()
    assert res.exit_code == 130, res.output
    assert "Traceback" not in res.output and not (run / "model.keras").exists()
    saved = json.loads((run / "weights" / "state.json").read_text(encoding="utf-8"))["epoch"]
    m = re.search(r"epoch (\d+) is saved", res.output)
    assert m and int(m.group(1)) == saved, res.output
    assert "--resume --name c" in res.output
