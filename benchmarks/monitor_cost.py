"""What capture + drift/health monitoring cost a station, and how well they detect, on this machine.

1. Cost: the station engine classifies a 640x480 OpenCV-written video paced at 30 FPS (two regions, int8 TFLite),
   with ``[capture]`` (below 0.6, margin 0.15, a 5 % random sample; defaults otherwise: jpg, at most 1 captured
   frame a second) and ``[monitor]`` on (defaults: 5 frames a second looked at), against both off;
   rounds interleaved. Reported: p50/p99 capture -> decision latency of each and the p50 ratio (target <= 1.03x),
   plus the unpaced frames-per-second ratio (the same video as fast as the engine takes it).
2. Detection (the monitor fed in-process from a real Pipeline run over OpenCV-written videos of held-out images,
   as the tests do): false alarms over 10,000 in-distribution frames; frames from the change to the alarm for a
   30 % brightness drop (drift), a frozen camera (frozen) and a blurred lens (blur).
3. Suppression: capture of every frame (``below`` above 1) over a stream where each part stays 10 frames under
   the camera, and over 2,000 frames of independent parts: the share of near-duplicates not saved.

The load average is printed with every figure: the machine is shared, so figures are noisy (ARCHITECTURE.md).

Usage: python benchmarks/monitor_cost.py [--seconds 12] [--rounds 3] [--skip-cost] [--skip-detection]
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "monitor")]

from streams import blurred, darker, frozen, heldout_images, pipeline_events, write_video  # noqa: E402


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def make_run(work: Path) -> tuple[Path, Path, Path]:
    """(run folder, int8 .tflite, held-out images folder): trained with edgecnn.train (the card carries the drift
    reference) and exported (not timed)."""
    from edgecnn.api import export, train
    from edgecnn.synthetic import write_dataset

    print("training and exporting the model (TensorFlow, not timed) ...", flush=True)
    data = write_dataset(work / "data", classes=3, per_class=60, size=48, seed=0)
    held = write_dataset(work / "held", classes=3, per_class=30, size=48, seed=7)
    run = train(data=str(data), img_size="32", epochs=8, filters=8, project=str(work / "runs"), name="m",
                plots=False, quiet=True).run_dir
    report = export(run, formats="tflite", quantize="int8", out=str(work / "export"))
    return run, Path(report.artifacts()["tflite-int8"]), held


def run_station(path: Path, seconds: float) -> object:
    from edgecnn.station.engine import Station
    from edgecnn.station.plan import resolve

    station = Station(resolve(station=path))
    station.start()
    timer = threading.Timer(seconds, station.stop)
    timer.start()
    try:
        return station.run()
    finally:
        timer.cancel()
        station.close()


def cost(model: Path, held: Path, work: Path, seconds: float, rounds: int) -> dict:
    import cv2

    imgs = [cv2.resize(i, (640, 480), interpolation=cv2.INTER_LINEAR) for i in heldout_images(held)]
    video = write_video(work / "line.avi", imgs, int(30 * seconds * 1.2), seed=3, fps=30.0)
    sections = ('[capture]\nenabled = true\nbelow = 0.6\nmargin = 0.15\nsample = 0.05\nmax_gb = 1\n'
                '[monitor]\nenabled = true\n')
    res: dict[str, dict[str, list[float]]] = {m: {"p50": [], "p99": [], "fps": []} for m in ("off", "on")}
    for r in range(rounds):
        for mode in ("off", "on"):
            for paced in (True, False):
                state = work / f"state-{mode}-{r}-{paced}"
                path = work / f"station-{mode}.toml"
                path.write_text(
                    f'name = "bench"\nmodel = "{model}"\nstate_dir = "{state}"\n[run]\nthreads = 1\n'
                    f'[[sources]]\nname = "line"\nsource = "{video}"\n' + ("fps = 30\n" if paced else "")
                    + '[[sources.regions]]\nname = "a"\nbox = [0.0, 0.0, 0.5, 1.0]\n'
                    '[[sources.regions]]\nname = "b"\nbox = [0.5, 0.0, 1.0, 1.0]\n'
                    '[rules]\nvotes = 1\nwindow = 1\n' + (sections if mode == "on" else ""))
                s = run_station(path, seconds)
                if paced:
                    res[mode]["p50"].append(s.latency_p50_ms)
                    res[mode]["p99"].append(s.latency_p99_ms)
                else:
                    res[mode]["fps"].append(s.frames / max(s.elapsed_s, 1e-9))
                print(f"  round {r + 1} {mode} {'paced 30 fps' if paced else 'unpaced'}: p50 "
                      f"{s.latency_p50_ms:.2f} ms p99 {s.latency_p99_ms:.2f} ms, {s.frames} frames "
                      f"({s.frames / max(s.elapsed_s, 1e-9):.1f} fps); {load()}", flush=True)
    med = {m: {k: statistics.median(v) for k, v in d.items()} for m, d in res.items()}
    ratio = med["on"]["p50"] / med["off"]["p50"]
    return {"p50_ms": {m: round(med[m]["p50"], 3) for m in med}, "p99_ms": {m: round(med[m]["p99"], 3) for m in med},
            "p50_ratio": round(ratio, 3), "target": 1.03, "pass": ratio <= 1.03,
            "fps_unpaced": {m: round(med[m]["fps"], 1) for m in med},
            "fps_ratio": round(med["on"]["fps"] / med["off"]["fps"], 3), "raw": res, "load": load()}


def _first(alarms: list, name: str) -> int | None:
    for a in alarms:
        if a.name == name and a.active:
            return int(a.detail.rsplit("frame ", 1)[1].split()[0])
    return None


def detection(run: Path, held: Path, work: Path) -> dict:
    from edgecnn.modelcard import ModelCard
    from edgecnn.monitor.drift import DriftMonitor, ModelView, MonitorConfig

    card = ModelCard.from_json((run / "modelcard.json").read_bytes())
    imgs = heldout_images(held)
    out: dict = {"config": {k: getattr(MonitorConfig(), k) for k in ("window", "every", "drift_on", "drift_off",
                                                                    "raise_after", "frozen_frames", "blur_ratio")}}
    for name, frames, tf, change, alarm in (("in_distribution", 10_000, None, None, None),
                                             ("brightness_-30%", 3_000, darker(1_000, 0.7), 1_000, "drift"),
                                             ("frozen", 3_000, frozen(1_000), 1_000, "frozen"),
                                             ("blurred", 3_000, blurred(1_000, 2.5), 1_000, "blur")):
        video = write_video(work / f"{name}.avi", imgs, frames, seed=1, transform=tf)
        mon = DriftMonitor(MonitorConfig(enabled=True), card.reference, ModelView.from_card(card), start=False)
        t0 = time.perf_counter()
        for ev in pipeline_events(run, video):
            mon.process(ev)
        took = time.perf_counter() - t0
        row = {"frames": frames, "alarms_raised": [a.name for a in mon.alarms if a.active],
               "pipeline_plus_monitor_s": round(took, 2)}
        if change is not None:
            first = _first(mon.alarms, alarm)
            row["delay_frames"] = None if first is None else first - change
        else:
            row["false_alarms"] = sum(1 for a in mon.alarms if a.active)
            row["max_drift"] = max((r.get("drift") or 0.0) for r in [mon.latest[k] for k in mon.latest])
        out[name] = row
        print(f"  {name}: {json.dumps(row)}; {load()}", flush=True)
    return out


def suppression(run: Path, held: Path, work: Path) -> dict:
    from edgecnn.monitor.capture import Capture, CaptureConfig

    imgs = heldout_images(held)
    out = {}
    for name, frames, repeat in (("part_stays_10_frames", 1_000, 10), ("independent_parts", 2_000, 1)):
        video = write_video(work / f"sup-{name}.avi", imgs, frames, seed=2, repeat=repeat)
        cap = Capture(CaptureConfig(enabled=True, below=1.01), work / f"caps-{name}", start=False)
        for ev in pipeline_events(run, video):
            cap.process(ev)
        cap.close()
        out[name] = {"frames": frames, "saved": cap.stats.saved, "suppressed": cap.stats.suppressed,
                     "suppression_rate": round(cap.stats.suppression_rate, 3), "distinct_images": len(imgs)}
        print(f"  {name}: {json.dumps(out[name])}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-detection", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "monitor_cost.json")
    args = ap.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run, tflite, held = make_run(work)
        print(f"model {tflite.name}; {load()}", flush=True)
        if not args.skip_detection:
            print("detection (monitor defaults):", flush=True)
            results["detection"] = detection(run, held, work)
            print("suppression:", flush=True)
            results["suppression"] = suppression(run, held, work)
        if not args.skip_cost:
            print("cost (station engine, int8 TFLite, 640x480 at 30 FPS, 2 regions):", flush=True)
            results["cost"] = cost(tflite, held, work, args.seconds, args.rounds)
            c = results["cost"]
            print(f"p50 on/off {c['p50_ms']['on']:.2f}/{c['p50_ms']['off']:.2f} ms = {c['p50_ratio']:.3f}x "
                  f"(target <= 1.03x); unpaced fps on/off {c['fps_unpaced']['on']}/{c['fps_unpaced']['off']} = "
                  f"{c['fps_ratio']:.3f}x; {load()}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from edgecnn.fileio import write_text

    write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
