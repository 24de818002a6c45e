"""``bench --pick`` writes a deploy profile; ``run --profile`` and ``devices service --profile`` use it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgecnn.bench.pick import pick
from edgecnn.bench.runner import run_bench
from edgecnn.errors import ConfigError, GateError


@pytest.fixture(scope="module")
def picked(arts, shapes_dir, tmp_path_factory, fast_args):
    """Copies of three exported artifacts in one folder, benched with --pick over threads 1,2 × batch 1,2."""
    from typer.testing import CliRunner

    from edgecnn.cli import app

    folder = tmp_path_factory.mktemp("pick") / "models"
    folder.mkdir()
    for key in ("tflite-float32", "tflite-int8", "onnx-int8"):
        shutil.copy2(arts[key], folder / arts[key].name)
    profile = folder.parent / "deploy.json"
    res = CliRunner().invoke(app, ["bench", str(folder), *fast_args, "--threads", "1,2", "--batch", "1,2",
                                   "--data", str(shapes_dir), "--max-images", "30", "--pick", str(profile),
                                   "--report", str(folder.parent / "bench.json")])
    assert res.exit_code == 0, res.output
    return folder, profile, json.loads(profile.read_text()), res.output


def test_pick_writes_the_fastest_passing_combination(picked):
    from edgecnn import __version__
    from edgecnn.fileio import sha256_file
    from edgecnn.sysinfo import device_fingerprint

    folder, profile, data, output = picked
    report = json.loads((folder.parent / "bench.json").read_text())
    combos = {(r["file"], r["threads"], r["batch"]): r["status"] for r in report["results"]}
    assert len(combos) == 3 * 2 * 2  # every artifact × threads × batch was measured (or skipped when it cannot run)
    assert {k for k, v in combos.items() if v != "ok"} == {("model-int8.onnx", t, 2) for t in (1, 2)}  # fixed batch 1
    rows = [r for r in report["results"] if r["status"] == "ok"]
    art = data["artifact"]
    path = profile.parent / art["path"]
    assert path.is_file() and art["sha256"] == sha256_file(path) and Path(art["abs_path"]) == path.resolve()
    assert data["schema"] == "edgecnn.deploy/1" and data["edgecnn_version"] == __version__
    assert data["device"]["fingerprint"]["id"] == device_fingerprint()["id"]
    ref = data["measured"]["reference"]
    assert ref["precision"] == "float32"
    # the chosen row is the fastest per image among rows whose accuracy drop is within the gate
    gate = data["measured"]["gate"]["max_accuracy_drop"]
    passing = [r for r in rows if ref["accuracy"] - r["accuracy"] <= gate + 1e-12]
    best = min(passing, key=lambda r: r["latency"]["p50_ms"] / r["batch"])
    chosen = next(r for r in rows if r["file"] == art["file"] and r["threads"] == data["threads"]
                  and r["batch"] == data["batch"])
    assert chosen["latency"]["p50_ms"] / chosen["batch"] == pytest.approx(best["latency"]["p50_ms"] / best["batch"])
    assert data["measured"]["p50_ms"] == pytest.approx(chosen["latency"]["p50_ms"], abs=1e-3)
    assert data["measured"]["p99_ms"] == pytest.approx(chosen["latency"]["p99_ms"], abs=1e-3)
    assert data["measured"]["accuracy"] == chosen["accuracy"]
    assert data["backend"] == chosen["backend"] and data["threads"] in (1, 2) and data["batch"] in (1, 2)
    assert "Picked" in output and str(profile) in output


def test_run_with_the_profile_uses_its_artifact_backend_threads_and_batch(picked, shapes_dir, tmp_path):
    from edgecnn.runtime.runner import RunOptions, run

    _, profile, data, _ = picked
    summary = run(RunOptions(model=None, profile=profile, source=str(shapes_dir), print_results=False,
                             save_csv=tmp_path / "p.csv"))
    assert summary.ok > 0
    assert Path(summary.model).name == data["artifact"]["file"]
    assert summary.backend_info["backend"] == data["backend"]
    assert summary.backend_info["threads"] == data["threads"]
    assert summary.input_shape[0] == data["batch"]
    # explicit flags still win over the profile
    summary = run(RunOptions(model=None, profile=profile, source=str(shapes_dir), print_results=False, threads=3, batch=1))
    assert summary.backend_info["threads"] == 3 and summary.input_shape[0] == 1


def test_run_profile_through_the_cli(picked, shapes_dir, cli):
    _, profile, data, _ = picked
    res = cli("run", "--profile", profile, "--source", shapes_dir, "--quiet")
    assert res.exit_code == 0, res.output
    assert f"threads={data['threads']}" in res.output and f"at shape ({data['batch']}," in res.output


def _copy_profile(picked, tmp_path) -> Path:
    folder, profile, data, _ = picked
    dest = tmp_path / "models"
    shutil.copytree(folder, dest)
    new = tmp_path / "deploy.json"
    new.write_text(json.dumps({**data, "artifact": {**data["artifact"], "abs_path": str(dest / data["artifact"]["file"])}}))
    return new


def test_bad_profiles_are_one_line_errors(picked, cli, tmp_path, shapes_dir):
    _, profile, data, _ = picked
    cases = {}
    cases["missing"] = (tmp_path / "nope.json", "Deploy profile not found")
    (tmp_path / "garbage.json").write_text("{not json")
    cases["garbage"] = (tmp_path / "garbage.json", "is not a deploy profile")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "edgecnn.bench/1"}))
    cases["schema"] = (tmp_path / "other.json", "expected schema 'edgecnn.deploy/1'")
    (tmp_path / "lacks.json").write_text(json.dumps({"schema": "edgecnn.deploy/1", "backend": "tflite"}))
    cases["lacks"] = (tmp_path / "lacks.json", "lacks artifact")
    (tmp_path / "batch.json").write_text(json.dumps({**data, "batch": 0}))
    cases["batch"] = (tmp_path / "batch.json", "batch must be an integer >= 1")
    changed = _copy_profile(picked, tmp_path / "c")
    art = Path(json.loads(changed.read_text())["artifact"]["abs_path"])
    art.write_bytes(art.read_bytes() + b"\0")
    cases["changed"] = (changed, "changed after deploy profile")
    gone = _copy_profile(picked, tmp_path / "g")
    Path(json.loads(gone.read_text())["artifact"]["abs_path"]).unlink()
    cases["gone"] = (gone, "is missing")
    for name, (path, message) in cases.items():
        res = cli("run", "--profile", path, "--source", shapes_dir)
        assert res.exit_code != 0, name
        assert message in res.output, (name, res.output)
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, (name, res.output)
    res = cli("run", "--source", shapes_dir)
    assert res.exit_code != 0 and "Expected a MODEL (or --profile" in res.output


def test_profile_from_another_device_warns(picked, tmp_path, shapes_dir, cli):
    copy = _copy_profile(picked, tmp_path)
    data = json.loads(copy.read_text())
    data["device"]["fingerprint"] = {"id": "0" * 16, "facts": {"cpu": "Cortex-A76", "cores_logical": 4}}
    copy.write_text(json.dumps(data))
    res = cli("run", "--profile", copy, "--source", shapes_dir, "--quiet")
    assert res.exit_code == 0, res.output
    assert "measured on another device" in res.output and "Cortex-A76" in res.output


def test_service_unit_runs_with_the_profile(picked, cli, tmp_path):
    _, profile, data, _ = picked
    out = tmp_path / "edgecnn.service"
    res = cli("devices", "service", "--profile", profile, "--out", out, "--user", "pi")
    assert res.exit_code == 0, res.output
    unit = out.read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert f"--profile {profile.resolve()}" in exec_start
    assert data["artifact"]["file"] in exec_start
    res = cli("devices", "service", "--profile", tmp_path / "nope.json", "--out", tmp_path / "x.service")
    assert res.exit_code != 0 and "Deploy profile not found" in res.output and not (tmp_path / "x.service").exists()


def test_pick_needs_data_and_a_passing_row(arts, shapes_dir, cli, fast, fast_args, tmp_path):
    res = cli("bench", arts["tflite-float32"], *fast_args, "--pick", tmp_path / "d.json")
    assert res.exit_code != 0 and "--pick needs --data" in res.output and not (tmp_path / "d.json").exists()
    res = cli("bench", arts["tflite-float32"], *fast_args, "--data", shapes_dir, "--pick", tmp_path / "d.toml")
    assert res.exit_code != 0 and "expected a .json path" in res.output
    report = run_bench([arts["tflite-float32"]], settings=fast())
    with pytest.raises(ConfigError, match="needs accuracy"):
        pick(report)
    report = run_bench([arts["tflite-float32"], arts["tflite-int8"]], data=shapes_dir, max_images=30, settings=fast())
    with pytest.raises(GateError, match="No measured combination passes"):
        pick(report, max_drop=0.0, min_accuracy=1.01)


def test_public_bench_picks_as_the_cli_does(picked, shapes_dir, fast, tmp_path):
    """``edgecnn.bench(..., pick=)`` is the CLI's ``--pick``: the report carries the choice and the profile it wrote."""
    import edgecnn

    folder, _, cli_profile, _ = picked
    profile = tmp_path / "api.json"
    report = edgecnn.bench(folder, settings=fast(), threads="1,2", batches="1,2", data=shapes_dir, max_images=30,
                           pick=profile)
    assert report.profile == profile and profile.is_file()
    data = json.loads(profile.read_text())
    assert report.pick.row.file == data["artifact"]["file"] and report.pick.row.batch == data["batch"]
    assert data["schema"] == cli_profile["schema"] and data["measured"]["gate"] == cli_profile["measured"]["gate"]
    assert len(report.results) == 3 * 2 * 2
    with pytest.raises(ConfigError, match="--pick needs --data"):
        edgecnn.bench(folder, settings=fast(), pick=tmp_path / "nodata.json")
