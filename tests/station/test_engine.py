"""The station engine on real streams: MJPEG over HTTP served on 127.0.0.1 and OpenCV-written video files, with
regions; a stalled source does not stop the others; rows and decisions carry what the issue asks; the CLI."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.errors import ConfigError
from edgecnn.station.engine import Station, run_station
from edgecnn.station.plan import resolve
from station.streams import MJPEGServer, write_video  # tests/ is on sys.path (tests/station is a package)


def station_file(tmp_path: Path, model: Path, sources: str, extra: str = "") -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f'name = "t"\nmodel = "{model}"\n[run]\nsave_jsonl = "rows.jsonl"\nsave_csv = "rows.csv"\n'
                    f'{extra}\n{sources}\n[rules]\nvotes = 2\nwindow = 3\nreject = ["beta"]\n')
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_streams_and_a_video_with_regions(tmp_path, int8_model):
    video = write_video(tmp_path / "line.avi", count=12, fps=10.0)
    with MJPEGServer(fps=10.0) as cam:
        sources = f"""
[[sources]]
name = "cam1"
source = "{cam.url('a')}"
[[sources.regions]]
name = "left"
box = [0, 0, 48, 64]
[[sources.regions]]
name = "right"
box = [0.5, 0.0, 1.0, 1.0]
[[sources]]
name = "cam2"
source = "{cam.url('b')}"
[[sources]]
name = "video"
source = "{video}"
[[sources.regions]]
name = "top"
box = [0.0, 0.0, 1.0, 0.5]
"""
        plan = resolve(station=station_file(tmp_path, int8_model, sources, "duration = 2.5"))
        summary = run_station(plan)
    assert summary.stopped_by == "end" and summary.frames > 0 and summary.batches <= summary.frames
    assert {n: s["frames"] > 0 for n, s in summary.sources.items()} == {"cam1": True, "cam2": True, "video": True}
    assert summary.sources["video"]["frames"] <= 12
    out = rows(tmp_path / "rows.jsonl")
    preds = [r for r in out if r["kind"] == "prediction"]
    assert {(r["source"], r["region"]) for r in preds} == {("cam1", "left"), ("cam1", "right"), ("cam2", "frame"),
                                                           ("video", "top")}
    assert all(r["captured_utc"].endswith("Z") and r["latency_ms"] >= 0 and r["label"] for r in preds)
    decisions = [r for r in out if r["kind"] == "decision"]
    seqs = [r["seq"] for r in decisions]
    assert seqs == list(range(1, len(seqs) + 1)) and any(r["source"] == "station" for r in decisions)
    assert summary.last_seq == seqs[-1] == int((tmp_path / "t.state" / "sequence").read_text())
    csv_lines = (tmp_path / "rows.csv").read_text().splitlines()
    assert csv_lines[0].startswith("time_utc,kind,source,region,frame,captured_utc") and len(csv_lines) == len(out) + 1


def test_a_stalled_source_does_not_stop_the_others(tmp_path, int8_model):
    with MJPEGServer(fps=10.0) as healthy, MJPEGServer(fps=10.0, seed=2) as hung:
        sources = f"""
[[sources]]
name = "ok"
source = "{healthy.url()}"
[[sources]]
name = "hung"
source = "{hung.url()}"
"""
        plan = resolve(station=station_file(tmp_path, int8_model, sources))
        station = Station(plan, stall_s=0.8)
        station.start()
        threading.Timer(1.0, hung.stall).start()
        threading.Timer(4.0, station.stop).start()
        try:
            summary = station.run()
        finally:
            station.close()
    out = rows(tmp_path / "rows.jsonl")
    hung_last = max(r["captured_utc"] for r in out if r["source"] == "hung" and r["kind"] == "prediction")
    after = [r for r in out if r["source"] == "ok" and r["kind"] == "prediction" and r["captured_utc"] > hung_last]
    assert len(after) >= 10, f"the healthy source delivered {len(after)} frames after the other stalled"
    alarms = [r for r in out if r["kind"] == "alarm"]
    assert [(a["source"], a["label"], a["verdict"]) for a in alarms][:1] == [("hung", "source_down", "raised")]
    assert summary.alarms >= 1 and summary.sources["hung"]["frames"] < summary.sources["ok"]["frames"]


def test_a_region_outside_the_frame_is_one_line(tmp_path, int8_model):
    video = write_video(tmp_path / "v.avi", count=5)
    sources = f'[[sources]]\nname = "v"\nsource = "{video}"\n[[sources.regions]]\nname = "big"\nbox = [0, 0, 500, 64]\n'
    plan = resolve(station=station_file(tmp_path, int8_model, sources))
    with pytest.raises(ConfigError) as info:
        run_station(plan)
    assert str(info.value) == ("sources.v.regions.big.box: expected a box inside the 96x64 frame the source "
                               "delivers; received [0, 0, 500, 64].")


def test_a_label_the_model_lacks_is_refused(tmp_path, int8_model):
    video = write_video(tmp_path / "v.avi", count=3)
    path = station_file(tmp_path, int8_model, f'[[sources]]\nname = "v"\nsource = "{video}"\n')
    path.write_text(path.read_text().replace('reject = ["beta"]', 'reject = ["NG"]'))
    with pytest.raises(ConfigError, match=r"rules: expected labels of the model .*received \['NG'\]"):
        run_station(resolve(station=path))


def test_the_sequence_continues_after_a_restart(tmp_path, int8_model):
    video = write_video(tmp_path / "v.avi", count=6, fps=30.0)
    path = station_file(tmp_path, int8_model, f'[[sources]]\nname = "v"\nsource = "{video}"\n', "")
    path.write_text(path.read_text().replace("window = 3", "window = 3\nemit = \"every\""))
    first = run_station(resolve(station=path))
    second = run_station(resolve(station=path))
    assert first.last_seq > 0 and second.last_seq == 2 * first.last_seq
    seqs = [r["seq"] for r in rows(tmp_path / "rows.jsonl") if r["kind"] == "decision"]
    assert seqs == list(range(1, second.last_seq + 1))  # the rows file kept the first run's rows too


def test_cli_check_init_run(tmp_path, int8_model, monkeypatch):
    from edgecnn.cli import app

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["station", "init", "station.toml", "--model", str(int8_model), "--reject", "beta"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["station", "init", "station.toml"])
    assert res.exit_code != 0 and "exists" in res.output
    res = runner.invoke(app, ["station", "check", "station.toml"])
    assert res.exit_code == 0 and res.output.rstrip().endswith("OK"), res.output
    bad = tmp_path / "bad.toml"
    bad.write_text((tmp_path / "station.toml").read_text().replace("votes = 3", "vtoes = 3").replace(
        'name = "cam2"', 'name = "cam1"'))
    res = runner.invoke(app, ["station", "check", str(bad)])
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert any("rules.vtoes: unknown field. Did you mean 'votes'?" in x for x in lines), res.output
    assert any("sources[1].name: expected a name no other source has" in x for x in lines), res.output
    res = runner.invoke(app, ["run", "--station", "station.toml", "--duration", "1.5", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "Station line1" in res.output and "source cam1:" in res.output and "source cam2:" in res.output
    res = runner.invoke(app, ["station", "schema"])
    assert res.exit_code == 0 and json.loads(res.output)["properties"]["rules"]["properties"]["votes"]["minimum"] == 1


def test_an_unreachable_output_stops_the_start_unless_offline(tmp_path, int8_model):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    video = write_video(tmp_path / "v.avi", count=4)
    extra = f'\n[[outputs]]\nkind = "mqtt"\nhost = "127.0.0.1"\nport = {port}\n'
    path = station_file(tmp_path, int8_model, f'[[sources]]\nname = "v"\nsource = "{video}"\n' + extra)
    from edgecnn.errors import EdgeCNNError
    from edgecnn.station.check import check_station_file

    report = check_station_file(path, timeout=1.0)
    assert not report.ok and any("output mqtt: NOT reachable" in x for x in report.lines())
    offline = check_station_file(path, reach=False).lines()  # --offline: the output is named, not tried
    assert offline[0].endswith("1 source, 1 output") and "  output mqtt (mqtt): not tried (--offline)" in offline
    with pytest.raises(EdgeCNNError, match=r"^outputs\.mqtt: .*--start-offline"):
        run_station(resolve(station=path))
    summary = run_station(resolve(station=path, start_offline=True))
    assert summary.frames > 0 and summary.outputs[0].kind == "mqtt" and not summary.outputs[0].connected
    assert time.time() > 0


def test_decisions_reach_a_real_broker_and_the_station_serves_its_status(tmp_path, int8_model):
    """MQTT (QoS 1) to a real mosquitto, Modbus and the [serve] section: every decision row's sequence number
    arrives at the subscriber; /api/status and /metrics show the station's sources while it runs."""
    import urllib.request

    from brokers import MOSQUITTO, Mosquitto, Subscriber, free_port

    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed: apt-get install mosquitto (make system-deps installs it)")
    pytest.importorskip("paho.mqtt.client")
    pytest.importorskip("starlette")
    from edgecnn.station.engine import serve_station

    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgecnn/#")
    try:
        with MJPEGServer(fps=10.0) as cam:
            extra = (f'\n[[outputs]]\nkind = "mqtt"\nhost = "127.0.0.1"\nport = {broker.port}\nqos = 1\n'
                     f'\n[[outputs]]\nkind = "modbus"\nhost = "127.0.0.1"\nport = {free_port()}\n'
                     '\n[serve]\nport = 0\n')
            path = station_file(tmp_path, int8_model, f'[[sources]]\nname = "cam"\nsource = "{cam.url()}"\n' + extra)
            station = Station(resolve(station=path))
            station.start()
            served = serve_station(station)
            try:
                threading.Timer(2.5, station.stop).start()
                time.sleep(1.2)
                status = json.loads(urllib.request.urlopen(served.url + "/api/status", timeout=5).read())
                metrics = urllib.request.urlopen(served.url + "/metrics", timeout=5).read().decode()
                summary = station.run()
            finally:
                served.close()
                station.close()
        decisions = [r["seq"] for r in rows(tmp_path / "rows.jsonl") if r["kind"] == "decision"]
        assert decisions and sub.wait_for(lambda: sorted({p["seq"] for p in sub.payloads("/decision")}) == decisions)
        assert "cam" in json.dumps(status) and "edgecnn" in metrics
        kinds = {o.kind: o for o in summary.outputs}
        assert kinds["mqtt"].sent >= len(decisions) and kinds["modbus"].kind == "modbus"
    finally:
        sub.close()
        broker.stop()


def test_monitor_alarms_and_capture_run_as_observers(tmp_path, int8_model):
    """The [monitor] and [capture] sections: a frozen camera (identical frames) raises an alarm that reaches the
    rows; captured regions land in the state folder."""
    import cv2
    import numpy as np

    video = tmp_path / "frozen.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for _ in range(60):
        vw.write(frame)
    vw.release()
    extra = ('\n[monitor]\nenabled = true\nwindow = 20\nevery = 5\nfrozen_frames = 5\nraise_after = 1\nmax_fps = 0\n'
             '\n[capture]\nenabled = true\nsample = 1.0\nhash_distance = 0\nmax_fps = 0\n')
    path = station_file(tmp_path, int8_model, f'[[sources]]\nname = "v"\nsource = "{video}"\n' + extra)
    summary = run_station(resolve(station=path))
    alarms = [r for r in rows(tmp_path / "rows.jsonl") if r["kind"] == "alarm"]
    assert summary.alarms >= 1 and any(a["label"] == "frozen" and a["verdict"] == "raised" for a in alarms), alarms
    capture = tmp_path / "t.state" / "capture" / "captures"  # captures.jsonl exists from the start: read it
    lines = [json.loads(line) for line in (capture / "captures.jsonl").read_text().splitlines()]
    assert lines and all((capture / rec["crop"]).is_file() for rec in lines), "capture wrote nothing"


def test_run_with_capture_flags_runs_as_a_one_source_station(tmp_path, int8_model, monkeypatch):
    """`edgecnn run MODEL --source VIDEO --capture --capture-sample 1` (flags generated from the capture section's
    dataclass): every frame is classified (a file source is never thinned), captures land in ./edgecnn.state."""
    from edgecnn.cli import app

    video = write_video(tmp_path / "v.avi", count=8, fps=30.0)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["run", str(int8_model), "--source", str(video), "--capture", "--capture-sample",
                                   "1", "--capture-hash-distance", "0", "--capture-max-fps", "0", "--save-jsonl",
                                   "rows.jsonl", "--quiet"])
    assert res.exit_code == 0, res.output
    preds = [r for r in rows(tmp_path / "rows.jsonl") if r["kind"] == "prediction"]
    assert len(preds) == 8 and {r["source"] for r in preds} == {"source"}
    assert [p for p in (tmp_path / "edgecnn.state" / "capture").rglob("*") if p.is_file()]
    res = CliRunner().invoke(app, ["run", str(int8_model), "--source", str(video), "--capture-below", "2"])
    assert res.exit_code == 2 and "--capture-below" in res.output


def test_a_stream_not_up_at_start_is_retried_and_joins(tmp_path, int8_model):
    """A camera that is not up when the station starts is opened again with back-off, as a running one is
    reconnected; the station runs its other sources meanwhile."""
    from brokers import free_port

    port = free_port()
    video = write_video(tmp_path / "v.avi", count=200, fps=20.0)
    sources = (f'[[sources]]\nname = "late"\nsource = "http://127.0.0.1:{port}/late.mjpg"\n'
               f'[[sources]]\nname = "video"\nsource = "{video}"\n')
    station = Station(resolve(station=station_file(tmp_path, int8_model, sources, "reconnect_tries = 8")))
    station.start()
    server: list[MJPEGServer] = []

    def come_up() -> None:
        server.append(MJPEGServer(fps=10.0, port=port))

    threading.Timer(1.0, come_up).start()
    threading.Timer(6.0, station.stop).start()
    try:
        summary = station.run()
    finally:
        station.close()
        for s in server:
            s.close()
    assert summary.sources["late"]["frames"] > 0 and summary.sources["late"]["reconnects"] >= 1
    assert summary.sources["video"]["frames"] > 0


def test_parquet_rows(tmp_path, int8_model):
    pq = pytest.importorskip("pyarrow.parquet")
    video = write_video(tmp_path / "v.avi", count=6, fps=30.0)
    path = station_file(tmp_path, int8_model, f'[[sources]]\nname = "v"\nsource = "{video}"\n',
                        'save_parquet = "rows.parquet"')
    summary = run_station(resolve(station=path))
    table = pq.read_table(tmp_path / "rows.parquet").to_pylist()
    assert len(table) == len(rows(tmp_path / "rows.jsonl")) and summary.frames == 6
    assert {r["kind"] for r in table} == {"prediction", "decision"} and {r["source"] for r in table} == {"v", "station"}
    assert [r["seq"] for r in table if r["kind"] == "decision"] == list(range(1, summary.last_seq + 1))
