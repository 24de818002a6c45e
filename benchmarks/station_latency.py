"""The station engine on this machine, int8 TFLite model, real streams on 127.0.0.1 and a real mosquitto broker.

1. Latency: one MJPEG stream at 30 FPS, every frame decided (``emit = "every"``) and published with MQTT QoS 1;
   a subscriber on the same broker timestamps each decision message. Reported: capture -> decision (the engine's
   rows) and capture -> decision -> broker -> subscriber (an upper bound of the publish acknowledgement, which the
   broker sends as it forwards), p50/p90/p99. Target: p99 <= 50 ms.
2. Rates: four MJPEG streams at 5 FPS, two regions each, and a fifth stream that stalls after one second. Each of
   the four must be processed within +-10 % of 5 FPS, and the stalled one must not change that.
3. Cost of outputs: a synthetic source as fast as the engine takes it (two regions, every frame decided), with
   MQTT (QoS 1) + OPC UA + Modbus on, against no outputs; rounds interleaved; ratio of frames per second.
   Target: >= 0.95x.

The load average is printed with every figure: the machine is shared, so figures are noisy (ARCHITECTURE.md).

Usage: python benchmarks/station_latency.py [--model model_int8.tflite] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from brokers import MOSQUITTO, Mosquitto, Subscriber, free_port  # noqa: E402
from station.streams import MJPEGServer  # noqa: E402

from edgecnn.station.engine import Station  # noqa: E402
from edgecnn.station.plan import resolve  # noqa: E402


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round((len(v) - 1) * q / 100)))] if v else float("nan")


def write_station(path: Path, model: Path, sources: str, outputs: str = "", extra_rules: str = "") -> Path:
    path.write_text(f'name = "bench"\nmodel = "{model}"\n[run]\nthreads = 1\nsave_jsonl = "rows.jsonl"\n{sources}\n'
                    f'[rules]\nvotes = 1\nwindow = 1\n{extra_rules}\n{outputs}\n')
    return path


def run_for(path: Path, seconds: float, during: object = None) -> tuple[Station, object]:
    station = Station(resolve(station=path))
    station.start()
    timers = [threading.Timer(seconds, station.stop)]
    if callable(during):
        timers.append(threading.Timer(1.0, during))
    for t in timers:
        t.start()
    try:
        summary = station.run()
    finally:
        for t in timers:
            t.cancel()
        station.close()
    return station, summary


def latency(model: Path, work: Path, seconds: float) -> dict:
    broker = Mosquitto(work / "broker").start()
    sub = Subscriber(broker.port, "edgecnn/#", client_id="bench-sub")
    arrivals: dict[int, float] = {}
    original = sub._on_message

    def stamp(client, userdata, msg) -> None:  # the subscriber's receive time of each decision
        if msg.topic.endswith("/decision"):
            arrivals[json.loads(msg.payload)["seq"]] = time.time()
        original(client, userdata, msg)

    sub.client.on_message = stamp
    try:
        with MJPEGServer(fps=30.0, width=160, height=120) as cam:
            outputs = f'[[outputs]]\nkind = "mqtt"\nhost = "127.0.0.1"\nport = {broker.port}\nqos = 1\n'
            path = write_station(work / "latency.toml", model, f'[[sources]]\nname = "cam"\nsource = "{cam.url()}"\n',
                                 outputs, 'emit = "every"')
            _, summary = run_for(path, seconds)
        sub.wait_for(lambda: len(arrivals) >= summary.decisions, timeout=10)
        rows = [json.loads(x) for x in (work / "rows.jsonl").read_text().splitlines()]
        decisions = [r for r in rows if r["kind"] == "decision" and r["source"] == "cam"]
        engine = [r["latency_ms"] for r in decisions]
        import datetime as dt

        def epoch(text: str) -> float:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

        wire = [(arrivals[r["seq"]] - epoch(r["captured_utc"])) * 1000 for r in decisions if r["seq"] in arrivals]
        fps = summary.sources["cam"]["fps"]
        return {"frames": summary.frames, "fps": round(fps, 2), "decisions": len(decisions),
                "received": len(wire), "capture_to_decision_ms": {q: round(pct(engine, q), 2) for q in (50, 90, 99)},
                "capture_to_subscriber_ms": {q: round(pct(wire, q), 2) for q in (50, 90, 99)},
                "target_p99_ms": 50, "pass": bool(wire) and pct(wire, 99) <= 50, "load": load()}
    finally:
        sub.close()
        broker.stop()


def rates(model: Path, work: Path, seconds: float) -> dict:
    servers = [MJPEGServer(fps=5.0, width=160, height=120, seed=i) for i in range(5)]
    try:
        sources = ""
        for i, s in enumerate(servers):
            sources += f'[[sources]]\nname = "cam{i}"\nsource = "{s.url()}"\n'
            sources += ('[[sources.regions]]\nname = "left"\nbox = [0.0, 0.0, 0.5, 1.0]\n'
                        '[[sources.regions]]\nname = "right"\nbox = [0.5, 0.0, 1.0, 1.0]\n')
        (work / "rows.jsonl").unlink(missing_ok=True)
        path = write_station(work / "rates.toml", model, sources)
        _, summary = run_for(path, seconds, during=servers[4].stall)
        per = {name: round(s["fps"], 2) for name, s in summary.sources.items()}
        within = {name: abs(per[name] - 5.0) <= 0.5 for name in ("cam0", "cam1", "cam2", "cam3")}
        return {"target_fps": 5.0, "fps": per, "within_10pct": within, "stalled": "cam4", "alarms": summary.alarms,
                "pass": all(within.values()), "load": load()}
    finally:
        for s in servers:
            s.close()


def outputs_cost(model: Path, work: Path, seconds: float, rounds: int) -> dict:
    broker = Mosquitto(work / "broker2").start()
    sources = ('[[sources]]\nname = "fast"\nsource = "synthetic:300:160x120"\n[[sources.regions]]\nname = "a"\n'
               'box = [0.0, 0.0, 0.5, 1.0]\n[[sources.regions]]\nname = "b"\nbox = [0.5, 0.0, 1.0, 1.0]\n')
    on_fps: list[float] = []
    off_fps: list[float] = []
    try:
        for _ in range(rounds):
            for on in (False, True):
                outputs = ""
                if on:
                    outputs = (f'[[outputs]]\nkind = "mqtt"\nhost = "127.0.0.1"\nport = {broker.port}\nqos = 1\n'
                               f'[[outputs]]\nkind = "opcua"\nhost = "127.0.0.1"\nport = {free_port()}\n'
                               f'[[outputs]]\nkind = "modbus"\nhost = "127.0.0.1"\nport = {free_port()}\n')
                (work / "rows.jsonl").unlink(missing_ok=True)
                path = write_station(work / f"cost_{on}.toml", model, sources, outputs, 'emit = "every"')
                _, summary = run_for(path, seconds)
                (on_fps if on else off_fps).append(summary.frames / summary.elapsed_s)
    finally:
        broker.stop()
    ratio = statistics.median(on_fps) / statistics.median(off_fps)
    return {"fps_outputs_on": [round(x, 1) for x in on_fps], "fps_outputs_off": [round(x, 1) for x in off_fps],
            "ratio": round(ratio, 3), "target": 0.95, "pass": ratio >= 0.95, "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="int8 .tflite (default: trained and exported, not timed)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "station_latency.json")
    args = ap.parse_args()
    if MOSQUITTO is None:
        sys.exit("mosquitto is not installed: apt-get install mosquitto (make system-deps)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from run_throughput import given_or_made_model

        model = given_or_made_model(args.model, work)
        print(f"model {model.name}; {load()}", flush=True)
        results = {"model": model.name}
        results["latency"] = latency(model, work, args.seconds)
        print("latency", json.dumps(results["latency"]), flush=True)
        results["rates"] = rates(model, work, args.seconds)
        print("rates", json.dumps(results["rates"]), flush=True)
        results["outputs_cost"] = outputs_cost(model, work, args.seconds, args.rounds)
        print("outputs_cost", json.dumps(results["outputs_cost"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from edgecnn.fileio import write_text

    write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
