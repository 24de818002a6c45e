"""Bad inputs a new user types, each through the real CLI (in-process Typer app; the kill/rlimit cases are in
``test_faults.py``): one ``Error:`` line, the documented exit code (2 usage, 1 failure), no traceback, every input
byte-identical afterwards, and nothing half-written left behind.

``BAD_INPUTS`` is the table; its length is the count reported for issue 10 (``test_the_table_counts``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app

from .conftest import Snapshot


@dataclass
class P:
    """The paths a case may use (all private copies in tmp_path)."""

    tmp: Path
    model: Path  # a .tflite with its card
    onnx: Path
    golden: Path  # the golden.npz exported with ``model``
    other_golden: Path  # same shape, made from another model
    images: Path  # class folders of PNGs
    image: Path  # one PNG inside ``images``
    run: Path  # a run folder (model.keras, splits.json, modelcard.json)
    prev_csv: Path  # a previous run's result CSV (other columns)
    text_file: Path  # a plain file
    report_json: Path  # an earlier bench report


# (id, argv, exit code, words the error line must hold)
BAD_INPUTS: list[tuple[str, object, int, tuple[str, ...]]] = [
    # ---- edgecnn run: outputs that are inputs (the model, a source image or folder, each other)
    ("run-csv-is-model", lambda p: ["run", p.model, "-s", p.images, "--save-csv", p.model], 2, ("same file", "MODEL")),
    ("run-jsonl-is-model", lambda p: ["run", p.model, "-s", p.images, "--save-jsonl", p.model], 2, ("same file",)),
    ("run-csv-is-source-image", lambda p: ["run", p.model, "-s", p.image, "--save-csv", p.image], 2, ("same file", "--source")),
    ("run-csv-is-image-in-source", lambda p: ["run", p.model, "-s", p.images, "--save-csv", p.image], 2, ("--source",)),
    ("run-csv-equals-jsonl", lambda p: ["run", p.model, "-s", p.images, "--save-csv", p.tmp / "r.x",
                                        "--save-jsonl", p.tmp / "r.x"], 2, ("same path",)),
    ("run-csv-symlink-to-model", lambda p: ["run", p.model, "-s", p.images, "--save-csv", _symlink(p, p.model)], 2,
     ("same file",)),
    ("run-csv-hardlink-to-model", lambda p: ["run", p.model, "-s", p.images, "--save-csv", _hardlink(p, p.model)], 2,
     ("same file",)),
    ("run-csv-via-dotdot", lambda p: ["run", p.model, "-s", p.images, "--save-csv",
                                      p.images / ".." / p.model.parent.name / p.model.name], 2, ("same file",)),
    ("run-save-is-source", lambda p: ["run", p.model, "-s", p.images, "--save", p.images], 2, ("--source",)),
    ("run-save-inside-source", lambda p: ["run", p.model, "-s", p.images, "--save", p.images / "annotated"], 2,
     ("inside the input folder",)),
    ("run-save-is-model", lambda p: ["run", p.model, "-s", p.images, "--save", p.model], 2, ("same file",)),
    ("run-csv-glob-match", lambda p: ["run", p.model, "-s", str(p.images / "*" / "*.png"), "--save-csv", p.image], 2,
     ("same file",)),
    ("run-csv-other-columns", lambda p: ["run", p.model, "-s", p.images, "--save-csv", p.prev_csv], 2,
     ("other columns", "new file")),
    ("run-jsonl-not-jsonl", lambda p: ["run", p.model, "-s", p.images, "--save-jsonl", p.text_file], 2,
     ("not an edgecnn JSON-lines",)),
    ("run-csv-is-folder", lambda p: ["run", p.model, "-s", p.images, "--save-csv", p.tmp], 1, ("is a folder",)),
    ("run-csv-under-file", lambda p: ["run", p.model, "-s", p.images, "--save-csv", p.text_file / "x.csv"], 1,
     ("not a folder",)),
    ("run-save-is-file", lambda p: ["run", p.model, "-s", p.images, "--save", p.text_file], 1, ("is a file",)),
    ("run-camera-negative", lambda p: ["run", p.model, "--camera", "-3"], 2, ()),
    ("run-nothing-readable", lambda p: ["run", p.model, "-s", _unreadable(p)], 1, ("Nothing was classified", "unreadable")),
    # ---- edgecnn devices service: fields that would break or inject into the unit
    ("service-user-newline", lambda p: ["devices", "service", p.model, "--user", "pi\nExecStartPre=/bin/sh -c id"], 2,
     ("control characters",)),
    ("service-source-newline", lambda p: ["devices", "service", p.model, "--source", "rtsp://cam/x\nUser=root"], 2,
     ("control characters",)),
    ("service-user-syntax", lambda p: ["devices", "service", p.model, "--user", "pi;rm -rf"], 2, ("account name",)),
    ("service-camera-negative", lambda p: ["devices", "service", p.model, "--camera", "-3"], 2, ()),
    ("service-args-unknown-flag", lambda p: ["devices", "service", p.model, "--args", "--bogus-flag 3"], 2,
     ("not valid for `edgecnn run`", "bogus")),
    ("service-args-bad-value", lambda p: ["devices", "service", p.model, "--args", "--top-k 0"], 2, ("--top-k",)),
    ("service-args-threshold", lambda p: ["devices", "service", p.model, "--args", "--threshold 2"], 2,
     ("--threshold",)),
    ("service-args-sets-source", lambda p: ["devices", "service", p.model, "--args", "--source /tmp/x"], 2,
     ("must not set --source",)),
    ("service-args-output-is-model", lambda p: ["devices", "service", p.model, "--args", f"--save-csv {p.model}"], 2,
     ("same file",)),
    ("service-args-newline", lambda p: ["devices", "service", p.model, "--args", "--top-k 2\nUser=root"], 2,
     ("control characters",)),
    ("service-password-to-stdout", lambda p: ["devices", "service", p.model, "--source", "rtsp://u:secret@cam/x"], 2,
     ("password", "--output")),
    ("service-output-is-model", lambda p: ["devices", "service", p.model, "-o", p.model], 2, ("same file",)),
    # ---- edgecnn export
    ("export-out-is-model", lambda p: ["export", p.run / "model.keras", "--out", p.run / "model.keras"], 2, ("same file",)),
    ("export-out-in-check-data", lambda p: ["export", p.run, "--check-data", p.images, "--out", p.images / "o"], 2,
     ("inside the input folder",)),
    ("export-out-is-file", lambda p: ["export", p.run, "--out", p.text_file], 1, ("is a file",)),
    ("export-gate-agreement-above-1", lambda p: ["export", p.run, "--out", p.tmp / "o", "--gate-int8-agreement", "1.01"],
     2, ("--gate-int8-agreement", "between 0 and 1")),
    ("export-gate-drop-negative", lambda p: ["export", p.run, "--out", p.tmp / "o", "--gate-int8-acc-drop", "-1"], 2,
     ("--gate-int8-acc-drop",)),
    ("export-gate-max-abs-2", lambda p: ["export", p.run, "--out", p.tmp / "o", "--gate-fp32-max-abs", "2"], 2,
     ("--gate-fp32-max-abs",)),
    # ---- edgecnn parity
    ("parity-json-is-golden", lambda p: ["parity", p.model, "--golden", p.golden, "--json", p.golden], 2, ("same file",)),
    ("parity-json-is-candidate", lambda p: ["parity", p.model, "--golden", p.golden, "--json", p.model], 2,
     ("same file",)),
    ("parity-golden-of-other-model", lambda p: ["parity", p.model, "--golden", p.other_golden], 1,
     ("another model", "mismatch")),
    ("parity-gate-agreement-1.5", lambda p: ["parity", p.model, "--golden", p.golden, "--gate-fp16-agreement", "1.5"], 2,
     ("--gate-fp16-agreement",)),
    # ---- edgecnn bench / evaluate
    ("bench-report-twice", lambda p: ["bench", p.model, "--report", p.tmp / "b.json", "--report", p.tmp / "b.json"], 2,
     ("same path",)),
    ("bench-compare-report-is-input", lambda p: ["bench", "compare", p.report_json, "--report", p.report_json], 2,
     ("same file",)),
    ("bench-report-under-file", lambda p: ["bench", p.model, "--report", p.text_file / "b.json"], 1,
     ("not a folder",)),
    ("evaluate-out-is-data", lambda p: ["evaluate", p.model, "--data", p.images, "--out", p.images], 2, ("--data",)),
    ("evaluate-out-inside-data", lambda p: ["evaluate", p.model, "--data", p.images, "--out", p.images / "ev"], 2,
     ("inside the input folder",)),
    # ---- edgecnn train (refused before any data is decoded)
    ("train-img-size-100000", lambda p: ["train", "--data", p.images, "--img-size", "100000", "--project", p.tmp / "runs"],
     2, ("at most 4096",)),
    ("train-project-inside-data", lambda p: ["train", "--data", p.images, "--project", p.images / "runs"], 2,
     ("inside the input folder",)),
    ("train-project-is-file", lambda p: ["train", "--data", p.images, "--project", p.text_file], 1, ("is a file",)),
    ("train-name-is-file", lambda p: ["train", "--data", p.images, "--project", p.tmp, "--name", p.text_file.name], 1,
     ("is a file",)),
]


def _symlink(p: P, target: Path) -> Path:
    link = p.tmp / "link.csv"
    link.symlink_to(target)
    return link


def _hardlink(p: P, target: Path) -> Path:
    link = p.tmp / "hard.csv"
    os.link(target, link)
    return link


def _unreadable(p: P) -> Path:
    folder = p.tmp / "garbage"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"\x89PNG not really" * (i + 1))
    return folder


@pytest.fixture()
def paths(tmp_path, exported_artifacts, tiny_run, images) -> P:
    models = tmp_path / "models"
    models.mkdir()
    model = Path(shutil.copy2(exported_artifacts["tflite-float32"], models / "model.tflite"))
    onnx = Path(shutil.copy2(exported_artifacts["onnx-float32"], models / "model.onnx"))
    golden = Path(shutil.copy2(exported_artifacts["golden"], models / "golden.npz"))
    with np.load(golden) as z:  # same shape and labels, outputs of another model (another SHA-256)
        arrays = {k: z[k] for k in z.files}
    arrays["outputs"] = np.random.default_rng(1).dirichlet(np.ones(arrays["outputs"].shape[1]),
                                                           len(arrays["outputs"])).astype(np.float32)
    arrays["source_sha256"] = np.asarray("0" * 64)
    other = tmp_path / "other_golden.npz"
    np.savez(other, **arrays)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    prev = tmp_path / "previous.csv"
    prev.write_text("source,label,score\n" + "".join(f"img{i}.png,alpha,0.9\n" for i in range(516)))
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n")
    image = sorted(images.rglob("*.png"))[0]
    report = tmp_path / "device-a.json"
    report.write_text('{"schema": "edgecnn.bench/1"}\n')
    return P(tmp=tmp_path, model=model, onnx=onnx, golden=golden, other_golden=other, images=images, image=image,
             run=run, prev_csv=prev, text_file=text, report_json=report)


runner = CliRunner()


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(case, paths):
    _, argv, code, needles = case
    args = [str(a) for a in argv(paths)]  # type: ignore[operator]
    snap = Snapshot(paths.model.parent, paths.images, paths.run, paths.prev_csv, paths.text_file, paths.report_json)
    before = {p for p in paths.tmp.rglob("*")}
    res = runner.invoke(app, args)
    assert res.exit_code == code, f"{args}: exit {res.exit_code}\n{res.output}"
    assert isinstance(res.exception, SystemExit) or res.exception is None, repr(res.exception)
    assert "Traceback" not in res.output, res.output
    error_lines = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    if needles:  # Typer's own usage errors (exit 2) are drawn as a box; ours are one line
        assert len(error_lines) == 1, res.stderr
        for needle in needles:
            assert needle in error_lines[0], f"{needle!r} not in {error_lines[0]!r}"
    snap.assert_unchanged()
    created = {p for p in paths.tmp.rglob("*")} - before
    made_by_case = {paths.tmp / n for n in ("link.csv", "hard.csv", "garbage")}
    leftovers = sorted(str(p) for p in created if not any(p == m or m in p.parents for m in made_by_case))
    assert not leftovers, f"a refused command wrote {leftovers}"


def test_the_table_counts():
    """Issue 10 asks for at least 40 bad inputs; this table is the count."""
    assert len(BAD_INPUTS) >= 40, len(BAD_INPUTS)
    assert len({c[0] for c in BAD_INPUTS}) == len(BAD_INPUTS)


def test_lambda_keras_hint_names_an_option_each_command_has(tmp_path, shapes_dir):
    """info and bench told users to pass --unsafe, which they did not have; now every command that loads a .keras
    has it, and the hint is true for each."""
    import keras

    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))
    path = tmp_path / "lambda.keras"
    model.save(path)
    for args in (["info", path], ["bench", path, "--runs", "1", "--min-seconds", "0", "--warmup", "0",
                                  "--warmup-seconds", "0"]):
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == 1 and "--unsafe" in res.output and "Traceback" not in res.output, res.output
        help_text = runner.invoke(app, [str(args[0]), "--help"]).output
        assert "--unsafe" in help_text, f"{args[0]} names --unsafe but has no such option"
    res = runner.invoke(app, ["info", str(path), "--unsafe"])
    assert res.exit_code == 0, res.output


def test_service_secret_goes_to_a_0600_environment_file(paths):
    """A stream password was written in plain text into a 0644 unit; now it goes to NAME.env (0600) only."""
    unit = paths.tmp / "svc" / "edgecnn-cam.service"
    res = runner.invoke(app, ["devices", "service", str(paths.model), "--source", "rtsp://admin:s3cr%t@cam/h264",
                              "-o", str(unit), "--user", "pi", "--args", "--save-jsonl /var/log/edgecnn.jsonl"])
    assert res.exit_code == 0, res.output
    text = unit.read_text()
    env = unit.with_suffix(".env")
    assert "s3cr" not in text and "EnvironmentFile=" in text
    assert (env.stat().st_mode & 0o777) == 0o600
    assert 'EDGECNN_SOURCE="rtsp://admin:s3cr%t@cam/h264"' in env.read_text()
    assert "--source" not in next(x for x in text.splitlines() if x.startswith("ExecStart="))


def test_service_unit_passes_systemd_analyze_verify(paths):
    """The unit is checked by systemd itself where systemd-analyze exists."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    unit = paths.tmp / "edgecnn-verify.service"
    res = runner.invoke(app, ["devices", "service", str(paths.model), "-o", str(unit), "--user", "root",
                              "--source", "rtsp://u:p@cam/x", "--env-file", str(paths.tmp / "edgecnn-verify.env"),
                              "--args", "--save-jsonl '/var/log/my log.jsonl' --top-k 2"])
    assert res.exit_code == 0, res.output
    text = unit.read_text().replace(f"ExecStart={Path(sys.executable).with_name('edgecnn')}", f"ExecStart={sys.executable}")
    unit.write_text(text)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if unit.name in line or "Unknown" in line or "bad" in line]
    assert not problems, done.stderr


def test_failed_gate_is_not_published_nor_suggested(tmp_path, tiny_run):
    """A failed gate printed "Next: edgecnn run <failed artifact>" and left it beside the report, looking deployable."""
    from PIL import Image

    calib = tmp_path / "blank"
    for cls in ("alpha", "beta", "gamma"):
        (calib / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (32, 32), (0, 0, 0)).save(calib / cls / f"{i}.png")
    out = tmp_path / "o"
    res = runner.invoke(app, ["export", str(tiny_run), "--quantize", "none", "--quantize", "int8", "--calib-data",
                              str(calib), "--no-repair", "--out", str(out)])
    assert res.exit_code == 1 and "Parity gate failed" in res.stderr and "Traceback" not in res.output, res.output
    assert not (out / "model-int8.tflite").exists() and (out / "rejected" / "model-int8.tflite").exists()
    assert (out / "model-float32.tflite").exists() and (out / "golden.npz").exists()
    suggested = [line for line in res.stdout.splitlines() if line.strip().startswith("edgecnn ")]
    assert suggested and not any("int8" in line for line in suggested), suggested
    import json

    report = json.loads((out / "export_report.json").read_text())
    row = next(a for a in report["artifacts"] if a["precision"] == "int8")
    assert row["path"].endswith("rejected/model-int8.tflite") and not row["passed"]
    assert not any("int8" in c for c in report["commands"])
