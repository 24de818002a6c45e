"""edgecnn run end to end on real artifacts: folders, videos, mapped cameras, sinks, devices, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.errors import ConfigError, DataError, SourceError
from edgecnn.imaging import list_images, load_image
from edgecnn.runtime.backends import load_backend
from edgecnn.runtime.runner import RunOptions, run
from edgecnn.runtime.sources import mask_url, open_source
from edgecnn.synthetic import write_dataset

from .conftest import write_video

runner = CliRunner()


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("key", ["tflite-float32", "tflite-int8", "onnx-float32"])
def test_folder_run_matches_direct_prediction(artifacts, shapes_dir, tmp_path, key):
    model = artifacts[key]
    out = tmp_path / "preds.csv"
    summary = run(RunOptions(model=model, source=str(shapes_dir), save_csv=out, batch=8, topk=2, print_results=False))
    files = list_images(shapes_dir)
    assert summary.count == summary.ok == len(files) and not summary.skipped
    rows = _csv(out)
    assert [r["source"] for r in rows] == [str(f) for f in files]  # input order kept despite worker threads
    with load_backend(model) as be:
        probs = be.predict(np.stack([load_image(f, 24, 24) for f in files]))
    expected = [be.labels[i] for i in probs.argmax(1)]
    assert [r["label"] for r in rows] == expected
    np.testing.assert_allclose([float(r["score"]) for r in rows], probs.max(1), atol=1e-4)
    assert all(len(r["topk"].split(";")) == 2 for r in rows)
    assert summary.speed_line().startswith("Speed: ") and "ms inference" in summary.speed_line()


def test_corrupt_images_skipped_and_reported(tflite_model, mixed_dir, tmp_path):
    out = tmp_path / "p.jsonl"
    summary = run(RunOptions(model=tflite_model, source=str(mixed_dir), save_jsonl=out, print_results=False))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    bad = {Path(r["source"]).name for r in rows if r["status"] == "skipped"}
    assert bad == {"empty.png", "truncated.png"}
    assert {Path(s).name for s, _ in summary.skipped} == bad
    assert not any(".hidden" in r["source"] or r["source"].endswith(".txt") for r in rows)
    assert summary.ok == len(rows) - 2 and all(r["label"] for r in rows if r["status"] == "ok")
    assert any("Skipped" in line and "truncated.png" in line for line in summary.lines())


def test_video_no_drop_and_annotated_video(onnx_model, tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=25)
    summary = run(RunOptions(model=onnx_model, source=str(video), save_dir=tmp_path / "out", batch=4,
                             save_csv=tmp_path / "v.csv"))
    assert summary.count == 25 and summary.dropped == 0
    assert [int(r["index"]) for r in _csv(tmp_path / "v.csv")] == list(range(25))
    import cv2

    cap = cv2.VideoCapture(str(tmp_path / "out" / "clip_annotated.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 25
    cap.release()


def test_save_annotated_images_and_threshold(tflite_model, shapes_dir, tmp_path):
    summary = run(RunOptions(model=tflite_model, source=str(shapes_dir / "alpha"), save_dir=tmp_path / "ann",
                             threshold=0.999, max_frames=5, save_csv=tmp_path / "t.csv"))
    assert summary.count == 5 and summary.stopped_by == "max-frames"
    saved = sorted((tmp_path / "ann").rglob("*.png"))
    assert len(saved) == 5
    from edgecnn.imaging import decode_image

    assert min(decode_image(saved[0]).shape[:2]) >= 256  # small inputs upscaled so the label is readable
    rows = _csv(tmp_path / "t.csv")
    assert all(r["label"] == "unknown" for r in rows if float(r["score"]) < 0.999)


def test_mapped_camera_is_live_and_stops_on_max_frames(tflite_model, tmp_path, monkeypatch):
    video = write_video(tmp_path / "cam.avi", frames=30, fps=60)
    monkeypatch.setenv("EDGECNN_CAMERA_MAP", f"0={video}")
    summary = run(RunOptions(model=tflite_model, camera=0, max_frames=12, save_csv=tmp_path / "c.csv"))
    assert summary.count == 12 and summary.stopped_by == "max-frames"
    idx = [int(r["index"]) for r in _csv(tmp_path / "c.csv")]
    assert idx == sorted(idx) and len(idx) == 12


def test_live_source_reconnects_after_it_comes_back(tflite_model, tmp_path, monkeypatch):
    video = write_video(tmp_path / "cam.avi", frames=10, fps=100)
    hidden = tmp_path / "cam.away"
    monkeypatch.setenv("EDGECNN_CAMERA_MAP", f"0={video}")
    src = open_source(camera=0, reconnect_tries=6)
    src.backoff = 0.1
    seen = []

    def unplug_then_replug():
        while len(seen) < 3:
            time.sleep(0.01)
        video.rename(hidden)  # the next reopen fails ...
        time.sleep(0.5)
        hidden.rename(video)  # ... until the camera comes back

    t = threading.Thread(target=unplug_then_replug)
    t.start()
    for frame in src:
        seen.append(frame.index)
        if len(seen) >= 25:
            break
    src.close()
    t.join()
    assert src.reconnects >= 1 and len(seen) == 25


def test_live_source_gives_up_with_clear_error(tflite_model, tmp_path, monkeypatch):
    video = write_video(tmp_path / "cam.avi", frames=5, fps=100)
    monkeypatch.setenv("EDGECNN_CAMERA_MAP", f"3={video}")
    res = {}

    def unplug():
        time.sleep(0.15)
        video.unlink()

    threading.Thread(target=unplug).start()
    opts = RunOptions(model=tflite_model, camera=3, reconnect_tries=2)
    with pytest.raises(SourceError, match="stopped delivering.*2 reconnect attempts") as ei:
        res["s"] = run(opts)
    assert "camera 3" in str(ei.value)


def test_synthetic_live_source_drops_not_queues(tflite_model):
    summary = run(RunOptions(model=tflite_model, source="synthetic:200:320x240", duration=1.0))
    assert summary.stopped_by == "duration" and summary.count > 10


def test_mask_url_hides_credentials():
    assert mask_url("rtsp://admin:hunter2@10.0.0.5:554/stream1") == "rtsp://***:***@10.0.0.5:554/stream1"
    assert "s3cret" not in mask_url("http://cam/video.mjpg?user=a&password=s3cret")


def test_stream_error_never_prints_password(tflite_model):
    res = runner.invoke(app, ["run", str(tflite_model), "--source", "rtsp://admin:hunter2@127.0.0.1:9/x",
                              "--reconnect-tries", "0"])
    assert res.exit_code != 0
    assert "hunter2" not in res.output and "Cannot open stream" in res.output


def test_device_profile_applies_and_flags_override(tflite_model, shapes_dir):
    opts = RunOptions(model=tflite_model, source=str(shapes_dir), device="rpi4", threads=1, max_frames=3,
                      print_results=False)
    summary = run(opts)
    assert opts.threads == 1 and opts.width == 640 and opts.backend == "tflite"
    assert summary.backend_info["threads"] == 1


# ---------------------------------------------------------------------------------------------- CLI bad input
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "{missing}", "--source", "{data}"], "Model not found"),
        (["run", "{txt}", "--source", "{data}"], "Unknown model type"),
        (["run", "{model}", "--source", "{empty}"], "No images in folder"),
        (["run", "{model}", "--source", "{data}", "--camera", "0"], "not both"),
        (["run", "{model}", "--source", "{badvideo}"], "Cannot decode video"),
        (["run", "{model}", "--camera", "7"], "Cannot open camera 7"),
        (["run", "{model}", "--source", "{data}", "--device", "rpi-4"], "Did you mean 'rpi4'"),
        (["run", "{model}", "--source", "nothing/here.png"], "Source not found"),
        (["run", "{model}", "--source", "{data}", "--delegate-option", "novalue"], "KEY=VALUE"),
        (["run", "{model}", "--source", "a ! b ! appsink"], "GStreamer"),
    ],
)
def test_cli_bad_input_one_line_error(tflite_model, shapes_dir, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    (tmp_path / "model.txt").write_text("x")
    (tmp_path / "bad.avi").write_bytes(b"\x00" * 1000)
    subs = {"{missing}": str(tmp_path / "nope.tflite"), "{txt}": str(tmp_path / "model.txt"),
            "{model}": str(tflite_model), "{data}": str(shapes_dir), "{empty}": str(tmp_path / "empty"),
            "{badvideo}": str(tmp_path / "bad.avi")}
    res = runner.invoke(app, [subs.get(a, a) for a in args])
    assert res.exit_code != 0, res.output
    assert message in res.output, res.output
    assert "Traceback" not in res.output


def test_cli_run_prints_results_and_speed_line(int8_model, shapes_dir, tmp_path):
    res = runner.invoke(app, ["run", str(int8_model), "--source", str(shapes_dir / "beta" / "beta_0001.png")])
    assert res.exit_code == 0, res.output
    assert "beta_0001.png:" in res.output and "Speed:" in res.output and "ms postprocess per image" in res.output


def test_tflite_without_card_uses_labels_txt(tflite_model, tmp_path):
    from edgecnn.modelcard import TFLITE_MEMBER

    data = tflite_model.read_bytes()
    zip_at = data.rfind(b"PK\x03\x04", 0, data.rfind(TFLITE_MEMBER.encode()) + 1)
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(data[:zip_at])
    with load_backend(bare) as be:
        assert be.labels == ["class_0", "class_1", "class_2"]
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    with load_backend(bare) as be:
        assert be.labels == ["a", "b", "c"]


# ---------------------------------------------------------------------------------------------- subprocesses
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.mark.parametrize("key", ["tflite-int8", "onnx-float32"])
def test_no_tensorflow_imported(artifacts, shapes_dir, tmp_path, key):
    code = (
        "import sys\nfrom edgecnn.cli import app\n"
        "try:\n    app(['run', sys.argv[1], '--source', sys.argv[2], '--quiet'], prog_name='edgecnn')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'onnx', 'jax', 'torch'))\n"
        "print('HEAVY', bad)\nsys.exit(1 if bad else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(artifacts[key]), str(shapes_dir)], capture_output=True,
                         text=True, env=_env(), timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "HEAVY []" in res.stdout


def test_sigterm_mid_folder_leaves_complete_csv(int8_model, tmp_path):
    folder = write_dataset(tmp_path / "many", classes=["a", "b"], per_class=1500, size=48)
    out = tmp_path / "p.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgecnn", "run", str(int8_model), "--source", str(folder), "--save-csv", str(out),
         "--workers", "1", "--quiet"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 50):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stdout + stderr
    text = out.read_text()
    assert text.endswith("\n")
    rows = _csv(out)
    assert 50 <= len(rows) < 3000
    assert all(r["status"] == "ok" and r["label"] in ("alpha", "beta", "gamma") and r["latency_ms"] for r in rows)
    assert "Stopped by SIGTERM" in stdout


def test_option_validation(tflite_model, shapes_dir):
    with pytest.raises(ConfigError):
        run(RunOptions(model=tflite_model, source=str(shapes_dir), topk=0))
    with pytest.raises(DataError):
        run(RunOptions(model=tflite_model, source=str(shapes_dir / "*.nothing")))


def test_missing_delegate_is_a_clear_error(tflite_model):
    res = runner.invoke(app, ["run", str(tflite_model), "--source", "synthetic", "--delegate", "edgetpu",
                              "--delegate-option", "device=usb"])
    assert res.exit_code != 0 and "libedgetpu.so.1" in res.output and "libedgetpu1-std" in res.output


def test_onnx_reports_provider_and_unknown_provider_errors(onnx_model):
    with load_backend(onnx_model, providers=["cpu"], threads=1) as be:
        assert be.info()["provider"] == "CPUExecutionProvider"
    res = runner.invoke(app, ["run", str(onnx_model), "--source", "synthetic", "--providers", "tensorrt"])
    assert res.exit_code != 0 and "not available" in res.output


# ---------------------------------------------------------------------------------------------- one measurement
def test_live_fps_counts_results_in_a_window_not_gaps_inside_a_batch():
    """A batch delivers its results within microseconds; the bar read '955779.3 FPS' while the summary said 8,604/s."""
    from edgecnn.runtime.pipeline import Stats

    stats = Stats()
    stats.started -= 3.0  # a run going for 3 s
    now = time.perf_counter()
    stats.window = [now - 1e-6 * i for i in range(32)][::-1]  # one batch of 32, delivered at once
    stats.count = 96
    assert stats.fps() == 16.0  # 32 results in the last 2 s
    stats.finish()
    frozen = stats.elapsed
    assert stats.fps() == pytest.approx(96 / frozen) and stats.elapsed == frozen  # no longer ticking


def test_summary_figures_are_the_pipeline_stats(int8_model, shapes_dir):
    summary = run(RunOptions(model=int8_model, source=str(shapes_dir), batch=8, print_results=False))
    assert summary.throughput == pytest.approx(summary.count / summary.elapsed_s)
    assert "0.0ms" not in summary.speed_line() and "0.000ms" not in summary.speed_line()
