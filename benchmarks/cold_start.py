"""Cold start as a whole process: ``edgecnn run MODEL --source one.png --quiet`` vs a bare ten-line LiteRT script.

Each measurement is a fresh process, from spawn to exit, so it counts the interpreter start, every import,
loading the model, decoding and classifying the image and printing the result. Peak RSS is the child's own
``ru_maxrss`` (``os.wait4``). The two commands run interleaved, round after round (ARCHITECTURE.md, "How
performance is measured here"); the figures are medians.

Images: ``one.png`` (110x100 px, so it must be resized: edgecnn's preprocessing resizes with OpenCV's
INTER_AREA, as training did) and ``one_64.png`` (already the model's input size: no resize). The bare script
decodes and resizes with Pillow, as a textbook script does.

Models: the RGB int8 model and a grayscale one (as the digits, mnist, emotion-lenet and arabic-letters presets
are); the bare script converts with Pillow (``convert("L")``), edgecnn with its numpy equal of OpenCV's
RGB2GRAY, so neither loads OpenCV.

Targets (issue 25): wall <= 1.3x and peak RSS <= 1.15x the bare script, for RGB and grayscale models.

Usage: python benchmarks/cold_start.py [--rounds 15] [--model model-int8.tflite] [--gray-model gray-int8.tflite]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from wholeprocess import child_env, edgecnn_cmd, measure  # noqa: E402

WALL_TARGET, RSS_TARGET = 1.3, 1.15

BARE_SCRIPT = '''\
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors()
inp, out = it.get_input_details()[0], it.get_output_details()[0]
gray = inp["shape"][3] == 1
x = np.asarray(Image.open(sys.argv[2]).convert("L" if gray else "RGB").resize(tuple(inp["shape"][2:0:-1])), np.float32)
x = x[None, ..., None] if gray else x[None]
s, z = inp["quantization"]
q = np.iinfo(inp["dtype"]) if s else None
it.set_tensor(inp["index"], (np.clip(np.round(x / s + z), q.min, q.max) if s else x).astype(inp["dtype"]))
it.invoke(); print(int(it.get_tensor(out["index"])[0].argmax()))
'''


def measure_all(spec_path: Path) -> None:
    """The interleaved timing loop (run in a lean child process; see main)."""
    spec = json.loads(spec_path.read_text())
    env, cases, base_cmds = spec["env"], spec["cases"], spec["base"]
    for cmd in [*base_cmds.values(), *[c for case in cases.values() for c in case.values()]]:
        measure(cmd, env)  # warm the file cache
    raw: dict[str, dict[str, list[tuple[float, float, float, int]]]] = {k: {"bare": [], "edgecnn": []} for k in cases}
    base: dict[str, list[tuple[float, float, float, int]]] = {k: [] for k in base_cmds}
    load = [os.getloadavg()[0]]
    for r in range(spec["rounds"]):
        for label, case in cases.items():
            for who in (("bare", "edgecnn") if r % 2 == 0 else ("edgecnn", "bare")):
                raw[label][who].append(measure(case[who], env))
        for label, cmd in base_cmds.items():
            base[label].append(measure(cmd, env))
        load.append(os.getloadavg()[0])
    Path(str(spec_path) + ".out").write_text(json.dumps({"raw": raw, "base": base, "load": load}))


def make_images(work: Path, size: int) -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    from edgecnn.synthetic import pattern_image

    rgb = pattern_image("disc", 110, np.random.default_rng(0))[:100]  # 110 wide, 100 high
    out = {"one.png (110x100, resized)": work / "one.png", f"one_{size}.png (model size)": work / f"one_{size}.png"}
    Image.fromarray(rgb).save(out["one.png (110x100, resized)"])
    Image.fromarray(pattern_image("disc", size, np.random.default_rng(0))).save(out[f"one_{size}.png (model size)"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--model", type=Path, help="an int8 .tflite (default: train and export the benchmark model)")
    ap.add_argument("--gray-model", type=Path, help="a grayscale int8 .tflite (default: train and export one)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cold_start.json")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure_all(args.measure)
        return 0

    with tempfile.TemporaryDirectory(prefix="edgecnn-coldstart-") as tmp:
        work = Path(tmp)
        from run_throughput import given_or_made_model

        model = given_or_made_model(args.model, work)
        gray_model = given_or_made_model(args.gray_model, work, channels=1)
        from ai_edge_litert.interpreter import Interpreter

        size = int(Interpreter(model_path=str(model)).get_input_details()[0]["shape"][1])
        images = make_images(work, size)
        bare = work / "bare.py"
        bare.write_text(BARE_SCRIPT)
        env = child_env()
        cases = {}
        for kind, path in (("RGB", model), ("grayscale", gray_model)):
            for label, image in images.items():
                cases[f"{kind} model, {label}"] = {
                    "bare": [sys.executable, str(bare), str(path), str(image)],
                    "edgecnn": [*edgecnn_cmd(), "run", str(path), "--source", str(image), "--quiet"],
                }
        spec = {"rounds": args.rounds, "env": env, "cases": cases,
                "base": {"python -c pass": [sys.executable, "-c", "pass"],
                         "python -c 'import edgecnn'": [sys.executable, "-c", "import edgecnn"]}}
        (work / "spec.json").write_text(json.dumps(spec))
        # The timing loop runs in a lean process (standard library only): a child's ru_maxrss counts the
        # memory it inherits before exec, so measuring from this process (numpy, LiteRT loaded) would
        # put a floor of this process's RSS under every figure.
        subprocess.run([sys.executable, __file__, "--measure", str(work / "spec.json")], check=True, env=env)
        measured = json.loads((work / "spec.json.out").read_text())
    raw, base, load = measured["raw"], measured["base"], measured["load"]

    def med(samples: list[list[float]], i: int) -> float:
        return statistics.median(s[i] for s in samples)

    print(f"\nCold start, whole processes, {args.rounds} interleaved rounds, medians "
          f"(load average {min(load):.2f}-{max(load):.2f}, {os.cpu_count()} cores)")
    results = {"rounds": args.rounds, "model": model.name, "gray_model": gray_model.name, "load_average": [round(v, 2) for v in load],
               "machine": platform.platform(), "cores": os.cpu_count(), "cases": {}}
    ok = True
    for label, samples in raw.items():
        bw, ew = med(samples["bare"], 0), med(samples["edgecnn"], 0)
        br, er = med(samples["bare"], 1), med(samples["edgecnn"], 1)
        bc, ec = med(samples["bare"], 2), med(samples["edgecnn"], 2)
        bf, ef = med(samples["bare"], 3), med(samples["edgecnn"], 3)
        wall_ratio, rss_ratio = ew / bw, er / br
        passed = wall_ratio <= WALL_TARGET and rss_ratio <= RSS_TARGET
        ok &= passed
        print(f"  {label}:")
        verdict = {True: "PASS", False: "FAIL"}  # each line its own verdict; "pass" in the JSON needs both
        print(f"    wall: edgecnn {ew * 1000:7.1f} ms vs bare {bw * 1000:7.1f} ms = {wall_ratio:.2f}x (target <= {WALL_TARGET}x) "
              f"{verdict[wall_ratio <= WALL_TARGET]}")
        print(f"    RSS : edgecnn {er:7.1f} MiB vs bare {br:7.1f} MiB = {rss_ratio:.2f}x (target <= {RSS_TARGET}x) "
              f"{verdict[rss_ratio <= RSS_TARGET]}")
        print(f"    CPU : edgecnn {ec * 1000:7.1f} ms vs bare {bc * 1000:7.1f} ms = {ec / bc:.2f}x "
              f"(user+system; less sensitive to other load than wall)")
        print(f"    page faults: edgecnn {ef:7.0f} vs bare {bf:7.0f} = {ef / bf:.2f}x (each new page of memory the "
              f"process touches; costly in a VM)")
        results["cases"][label] = {
            "edgecnn_wall_ms": round(ew * 1000, 1), "bare_wall_ms": round(bw * 1000, 1), "wall_ratio": round(wall_ratio, 3),
            "edgecnn_rss_mib": round(er, 1), "bare_rss_mib": round(br, 1), "rss_ratio": round(rss_ratio, 3),
            "edgecnn_cpu_ms": round(ec * 1000, 1), "bare_cpu_ms": round(bc * 1000, 1), "cpu_ratio": round(ec / bc, 3),
            "edgecnn_minor_faults": ef, "bare_minor_faults": bf,
            "pass": passed,
            "raw_wall_ms_rss_mib_cpu_ms_faults": {who: [[round(w * 1000, 1), round(m, 1), round(c * 1000, 1), f]
                                                        for w, m, c, f in s]
                                           for who, s in samples.items()},
        }
    for label, samples in base.items():
        print(f"  {label}: {med(samples, 0) * 1000:.1f} ms, {med(samples, 1):.1f} MiB")
        results[label] = {"wall_ms": round(med(samples, 0) * 1000, 1), "rss_mib": round(med(samples, 1), 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp_out, args.out)
    print(f"Saved {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
