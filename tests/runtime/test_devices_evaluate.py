"""Device profiles, the systemd unit, and edgecnn evaluate against train's reported accuracy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.devices import list_profiles, load_profile, render_service, systemd_command_line
from edgecnn.errors import ConfigError
from edgecnn.evaluate import evaluate

runner = CliRunner()
BOARDS = ["coral-devboard", "gpu-server", "jetson-orin-nano", "rpi4", "rpi5", "x86-cpu"]


def test_all_boards_have_profiles():
    assert set(BOARDS) <= set(list_profiles())
    for name in BOARDS:
        p = load_profile(name)
        assert p.backend in ("tflite", "onnx") and p.install_extra and p.install_notes.strip()
        assert p.camera_width and p.camera_fps
    assert load_profile("coral-devboard").delegate == "libedgetpu.so.1"
    assert "TensorrtExecutionProvider" in load_profile("jetson-orin-nano").providers


def test_unknown_profile_suggests_closest():
    with pytest.raises(ConfigError, match="Did you mean 'jetson-orin-nano'"):
        load_profile("jetson-orin")


def test_profile_with_unknown_key(tmp_path):
    bad = tmp_path / "board.toml"
    bad.write_text('name = "b"\nthreds = 2\n')
    with pytest.raises(ConfigError, match="Did you mean 'threads'"):
        load_profile(bad)


def test_profile_precision_and_backend_come_from_the_registries(tmp_path):
    board = tmp_path / "board.toml"
    board.write_text('name = "b"\nprecision = "dynamic"\nbackend = "onnx"\n')
    assert load_profile(board).precision == "dynamic"  # the registry has it; the profile's own list did not
    board.write_text('name = "b"\nprecision = "fp32"\n')
    with pytest.raises(ConfigError, match="fp32"):
        load_profile(board)
    board.write_text('name = "b"\nbackend = "tensorrt"\n')
    with pytest.raises(ConfigError, match="tensorrt"):
        load_profile(board)


def test_devices_cli_and_service(tflite_model, tmp_path):
    res = runner.invoke(app, ["devices", "list"])
    assert res.exit_code == 0 and all(b in res.output for b in BOARDS)
    res = runner.invoke(app, ["devices", "show", "rpi4"])
    assert res.exit_code == 0 and "edgecnn[tflite]" in res.output and "640x480" in res.output
    unit = tmp_path / "edgecnn.service"
    res = runner.invoke(app, ["devices", "service", str(tflite_model), "--device", "rpi4", "-o", str(unit),
                              "--user", "pi", "--args", "--save-jsonl /var/log/edgecnn.jsonl"])
    assert res.exit_code == 0, res.output
    text = unit.read_text()
    assert "Restart=on-failure" in text and "User=pi" in text and "{" not in text
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert f"run {tflite_model.resolve()} --device rpi4 --camera 0 --save-jsonl /var/log/edgecnn.jsonl" in exec_line
    with pytest.raises(ConfigError, match="Model not found"):
        render_service(tmp_path / "nope.tflite")


def test_evaluate_matches_train_accuracy(tiny_run, artifacts, tmp_path):
    reported = json.loads((tiny_run / "modelcard.json").read_text())["metrics"]["test_accuracy"]
    r = evaluate(tiny_run / "model.keras", run=tiny_run, split="test", out_dir=tmp_path / "k")
    assert r.accuracy == pytest.approx(reported, abs=1e-6)
    r = evaluate(artifacts["tflite-float32"], run=tiny_run, split="test", out_dir=tmp_path / "t", topk=2)
    assert r.accuracy == pytest.approx(reported, abs=0.06)
    assert r.topk == 2 and r.topk_accuracy >= r.accuracy
    assert sum(sum(row) for row in r.confusion) == r.count
    assert set(r.per_class) == set(r.labels) and all(0 <= m["f1"] <= 1 for m in r.per_class.values())
    assert (tmp_path / "t" / "confusion_matrix.png").stat().st_size > 1000
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["accuracy"] == r.accuracy


def test_evaluate_numbers_its_output_folders(int8_model, onnx_model, shapes_dir, tmp_path, monkeypatch):
    """runs/evaluate/<stem> made an .onnx overwrite its .tflite twin's figures; each evaluation gets expN now."""
    monkeypatch.chdir(tmp_path)
    first = evaluate(int8_model, data=shapes_dir)
    second = evaluate(onnx_model, data=shapes_dir)
    assert first.outputs[0] == str(Path("runs/evaluate/exp/metrics.json"))
    assert second.outputs[0] == str(Path("runs/evaluate/exp2/metrics.json"))
    assert json.loads(Path(first.outputs[0]).read_text())["model"] == str(int8_model)


def test_evaluate_cli_on_folder_skips_corrupt(int8_model, shapes_dir, tmp_path):
    data = tmp_path / "data"
    import shutil

    shutil.copytree(shapes_dir, data)
    (data / "alpha" / "broken.png").write_bytes(b"\x89PNG garbage")
    res = runner.invoke(app, ["evaluate", str(int8_model), "--data", str(data), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "broken.png" in res.output and "precision" in res.output
    res = runner.invoke(app, ["evaluate", str(int8_model), "--data", str(tmp_path / "missing")])
    assert res.exit_code != 0 and "not found" in res.output


def test_service_exec_start_is_systemd_quoted(tflite_model, tmp_path):
    """ExecStart was shell-quoted: systemd expands % specifiers and $VARs, so a URL with %40 made the unit
    invalid ("Exec format error") and $HOME was substituted."""
    args = ["/opt/edge cnn/bin/edgecnn", "run", "rtsp://u:p%40ss$HOME@cam/x", 'a"b\\c', "", "--threads", "4"]
    line = systemd_command_line(args)
    assert line == ('"/opt/edge cnn/bin/edgecnn" run "rtsp://u:p%%40ss$$HOME@cam/x" "a\\"b\\\\c" "" '
                    "--threads 4")
    unit = render_service(tflite_model, source="rtsp://cam/p%40th$x", extra_args="--save-jsonl '/var/log/my x.jsonl'",
                          executable="/usr/bin/edgecnn").text
    exec_line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    assert '"rtsp://cam/p%%40th$$x"' in exec_line and '"/var/log/my x.jsonl"' in exec_line
    analyze = shutil.which("systemd-analyze")
    if analyze:
        path = tmp_path / "edgecnn-test.service"
        path.write_text(unit.replace("ExecStart=/usr/bin/edgecnn", f"ExecStart={sys.executable}"))
        res = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
        assert "Exec format error" not in res.stderr and "bad unit file setting" not in res.stderr, res.stderr


def test_service_unbalanced_args_is_one_line_error(tflite_model):
    """`devices service --args '"x'` used to end in a ValueError traceback from shlex."""
    res = runner.invoke(app, ["devices", "service", str(tflite_model), "--args", '"unbalanced'])
    assert res.exit_code != 0 and "--args" in res.output and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
