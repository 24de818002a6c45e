"""The monitors inside the real station engine: a station file's [monitor] and [capture] sections, a video that
darkens, the drift alarm in the station's rows, the monitor's own rows, and the captures."""

from __future__ import annotations

import json

from streams import darker, heldout_images, write_video

from edgecnn.station.engine import Station, run_station
from edgecnn.station.plan import resolve


def test_a_station_raises_drift_and_captures(parent_run, monitor_data, tmp_path):
    video = write_video(tmp_path / "line.avi", heldout_images(monitor_data / "held"), 300, seed=9, fps=50.0,
                        transform=darker(100, 0.4))  # paced by the engine at 50 FPS: 6 s
    path = tmp_path / "station.toml"
    path.write_text(f'''name = "line"
model = "{parent_run / 'model.keras'}"
[run]
save_jsonl = "rows.jsonl"
[[sources]]
name = "cam"
source = "{video}"
[monitor]
enabled = true
window = 40
every = 10
raise_after = 2
queue = 1000
max_fps = 0
[capture]
enabled = true
below = 0.9
margin = 0.3
queue = 1000
max_fps = 0
''')
    summary = run_station(resolve(station=path))
    assert summary.stopped_by == "end"
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    alarms = [r for r in rows if r["kind"] == "alarm"]
    assert ("cam", "drift", "raised") in {(a["source"], a["label"], a["verdict"]) for a in alarms}, alarms
    state = tmp_path / "line.state"
    mon = [json.loads(line) for line in (state / "monitor" / "monitor.jsonl").read_text().splitlines()]
    assert mon and mon[-1]["source"] == "cam" and "drift" in mon[-1]["alarms"]
    caps = [json.loads(line) for line in
            (state / "capture" / "captures" / "captures.jsonl").read_text().splitlines()]
    assert caps and all(c["model_sha256"] == summary_sha(parent_run) for c in caps)
    assert all((state / "capture" / "captures" / c["crop"]).is_file() and c["source"] == "cam" for c in caps)


def summary_sha(run) -> str:
    from edgecnn.fileio import sha256_file

    return sha256_file(run / "model.keras")


def test_the_monitors_figures_reach_metrics(parent_run, monitor_data, tmp_path):
    """``/metrics`` of a station reads the drift monitor's and capture's figures (serve's collector)."""
    from edgecnn.serve.metrics import Metrics

    video = write_video(tmp_path / "line.avi", heldout_images(monitor_data / "held"), 150, seed=4, fps=50.0,
                        transform=darker(50, 0.4))
    path = tmp_path / "station.toml"
    path.write_text(f'''name = "m"
model = "{parent_run / 'model.keras'}"
[[sources]]
name = "cam"
source = "{video}"
[monitor]
enabled = true
window = 30
every = 10
max_fps = 0
queue = 1000
[capture]
enabled = true
below = 0.95
max_fps = 0
queue = 1000
''')
    station = Station(resolve(station=path))
    station.start()
    try:
        station.run()
    finally:
        station.close()
    text = Metrics(station.model(), station).render()[0].decode()
    assert 'edgecnn_monitor_drift{region="frame",source="cam"}' in text
    assert "edgecnn_monitor_frames_total" in text and "edgecnn_capture_saved_total" in text
    assert "edgecnn_capture_suppression_rate" in text
