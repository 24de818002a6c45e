"""`edgecnn bench` on real exported artifacts: rows, sweeps, broken files, accuracy, gates, profiles, pinning."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bench import BenchSettings, measure_latency, run_bench
from edgecnn.bench.runner import discover_artifacts, enforce_gates
from edgecnn.errors import ConfigError, GateError, ModelError


# ---------------------------------------------------------------------- the timing loop
def test_loop_runs_exactly_runs_when_count_bounded():
    calls = []
    m = measure_latency(calls.append, 1, BenchSettings(runs=7, min_seconds=0, warmup=2, warmup_seconds=0))
    assert m.stats.count == 7 and len(m.samples_ns) == 7
    assert m.warmup_runs == 2
    assert len(calls) == 1 + 2 + 7  # first + warm-up + timed
    assert m.stats.min_ms <= m.stats.p50_ms <= m.stats.p90_ms <= m.stats.p99_ms <= m.stats.max_ms
    assert not m.capped


def test_loop_respects_min_seconds_and_max_seconds_cap():
    m = measure_latency(lambda _: None, None, BenchSettings(runs=1, min_seconds=0.02, warmup=0, warmup_seconds=0))
    assert m.wall_seconds >= 0.02 and m.stats.count > 1
    m = measure_latency(lambda _: None, None, BenchSettings(runs=10**9, min_seconds=0, max_seconds=0.02, warmup=0,
                                                             warmup_seconds=0))
    assert m.capped and m.stats.count < 10**9


@pytest.mark.parametrize("kwargs", [{"runs": 0, "min_seconds": 0}, {"runs": -1}, {"max_seconds": 0}, {"warmup": -2}])
def test_settings_reject_loops_without_bounds(kwargs):
    with pytest.raises(ConfigError):
        BenchSettings(**kwargs)


# ---------------------------------------------------------------------- artifacts and rows
def test_folder_gives_every_tflite_and_onnx_but_not_keras(arts, tiny_run):
    found = discover_artifacts([arts["dir"]])
    names = sorted(p.name for p in found)
    expected = sorted(p.name for p in arts["dir"].iterdir() if p.suffix in (".tflite", ".onnx"))
    assert names == expected and len(names) >= 5
    assert all(p.suffix != ".keras" for p in discover_artifacts([tiny_run], include_keras=False)
               ) if any(tiny_run.glob("*.tflite")) else True
    assert [p.name for p in discover_artifacts([tiny_run], include_keras=True) if p.suffix == ".keras"] == ["model.keras"]
    assert [p.suffix for p in discover_artifacts([arts["dir"]], backend="onnx")] == [".onnx"] * len(
        [n for n in names if n.endswith(".onnx")])


def test_folder_without_artifacts_and_unknown_files_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="No artifacts"):
        discover_artifacts([tmp_path / "empty"])
    (tmp_path / "x.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match="Unknown model type"):
        discover_artifacts([tmp_path / "x.pt"])
    with pytest.raises(ModelError, match="not found"):
        discover_artifacts([tmp_path / "missing.tflite"])


def test_sweep_gives_one_row_per_combination(arts, fast):
    report = run_bench([arts["tflite-float32"], arts["onnx-float32"]], threads="1,2", batches="1,4",
                       settings=fast())
    combos = [(r.file, r.threads, r.batch) for r in report.results]
    assert combos == [(f, t, b) for f in (arts["tflite-float32"].name, arts["onnx-float32"].name)
                      for t in (1, 2) for b in (1, 4)]
    from edgecnn.runtime.backends import load_backend

    limits = {}
    for key in ("tflite-float32", "onnx-float32"):
        with load_backend(arts[key]) as be:
            limits[arts[key].name] = be.max_batch
    for r in report.results:
        if limits[r.file] is not None and r.batch > limits[r.file]:  # a fixed-batch export cannot run batch 4
            assert r.status == "skipped" and "fixed batch" in r.error
            continue
        assert r.status == "ok", r.error
        assert r.latency.count == 3 and len(r.samples_ms) == 3
        assert r.images_per_s == pytest.approx(r.inferences_per_s * r.batch)
        assert r.init_ms > 0 and r.first_ms > 0 and r.size_bytes == Path(r.artifact).stat().st_size
        assert r.rss_peak_mb > 0 and r.runtime in ("ai-edge-litert", "onnxruntime")
    assert {r.backend for r in report.results} == {"tflite", "onnx"}
    assert report.results[4].provider == "CPUExecutionProvider"
    assert report.settings["threads"] == [1, 2] and report.settings["batches"] == [1, 4]


def test_precision_and_model_identity_come_from_the_card(arts, fast):
    report = run_bench([arts["dir"]], settings=fast())
    by_file = {r.file: r for r in report.results}
    assert by_file[arts["tflite-int8"].name].precision == "int8"
    assert by_file[arts["onnx-float32"].name].format == "onnx"
    assert all(r.status == "ok" for r in report.results), [r.error for r in report.results]
    ids = {r.model_id for r in report.results}
    assert len(ids) == 1 and None not in ids  # every export of one model carries the same source id


def test_broken_artifacts_get_error_rows_and_the_rest_still_runs(arts, tmp_path, cli, fast, fast_args):
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(os.urandom(2048))
    truncated = tmp_path / "truncated.onnx"
    data = arts["onnx-float32"].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    report = run_bench([corrupt, arts["tflite-float32"], truncated, arts["onnx-float32"]], batches="1,2",
                       settings=fast())
    status = [(r.file, r.batch, r.status) for r in report.results]
    assert status == [("corrupt.tflite", 1, "error"), ("corrupt.tflite", 2, "error"),
                      (arts["tflite-float32"].name, 1, "ok"), (arts["tflite-float32"].name, 2, "ok"),
                      ("truncated.onnx", 1, "error"), ("truncated.onnx", 2, "error"),
                      (arts["onnx-float32"].name, 1, "ok"), (arts["onnx-float32"].name, 2, status[-1][2])]
    assert status[-1][2] in ("ok", "skipped")  # skipped when the ONNX export has a fixed batch of 1
    assert "corrupt.tflite" in report.results[0].error or "TFLite" in report.results[0].error
    assert report.results[4].error

    res = cli("bench", corrupt, arts["tflite-float32"], *fast_args)
    assert res.exit_code == 0, res.output
    assert "error" in res.output and "ok" in res.output


def test_data_gives_accuracy_and_preprocessing_time(arts, shapes_dir, fast):
    from edgecnn.imaging import load_image, scan_labelled_folder
    from edgecnn.runtime.backends import load_backend

    report = run_bench([arts["tflite-float32"], arts["tflite-int8"]], data=shapes_dir, settings=fast())
    files = scan_labelled_folder(shapes_dir)
    for r in report.results:
        assert r.status == "ok", r.error
        with load_backend(r.artifact) as be:
            spec = be.card
            x = np.stack([load_image(f, spec.input.height, spec.input.width, "rgb", spec.preprocessing.resize)
                          for f in files.files])
            expected = float(np.mean(be.predict(x).argmax(1) == np.asarray(files.targets)))
        assert r.accuracy == pytest.approx(expected)
        assert r.accuracy > 0.5  # a trained model on its learnable data, far above chance (1/3)
        assert r.accuracy_images == len(files.files)
        assert 0 < r.decode_ms <= r.preprocess_ms
        assert r.end_to_end_ms == pytest.approx(r.preprocess_ms + r.latency.p50_ms / r.batch, abs=1e-3)


def test_data_with_unknown_classes_is_an_error_row(arts, tmp_path, fast):
    from edgecnn.synthetic import write_dataset

    other = write_dataset(tmp_path / "other", classes=["cat", "dog"], per_class=2, size=24)
    report = run_bench([arts["tflite-float32"]], data=other, settings=fast())
    assert report.results[0].status == "error" and "does not know" in report.results[0].error


# ---------------------------------------------------------------------- gates
def test_latency_gate_fails_with_non_zero_exit_and_still_writes_report(arts, tmp_path, cli, fast_args):
    out = tmp_path / "gate.json"
    res = cli("bench", arts["tflite-float32"], *fast_args, "--fail-above-ms", "0.000001", "--report", out)
    assert res.exit_code == 1, res.output
    assert "Benchmark gate failed" in res.output and "p50" in res.output
    assert out.exists()
    res = cli("bench", arts["tflite-float32"], *fast_args, "--fail-above-ms", "100000")
    assert res.exit_code == 0, res.output


def test_accuracy_gate(arts, shapes_dir, cli, fast, fast_args):
    res = cli("bench", arts["tflite-int8"], *fast_args, "--data", shapes_dir, "--min-accuracy", "1.0",
              "--max-images", "30")
    report_acc_fails = res.exit_code == 1
    res_ok = cli("bench", arts["tflite-int8"], *fast_args, "--data", shapes_dir, "--min-accuracy", "0.0",
                 "--max-images", "30")
    assert res_ok.exit_code == 0, res_ok.output
    report = run_bench([arts["tflite-int8"]], data=shapes_dir, max_images=30, settings=fast(), min_accuracy=1.0)
    assert report_acc_fails == (report.results[0].accuracy < 1.0)
    if report.gate_failures:
        with pytest.raises(GateError, match="accuracy"):
            enforce_gates(report)


def test_gate_on_a_broken_artifact_fails(arts, tmp_path, fast):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    report = run_bench([bad, arts["tflite-float32"]], settings=fast(), fail_above_ms=1e6)
    assert len(report.gate_failures) == 1 and "failed to run" in report.gate_failures[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-accuracy", "0.5"], "needs --data"),
        (["--min-accuracy", "90", "--data", "."], "fraction"),
        (["--threads", "0"], "positive integers"),
        (["--batch", "x"], "positive integers"),
        (["--report", "out.pdf"], ".json"),
        (["--runs", "0", "--min-seconds", "0"], "needs a bound"),
        (["--backend", "tensorrt"], "'tensorrt' is not one of"),
        (["--cpus", "a,b"], "--cpus"),
    ],
)
def test_bad_options_are_one_line_errors(arts, cli, args, message):
    res = cli("bench", arts["tflite-float32"], "--runs", "2", "--warmup", "0", "--warmup-seconds", "0", *args)
    assert res.exit_code != 0
    assert message in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------------- devices, pinning, keras
def test_device_profile_and_cpu_pinning(arts, fast):
    before = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    report = run_bench([arts["tflite-float32"]], device="x86-cpu", cpus="0", settings=fast())
    assert report.label == "x86-cpu" and report.settings["device_profile"] == "x86-cpu"
    (row,) = report.results  # the profile's batch (8) and threads (4); its backend (onnx) cannot run .tflite
    assert (row.status, row.backend, row.threads, row.batch) == ("ok", "tflite", 4, 8), row.error
    if before is not None:
        assert report.settings["cpus"] == [0]
        assert sorted(os.sched_getaffinity(0)) == before  # restored afterwards
        with pytest.raises(ConfigError, match="Cannot pin"):
            run_bench([arts["tflite-float32"]], cpus="4096", settings=fast())


def test_unknown_device_profile(arts, cli, fast_args):
    res = cli("bench", arts["tflite-float32"], *fast_args, "--device", "rpi9")
    assert res.exit_code == 2 and "rpi9" in res.output


def test_system_facts_in_report(arts, fast):
    report = run_bench([arts["onnx-float32"]], settings=fast())
    s = report.system
    for key in ("cpu", "cores_logical", "machine", "os", "python", "numpy", "libraries", "timestamp", "edgecnn"):
        assert s.get(key), key
    assert "onnxruntime" in s["libraries"]
    assert s["accelerators_used"]["providers"] == ["CPUExecutionProvider"]


def test_fixed_batch_model_skips_larger_batches(arts, tmp_path, fast):
    """An ONNX model with a fixed batch of 1 gets a 'skipped' row for batch 8, not a crash."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(arts["onnx-float32"]))
    for tensor in (*model.graph.input, *model.graph.output):
        dim = tensor.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 1
    fixed = tmp_path / "fixed.onnx"
    onnx.save(model, str(fixed))
    report = run_bench([fixed], batches="1,8", settings=fast())
    assert [r.status for r in report.results] == ["ok", "skipped"]
    assert "fixed batch" in report.results[1].error


def test_copied_artifact_keeps_its_identity(arts, tmp_path, fast):
    copy = tmp_path / "copy" / arts["tflite-int8"].name
    copy.parent.mkdir()
    shutil.copy(arts["tflite-int8"], copy)
    a = run_bench([arts["tflite-int8"]], settings=fast()).results[0]
    b = run_bench([copy], settings=fast()).results[0]
    assert a.sha256 == b.sha256 and a.precision == b.precision == "int8"


def test_nothing_benchmarked_exits_non_zero_and_still_writes_report(tmp_path, cli, fast_args):
    """`edgecnn bench broken.tflite` printed an error row and exited 0, as if the benchmark had passed."""
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(os.urandom(2048))
    out = tmp_path / "r.json"
    res = cli("bench", bad, *fast_args, "--report", out)
    assert res.exit_code == 1, res.output
    assert "Nothing was benchmarked" in res.output and "Traceback" not in res.output
    assert json.loads(out.read_text())["results"][0]["status"] == "error"
