"""edgecnn.train / export / evaluate / bench: typed result objects, the same behaviour as their CLI commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import edgecnn
from edgecnn.cli import app
from edgecnn.errors import ArtifactExistsError, ConfigError, DataError

runner = CliRunner()


def test_train_returns_a_train_result_with_a_complete_run_folder(shapes_dir, tmp_path):
    result = edgecnn.train(shapes_dir, img_size=16, epochs=2, batch=16, filters=8, dense_units=16, plots=False,
                           project=tmp_path, name="api", quiet=True)
    assert isinstance(result, edgecnn.TrainResult) and dataclasses.is_dataclass(result)
    assert result.run_dir == tmp_path / "api" and result.model_path.is_file()
    for name in ("modelcard.json", "labels.txt", "config.toml", "splits.json", "metrics.json"):
        assert (result.run_dir / name).is_file(), name
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
    assert result.card.labels == sorted(p.name for p in shapes_dir.iterdir()) and len(result.history) == 2
    with edgecnn.load(result.run_dir) as clf:  # the run folder loads, and predicts what the run says
        assert clf.input_size == (16, 16, 3) and clf.labels == result.card.labels
    with pytest.raises(ArtifactExistsError, match="exist"):
        edgecnn.train(shapes_dir, img_size=16, epochs=1, project=tmp_path, name="api", quiet=True)
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        edgecnn.train(shapes_dir, epocs=3)
    with pytest.raises(DataError):
        edgecnn.train(tmp_path / "no-such-data", epochs=1, project=tmp_path, name="none", quiet=True)
    assert not (tmp_path / "none").exists()


def test_train_takes_a_config_object_and_the_cli_calls_the_same_function(shapes_dir, tmp_path):
    cfg = edgecnn.TrainConfig(data=str(shapes_dir), img_size="16", epochs=1, batch=16, filters=4, dense_units=8,
                              plots=False, project=str(tmp_path), name="cfg", quiet=True)
    result = edgecnn.train(config=cfg, name="cfg2")  # keyword options win over the object
    assert result.run_dir.name == "cfg2" and "epochs = 1" in (result.run_dir / "config.toml").read_text()
    cli = runner.invoke(app, ["train", "--data", str(shapes_dir), "--img-size", "16", "--epochs", "1", "--batch", "16",
                              "--filters", "4", "--dense-units", "8", "--no-plots", "--quiet", "--project",
                              str(tmp_path), "--name", "cli"])
    assert cli.exit_code == 0, cli.output
    assert "Run folder:" in cli.output and (tmp_path / "cli" / "model.keras").is_file()


def test_export_returns_an_export_report(tiny_run, tmp_path):
    report = edgecnn.export(tiny_run, formats="tflite", quantize=["none", "int8"], out=tmp_path / "e")
    assert isinstance(report, edgecnn.ExportReport) and report.passed and report.checked
    arts = report.artifacts()
    assert set(arts) == {"tflite-float32", "tflite-int8"} and all(p.is_file() for p in arts.values())
    assert report.report_json.is_file() and report.report_md.is_file() and report.golden.is_file()
    assert json.loads(report.report_json.read_text())["passed"] is True
    assert all(r.checked and r.passed for r in report.results)
    with pytest.raises(ArtifactExistsError, match="--force"):
        edgecnn.export(tiny_run, formats="tflite", out=tmp_path / "e")
    with pytest.raises(ConfigError):
        edgecnn.export(tiny_run, formats="nope", out=tmp_path / "x")
    # and it is what the CLI runs: same files, same parity table
    cli = runner.invoke(app, ["export", str(tiny_run), "--format", "tflite", "--out", str(tmp_path / "c")])
    assert cli.exit_code == 0, cli.output
    assert (tmp_path / "c" / arts["tflite-float32"].name).is_file()


def test_evaluate_returns_an_eval_report_equal_to_the_cli(exported_artifacts, shapes_dir, tmp_path):
    model = exported_artifacts["tflite-int8"]
    report = edgecnn.evaluate(model, shapes_dir, out_dir=tmp_path / "ev", batch=8, topk=2)
    assert isinstance(report, edgecnn.EvalReport)
    assert report.count == sum(report.per_class[c]["support"] for c in report.labels) == 90
    assert 0.0 <= report.accuracy <= report.topk_accuracy <= 1.0 and report.topk == 2
    assert np.asarray(report.confusion).sum() == report.count
    assert Path(report.outputs[0]).name == "metrics.json" and Path(report.outputs[0]).is_file()
    # the classifier agrees with evaluate, image by image
    with edgecnn.load(model) as clf:
        files = sorted(shapes_dir.rglob("*.png"))
        preds = clf.predict(files)
        correct = sum(p.label == f.parent.name for p, f in zip(preds, files))
    assert correct / len(files) == pytest.approx(report.accuracy)
    cli = runner.invoke(app, ["evaluate", str(model), "--data", str(shapes_dir), "--out", str(tmp_path / "cli"),
                              "--top-k", "2"])
    assert cli.exit_code == 0, cli.output
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["accuracy"] == report.accuracy
    with pytest.raises(ConfigError, match="not both"):
        edgecnn.evaluate(model, shapes_dir, run=shapes_dir)


def test_bench_returns_a_bench_report_with_rows_and_written_files(exported_artifacts, tmp_path):
    rows = []
    report = edgecnn.bench([exported_artifacts["tflite-int8"], exported_artifacts["onnx-float32"]], threads=[1], batches="1",
                           runs=5, min_seconds=0, warmup=1, warmup_seconds=0, reports=[tmp_path / "b.json",
                                                                                       tmp_path / "b.md"],
                           on_row=rows.append)
    assert isinstance(report, edgecnn.BenchReport)
    assert len(report.results) == len(rows) == 2 and all(r.ok for r in report.results)
    r = report.results[0]
    assert isinstance(r, edgecnn.BenchResult) and r.latency.p50_ms > 0 and r.latency.count >= 5
    assert report.files == [tmp_path / "b.json", tmp_path / "b.md"] and all(p.is_file() for p in report.files)
    assert "files" not in json.loads((tmp_path / "b.json").read_text())
    single = edgecnn.bench(exported_artifacts["tflite-float32"], runs=3, min_seconds=0, warmup=0, warmup_seconds=0)
    assert len(single.results) == 1 and single.files == []
    with pytest.raises(ConfigError):
        edgecnn.bench(exported_artifacts["tflite-float32"], runs=-1)

