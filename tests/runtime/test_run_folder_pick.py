"""Issue 25: ``run`` takes an export folder or a run folder and says what it picked: the deploy profile in it, else
the best artifact for the installed runtime (int8 LiteRT, then ONNX); an edge install never picks model.keras
(tests/edge_install_check.py proves that one in venvs without Keras)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgecnn.errors import ModelError
from edgecnn.runtime.deploy import pick_from_folder
from edgecnn.runtime.runner import RunOptions, run


def test_an_export_folder_runs_its_int8_litert_model(exported_artifacts, shapes_dir, capsys):
    folder = Path(exported_artifacts["dir"])
    summary = run(RunOptions(model=folder, source=str(shapes_dir), print_results=False))
    assert summary.ok > 0 and Path(summary.model).name == Path(exported_artifacts["tflite-int8"]).name
    cap = capsys.readouterr()
    out = " ".join((cap.out + cap.err).split())
    assert "(tflite int8: the fastest kind this install runs" in out


def test_a_run_folder_prefers_its_exports_to_model_keras(tiny_run, exported_artifacts, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    shutil.copytree(exported_artifacts["dir"], run_dir / "export")
    assert pick_from_folder(run_dir).model == run_dir / "export" / Path(exported_artifacts["tflite-int8"]).name
    # the Python API of a training machine keeps its documented meaning: a run folder is its Keras model
    assert pick_from_folder(run_dir, prefer_keras=True).model == run_dir / "model.keras"
    # only ONNX artifacts there: the ONNX int8 one
    only_onnx = tmp_path / "onnx"
    only_onnx.mkdir()
    for key in ("onnx-float32", "onnx-int8"):
        shutil.copy2(exported_artifacts[key], only_onnx)
    assert pick_from_folder(only_onnx).model.name == Path(exported_artifacts["onnx-int8"]).name


def test_a_deploy_profile_in_the_folder_wins(exported_artifacts, tmp_path, shapes_dir, capsys):
    folder = tmp_path / "deploy"
    folder.mkdir()
    fp32 = shutil.copy2(exported_artifacts["tflite-float32"], folder)
    shutil.copy2(exported_artifacts["tflite-int8"], folder)
    from edgecnn.fileio import sha256_file
    from edgecnn.runtime.deploy import DEPLOY_SCHEMA
    from edgecnn.sysinfo import device_fingerprint

    (folder / "deploy.json").write_text(json.dumps({
        "schema": DEPLOY_SCHEMA, "artifact": {"path": Path(fp32).name, "sha256": sha256_file(fp32)},
        "backend": "tflite", "threads": 1, "batch": 1, "measured": {"p50_ms": 0.5, "accuracy": 1.0},
        "device": {"fingerprint": device_fingerprint()}}))
    (folder / "notes.json").write_text("{not json")  # other JSON files are no profile and no error
    summary = run(RunOptions(model=folder, source=str(shapes_dir), print_results=False))
    assert Path(summary.model).name == Path(fp32).name and summary.backend_info["threads"] == 1
    cap = capsys.readouterr()
    assert "Using deploy profile" in cap.out + cap.err


def test_a_folder_without_a_model_is_one_clear_line(tmp_path):
    (tmp_path / "x.txt").write_text("no model here")
    with pytest.raises(ModelError, match="holds no model"):
        pick_from_folder(tmp_path)
