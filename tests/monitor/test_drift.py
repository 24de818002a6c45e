"""Drift and health monitoring on OpenCV-written videos of held-out images, through a real pipeline run."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from streams import blurred, darker, frozen, heldout_images, pipeline_events, write_video

from edgecnn.modelcard import ModelCard
from edgecnn.monitor import drift
from edgecnn.monitor.drift import DriftMonitor, ModelView, MonitorConfig
from edgecnn.monitor.health import Hysteresis
from edgecnn.monitor.stats import image_stats, psi, reference_from
from edgecnn.station.events import Alarm


def _card(run) -> ModelCard:
    return ModelCard.from_json((run / "modelcard.json").read_bytes())


def _monitor(run, **kw) -> DriftMonitor:
    card = _card(run)
    return DriftMonitor(MonitorConfig(enabled=True), card.reference, ModelView.from_card(card), start=False, **kw)


def _run(run, video) -> DriftMonitor:
    mon = _monitor(run)
    for ev in pipeline_events(run, video):
        mon.process(ev)
    return mon


def test_the_card_carries_the_reference(parent_run):
    ref = _card(parent_run).reference
    assert ref["num_images"] > 0 and ref["split"] == "val"
    assert len(ref["pixel_hist"]) == 3 and all(abs(sum(row) - 1) < 1e-3 for row in ref["pixel_hist"])
    assert abs(sum(ref["score_hist"]) - 1) < 1e-3 and abs(sum(ref["entropy_hist"]) - 1) < 1e-3
    assert ref["sharpness"]["p50"] > 0 and ref["focus"]["p50"] > 0


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (50, 24, 24, 3), dtype=np.uint8)
    ref = reference_from(imgs, None)
    same = np.sum([image_stats(i).hist for i in imgs], axis=0)
    dark = np.sum([image_stats((i * 0.5).astype(np.uint8)).hist for i in imgs], axis=0)
    assert psi(ref["pixel_hist"][0], same[0]) < 1e-6
    assert psi(ref["pixel_hist"][0], dark[0], 50, 50) > 1.0


def test_hysteresis_raises_after_k_and_clears_below_the_low_threshold():
    h = Hysteresis(on=0.25, off=0.1, raise_after=3, clear_after=2)
    assert [h.update(v) for v in (0.3, 0.3, 0.2, 0.3, 0.3, 0.3)] == [None] * 5 + [True]
    assert [h.update(v) for v in (0.2, 0.2, 0.05, 0.3, 0.05, 0.05)] == [None] * 5 + [False]  # between: holds
    assert not h.active


def test_ten_thousand_in_distribution_frames_raise_no_alarm(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "clean.avi", heldout_images(monitor_data / "held"), 10_000, seed=1)
    mon = _run(parent_run, video)
    assert mon.counters.frames == 10_000 and mon.counters.errors == 0
    assert mon.counters.evaluations >= 190
    assert mon.alarms == [], [a.detail for a in mon.alarms]


def test_a_thirty_percent_brightness_drop_raises_drift_within_500_frames(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "dark.avi", heldout_images(monitor_data / "held"), 2_000, seed=2,
                        transform=darker(1_000, 0.7))
    mon = _run(parent_run, video)
    raised = [a for a in mon.alarms if a.name == "drift" and a.active]
    assert raised, [a.detail for a in mon.alarms]
    frame = int(raised[0].detail.rsplit("frame ", 1)[1].split()[0])
    assert 1_000 < frame <= 1_500, raised[0].detail
    assert not any(a.name in ("frozen", "blur", "dark") for a in mon.alarms)  # 30 % darker is not "dark"


@pytest.mark.parametrize("kind", ["frozen", "blur"])
def test_a_frozen_and_a_blurred_stream_each_raise_their_own_alarm(parent_run, monitor_data, tmp_path, kind):
    transform = {"frozen": frozen(500), "blur": blurred(500, 2.5)}[kind]
    video = write_video(tmp_path / f"{kind}.avi", heldout_images(monitor_data / "held"), 1_200, seed=3,
                        transform=transform)
    mon = _run(parent_run, video)
    names = {a.name for a in mon.alarms if a.active}
    assert kind in names, [a.detail for a in mon.alarms]
    assert ({"frozen", "blur"} - {kind}).isdisjoint(names)
    first = next(a for a in mon.alarms if a.name == kind)
    assert int(first.detail.rsplit("frame ", 1)[1].split()[0]) > 500


def test_dark_and_saturated_images_raise_their_alarms(parent_run, monitor_data, tmp_path):
    imgs = heldout_images(monitor_data / "held")
    for name, factor in (("dark", 0.05), ("saturated", 12.0)):
        video = write_video(tmp_path / f"{name}.avi", imgs, 800, seed=4, transform=darker(400, factor))
        mon = _run(parent_run, video)
        assert name in {a.name for a in mon.alarms if a.active}, [a.detail for a in mon.alarms]


def test_the_observer_hands_off_writes_rows_and_calls_raise_alarm(parent_run, monitor_data, tmp_path):
    """The station's path: create(...), on_frame on the engine's thread, alarms through the callback, rows."""
    video = write_video(tmp_path / "dark.avi", heldout_images(monitor_data / "held"), 800, seed=5,
                        transform=darker(300, 0.5))
    got: list[Alarm] = []

    def raise_alarm(alarm: Alarm) -> None:
        got.append(alarm)
        raise RuntimeError("an output that fails must not stop the monitor")

    mon = drift.create(MonitorConfig(enabled=True, queue=4096, max_fps=0), station="line1", labels=["c0", "c1", "c2"],
                       model_sha256="x", state_dir=tmp_path / "state", raise_alarm=raise_alarm,
                       card=_card(parent_run))
    events = list(pipeline_events(parent_run, video))
    t0 = time.perf_counter()
    for ev in events:
        mon.on_frame(ev)
    handoff = time.perf_counter() - t0
    mon.close(timeout=60)
    assert mon.counters.frames == 800 and mon.counters.skipped == 0
    assert "drift" in {a.name for a in got if a.active}
    assert mon.counters.errors >= 1 and "raise_alarm" in mon.counters.last_error
    rows = [json.loads(line) for line in (tmp_path / "state" / "monitor.jsonl").read_text().splitlines()]
    assert len(rows) == mon.counters.evaluations and rows[-1]["alarms"] and rows[-1]["source"] == "cam"
    assert any(r["transitions"] for r in rows)
    names = {m[0] for m in mon.metrics()}
    assert {"edgecnn_monitor_drift", "edgecnn_monitor_alarm", "edgecnn_monitor_frames_total"} <= names
    assert handoff < 800 * 0.01  # handing off is queueing only (a loose bound: no image maths on this thread)


def test_a_full_queue_skips_and_counts_instead_of_blocking(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "v.avi", heldout_images(monitor_data / "held"), 300, seed=6)
    events = list(pipeline_events(parent_run, video))
    gate = threading.Event()
    mon = drift.create(MonitorConfig(enabled=True, queue=2, max_fps=0), card=_card(parent_run))
    original = mon.process
    mon.process = lambda ev: (gate.wait(10), original(ev))  # a monitor thread stuck on its first frame
    for ev in events:
        mon.on_frame(ev)  # returns at once even though nothing drains
    gate.set()
    mon.close(timeout=30)
    assert mon.counters.skipped >= 300 - 3 and mon.counters.frames + mon.counters.skipped == 300


def test_without_a_reference_drift_is_off_and_said(monitor_data, parent_run, tmp_path):
    video = write_video(tmp_path / "blur.avi", heldout_images(monitor_data / "held"), 900, seed=8,
                        transform=blurred(400, 2.5))
    card = _card(parent_run)
    mon = DriftMonitor(MonitorConfig(enabled=True), {}, ModelView.from_card(card), start=False)
    for ev in pipeline_events(parent_run, video):
        mon.process(ev)
    row = next(iter(mon.latest.values()))
    assert row["drift"] is None and "no reference" in row["note"]
    assert "blur" in {a.name for a in mon.alarms}  # blur compares with the stream's own first window


def test_max_fps_bounds_what_the_monitor_and_capture_look_at(parent_run, monitor_data, tmp_path):
    from edgecnn.monitor.capture import Capture, CaptureConfig

    video = write_video(tmp_path / "v.avi", heldout_images(monitor_data / "held"), 200, seed=10)
    events = list(pipeline_events(parent_run, video))
    mon = drift.create(MonitorConfig(enabled=True, max_fps=5, queue=1000), card=_card(parent_run))
    cap = Capture(CaptureConfig(enabled=True, below=1.01, max_fps=5, queue=1000), tmp_path / "c")
    t0 = time.monotonic()
    for ev in events:  # 200 frames handed over in well under a second
        mon.on_frame(ev)
        cap.on_frame(ev)
    seconds = time.monotonic() - t0
    mon.close(timeout=30)
    cap.close(timeout=30)
    allowed = 5 * seconds + 1
    assert 1 <= mon.counters.frames <= allowed and mon.counters.not_sampled == 200 - mon.counters.frames
    assert 1 <= cap.stats.saved + cap.stats.suppressed <= allowed and cap.stats.rate_limited >= 200 - allowed


def test_close_looks_at_every_queued_frame_however_late_the_thread_is(tmp_path):
    """The race behind a flaky station test: the engine finishes a short video long before the monitor's thread
    has looked at its frames (a loaded box), and close's bounded wait expired first, so the frozen alarm came
    after the engine had drained alarms and closed its rows (lost). Now close stops the thread after the frame in
    hand and looks at the rest itself: every queued frame is looked at, and its alarms raised, before it returns."""
    from edgecnn.station.events import WHOLE_FRAME, FrameEvent, Region

    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    events = [FrameEvent("cam", i, float(i), frame, (Region(WHOLE_FRAME, 0, 0, 64, 48),), ()) for i in range(40)]
    config = MonitorConfig(enabled=True, window=20, every=5, frozen_frames=5, raise_after=1, max_fps=0)
    for started in (True, False):  # a thread that lags (each frame slow), and one that never got the CPU at all
        got: list[Alarm] = []
        mon = DriftMonitor(config, {}, ModelView(), raise_alarm=got.append, rows_path=tmp_path / f"{started}.jsonl",
                           start=started)
        original = mon.process
        mon.process = lambda ev, original=original: (time.sleep(0.02), original(ev))
        for ev in events:
            mon.on_frame(ev)
        mon.close(timeout=0.2)  # far less than the 0.8 s the thread would need
        assert mon.counters.frames == 40 and mon.counters.skipped == 0, mon.counters
        assert [a.name for a in got if a.active] == ["frozen"]
        rows = (tmp_path / f"{started}.jsonl").read_text().splitlines()
        assert len(rows) == mon.counters.evaluations == 5


def test_capture_close_writes_every_queued_capture(tmp_path):
    """The capture thread's share of the same race: what was queued is written (and captures.jsonl closed after
    the last line), however little the thread ran before close."""
    from edgecnn.monitor.capture import Capture, CaptureConfig
    from edgecnn.station.events import WHOLE_FRAME, FrameEvent, Region, RegionPrediction

    rng = np.random.default_rng(1)
    cap = Capture(CaptureConfig(enabled=True, sample=1.0, hash_distance=0, max_fps=0, queue=64), tmp_path / "c")
    original = cap.process
    cap.process = lambda *a: (time.sleep(0.02), original(*a))[1]
    for i in range(30):
        img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        pred = RegionPrediction("cam", WHOLE_FRAME, i, float(i), "a", 0.9, (("a", 0.9), ("b", 0.1)), 0)
        cap.on_frame(FrameEvent("cam", i, float(i), img, (Region(WHOLE_FRAME, 0, 0, 64, 48),), (pred,)))
    cap.close(timeout=0.1)
    lines = (tmp_path / "c" / "captures.jsonl").read_text().splitlines()
    assert cap.stats.skipped == 0 and cap.stats.saved == len(lines) == 30, cap.stats
