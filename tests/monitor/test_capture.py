"""Capture of doubtful frames from a real pipeline run over OpenCV-written videos, and ``edgecnn capture``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from streams import darker, heldout_images, pipeline_events, write_video

from edgecnn.monitor import capture
from edgecnn.monitor.capture import Capture, CaptureConfig, collect, dhash, hamming, triggers
from edgecnn.station.events import Decision, FrameEvent, Region, RegionPrediction

ROOT = Path(__file__).resolve().parents[2]


def _lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "captures.jsonl").read_text().splitlines()]


def test_dhash_is_near_for_noisy_copies_and_far_for_other_images(monitor_data):
    imgs = heldout_images(monitor_data / "held")
    rng = np.random.default_rng(0)
    noisy = np.clip(imgs[0] + rng.normal(0, 4, imgs[0].shape), 0, 255).astype(np.uint8)
    assert hamming(dhash(imgs[0]), dhash(noisy)) <= 6
    far = [hamming(dhash(imgs[0]), dhash(other)) for other in imgs[31:]]  # other classes
    assert np.median(far) > 12


def test_triggers_name_every_reason():
    def pred(region, scores):
        top = sorted(zip("abc", scores), key=lambda t: -t[1])
        return RegionPrediction("cam", region, 1, 0.0, top[0][0], top[0][1], tuple(top), 0)

    regions = tuple(Region(n, 0, 0, 4, 4) for n in ("sure", "low", "close", "flipped"))
    preds = (pred("sure", (0.98, 0.01, 0.01)), pred("low", (0.5, 0.3, 0.2)), pred("close", (0.62, 0.38, 0.0)),
             pred("flipped", (0.97, 0.02, 0.01)))
    ev = FrameEvent("cam", 1, 0.0, np.zeros((4, 4, 3), np.uint8), regions, preds,
                    decisions=(Decision(1, 0.0, "cam", "flipped", "a", changed=True),))
    import random

    why = triggers(ev, CaptureConfig(enabled=True, below=0.6, margin=0.25), random.Random(0))
    assert why == {1: ["low_score", "small_margin"], 2: ["small_margin"], 3: ["flip"]}
    everything = triggers(ev, CaptureConfig(enabled=True, flips=False, below=0.0, margin=0.0, sample=1.0),
                          random.Random(0))
    assert everything == {i: ["sample"] for i in range(4)}


def test_capture_suppresses_near_duplicates_writes_lines_and_files(parent_run, monitor_data, tmp_path):
    """Each held-out image stands 10 frames under the camera: ~9 in 10 captures are near-duplicates."""
    video = write_video(tmp_path / "parts.avi", heldout_images(monitor_data / "held"), 600, seed=1, repeat=10)
    out = tmp_path / "captures"
    cap = capture.create(CaptureConfig(enabled=True, below=1.01, queue=1000, out="captures", max_fps=0), state_dir=tmp_path,
                         model_sha256="abc")
    for ev in pipeline_events(parent_run, video):
        cap.on_frame(ev)
    cap.close(timeout=60)
    s = cap.stats
    assert s.skipped == 0 and s.errors == 0, s.last_error
    assert s.triggered == 600 and s.saved + s.suppressed == 600
    assert 0.8 <= s.suppression_rate <= 0.95, s.to_json()
    lines = _lines(out)
    assert len(lines) == s.saved
    for rec in lines:
        assert (out / rec["crop"]).is_file()
        assert rec["why"] == ["low_score"] and rec["model_sha256"] == "abc" and rec["source"] == "cam"
        assert rec["region"] == "frame" and len(rec["topk"]) == 3 and rec["label"] == rec["topk"][0][0]
        assert {"time", "score", "margin", "box", "frame", "dhash"} <= set(rec)
    assert not [p for p in out.rglob("*") if "tmp" in p.name]  # atomic writes leave no temp files


def test_a_shifted_stream_is_captured_for_its_low_scores(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "dark.avi", heldout_images(monitor_data / "held"), 400, seed=2,
                        transform=darker(200, 0.35))
    cap = Capture(CaptureConfig(enabled=True, below=0.8, margin=0.3, hash_distance=0), tmp_path / "c", start=False)
    for ev in pipeline_events(parent_run, video):
        cap.process(ev)
    frames = [r["frame"] for r in _lines(tmp_path / "c")]
    assert frames and sum(f >= 200 for f in frames) > 3 * sum(f < 200 for f in frames)


def test_regions_are_cropped_and_the_full_frame_kept_once(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "v.avi", heldout_images(monitor_data / "held"), 20, seed=3)
    cap = Capture(CaptureConfig(enabled=True, below=1.01, hash_distance=0), tmp_path / "c", start=False)
    for ev in pipeline_events(parent_run, video):
        regions = (Region("left", 0, 0, 24, 48), Region("right", 24, 0, 48, 48))
        ev = FrameEvent(ev.source, ev.frame, ev.captured_at, ev.image, regions,
                        tuple(RegionPrediction("cam", r.name, ev.frame, ev.captured_at, ev.predictions[0].label,
                                               ev.predictions[0].score, ev.predictions[0].topk, 0) for r in regions))
        cap.process(ev)
    lines = _lines(tmp_path / "c")
    assert len(lines) == cap.stats.saved and cap.stats.saved + cap.stats.suppressed == 40  # exact repeats: 0 bits
    assert {r["region"] for r in lines} == {"left", "right"} and cap.stats.saved >= 30
    frames = sorted(p.name for p in (tmp_path / "c" / "frames").iterdir())
    assert frames == sorted({Path(r["frame_file"]).name for r in lines})  # one full frame per captured frame
    from edgecnn.imaging import decode_image

    assert decode_image(tmp_path / "c" / lines[0]["crop"]).shape[:2] == (48, 24)


def test_disk_stays_under_max_gb_oldest_first(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "v.avi", heldout_images(monitor_data / "held"), 200, seed=4)
    limit_gb = 60_000 / 1e9  # 60 kB: a few dozen 48 px PNGs
    cap = Capture(CaptureConfig(enabled=True, below=1.01, hash_distance=0, max_gb=limit_gb), tmp_path / "c",
                  start=False)
    for ev in pipeline_events(parent_run, video):
        cap.process(ev)
    on_disk = sum(f.stat().st_size for f in (tmp_path / "c" / "crops").iterdir())
    assert cap.stats.evicted > 0 and on_disk <= 60_000
    kept = sorted(f.name for f in (tmp_path / "c" / "crops").iterdir())
    lines = _lines(tmp_path / "c")
    assert len(lines) == cap.stats.saved and kept == sorted(Path(r["crop"]).name for r in lines[-len(kept):])  # newest kept
    index = tmp_path / "c" / "captures.jsonl"
    index.write_bytes(index.read_bytes() + b'{"id": "torn by a ki')  # a kill mid-line
    again = Capture(CaptureConfig(enabled=True, max_gb=limit_gb), tmp_path / "c", start=False)
    assert again.stats.bytes == on_disk  # a restart knows what is there
    again._jsonl.write('{"id": "next"}\n')
    again.close()
    assert index.read_text().splitlines()[-1] == '{"id": "next"}'  # the next line stays whole


def test_a_stuck_capture_thread_never_blocks_the_engine(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "v.avi", heldout_images(monitor_data / "held"), 100, seed=5)
    cap = Capture(CaptureConfig(enabled=True, below=1.01, queue=2, max_fps=0), tmp_path / "c")
    gate = threading.Event()
    original = cap.process
    cap.process = lambda *a: (gate.wait(10), original(*a))
    for ev in pipeline_events(parent_run, video):
        cap.on_frame(ev)
    gate.set()
    cap.close(timeout=30)
    assert cap.stats.skipped >= 100 - 3


def test_collect_every_interval_by_the_video_clock_and_on_key(monitor_data, tmp_path):
    video = write_video(tmp_path / "v.avi", heldout_images(monitor_data / "held"), 60, seed=6, fps=30.0)
    r = collect(tmp_path / "ds", "NG", source=str(video), every="0.5s")
    assert r.frames == 60 and len(r.saved) == 4 and all(p.parent == tmp_path / "ds" / "NG" for p in r.saved)
    r = collect(tmp_path / "ds", "OK", source=str(video), on_key=True, keys=iter(["", "n", "", "q"]))
    assert len(r.saved) == 2 and len(list((tmp_path / "ds" / "OK").iterdir())) == 2


def test_capture_command_collects_and_rejects_bad_input(monitor_data, tmp_path):
    video = write_video(tmp_path / "v.avi", heldout_images(monitor_data / "held"), 30, seed=7)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "edgecnn", "capture", "--source", str(video), "--out", str(tmp_path / "ds")]
    ok = subprocess.run(cmd + ["--label", "NG", "--every", "0.25s"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(list((tmp_path / "ds" / "NG").iterdir())) == 4 and "4 images" in ok.stdout
    bad = subprocess.run(cmd + ["--label", "NG", "--every", "soon"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "Expected an interval" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
