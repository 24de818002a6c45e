"""edgecnn.runtime.runner end to end: Ctrl-C, device profiles as preferences, a missing delegate, one warning."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgecnn.errors import ModelError
from edgecnn.runtime.backends import load_backend
from edgecnn.runtime.runner import RunOptions, run


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env


def test_ctrl_c_exits_130_says_so_and_leaves_complete_csv(int8_model, tmp_path):
    """Ctrl-C used to end the run with exit 0 and no 'Stopped by' line (the pipeline recorded a normal end)."""
    out = tmp_path / "live.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgecnn", "run", str(int8_model), "--source", "synthetic:200:64x64",
         "--save-csv", str(out), "--quiet"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "Stopped by SIGINT" in stdout and "Traceback" not in stderr
    text = out.read_text()
    assert text.endswith("\n") and all(len(line.split(",")) >= 11 for line in text.splitlines()[1:])


@pytest.mark.parametrize(("device", "model_key", "backend"),
                         [("x86-cpu", "tflite_model", "tflite"), ("rpi4", "onnx_model", "onnx")])
def test_device_profile_backend_is_a_preference(device, model_key, backend, request, shapes_dir):
    """`--device x86-cpu` (onnx) on a .tflite used to fail: "Backend 'onnx' cannot run model.tflite"."""
    model = request.getfixturevalue(model_key)
    opts = RunOptions(model=model, source=str(shapes_dir), device=device, max_frames=2, print_results=False)
    summary = run(opts)
    assert summary.backend_info["backend"] == backend and summary.ok == 2
    assert summary.backend_info["threads"] is not None  # the profile's threads still apply
    with pytest.raises(ModelError, match="cannot run"):  # an explicit --backend still wins and is checked
        run(RunOptions(model=model, source=str(shapes_dir), device=device,
                       backend="onnx" if backend == "tflite" else "tflite"))


def test_missing_delegate_leaves_no_unraisable_traceback(tflite_model, monkeypatch):
    """A missing delegate library used to print 'Exception ignored in Delegate.__del__ ... AttributeError'."""
    seen: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    with pytest.raises(ModelError, match="Cannot load TFLite delegate"):
        load_backend(tflite_model, delegate="/nonexistent/libnot_a_delegate.so")
    gc.collect()
    assert seen == []


def test_warning_printed_once_and_no_opencv_probe_noise(tflite_model, shapes_dir):
    """Every warn() line was printed twice (rich + the CLI's logging handler); camera probing printed
    OpenCV's own `[ WARN:0@...]` lines before our one-line error."""
    image = next(iter(sorted(shapes_dir.rglob("*.png"))))
    env = _env()
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    res = subprocess.run([sys.executable, "-m", "edgecnn", "run", str(tflite_model), "--source", str(image),
                          "--show", "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("no display") == 1, res.stderr
    res = subprocess.run([sys.executable, "-m", "edgecnn", "run", str(tflite_model), "--camera", "7"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode != 0 and "Cannot open camera 7" in res.stderr
    assert "WARN:" not in res.stderr, res.stderr






@pytest.mark.parametrize(("source", "decodes"), [("FOLDER", True), ("GLOB", True), ("LIST", True), ("VIDEO", True),
                                                 ("IMAGE", False), ("synthetic:30", False), ("0", False),
                                                 ("rtsp://cam/stream", False), (None, False)])
def test_which_runs_decode_on_threads(source, decodes, shapes_dir, video_file, tmp_path):
    from edgecnn.runtime.runner import decodes_on_threads

    image = next(p for p in sorted(shapes_dir.rglob("*")) if p.is_file())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{image}\n")
    text = {"FOLDER": str(shapes_dir), "GLOB": str(shapes_dir / "*" / "*.png"), "LIST": str(listing),
            "VIDEO": str(video_file), "IMAGE": str(image)}.get(source, source)
    assert decodes_on_threads(RunOptions(model="m.onnx", source=text, camera=None if source else 0)) is decodes


def test_onnx_threads_spin_unless_decoding_shares_the_cores(onnx_model, shapes_dir):
    """onnxruntime's default spin-wait for one image (latency); sleeping threads for a folder (decoders need the cores)."""
    from edgecnn.console import set_quiet

    def spinning(be) -> str:
        try:
            return be.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
        except RuntimeError:  # not set: onnxruntime's default, spinning
            return "default"

    with load_backend(onnx_model) as be:
        assert be.spin and be.info()["spin"] is True and spinning(be) in ("default", "1")
    with load_backend(onnx_model, spin=False) as be:
        assert spinning(be) == "0" and be.info()["spin"] is False
    set_quiet(True)
    image = next(p for p in sorted(shapes_dir.rglob("*.png")))
    one = run(RunOptions(model=onnx_model, source=str(image)))
    folder = run(RunOptions(model=onnx_model, source=str(shapes_dir), max_frames=8))
    assert one.backend_info["spin"] is True and folder.backend_info["spin"] is False
    assert one.ok == 1 and folder.ok == 8
