"""Folder runs as whole processes: ``edgecnn run MODEL --source FOLDER --save-csv`` vs the naive loop.

The naive loop is the textbook script, run as its own process: for each file, Pillow open -> convert RGB ->
resize -> quantize -> set_tensor/invoke/get_tensor -> one CSV row. edgecnn is the ``edgecnn run`` command
with its defaults (decode workers, batching where the model allows) writing the same CSV. Both use the
same int8 model and interpreter threads; each figure is a whole process from spawn to exit (interpreter
start, imports, model load included), rounds interleaved, medians reported (ARCHITECTURE.md).

Folders (generated here):
  * small: 2,400 images of ~100x110 px in three class folders, PNG/JPEG/BMP in turn (target >= 1.5x);
  * vga:   2,000 JPEGs of 640x480 px (target >= 2x).

Both runs' CSVs are compared: every file must be classified, and edgecnn's top-1 labels must match the
reference preprocessing (edgecnn.imaging.load_image + the backend) for every file; the naive loop's labels
(Pillow's bicubic resize, not the model's preprocessing) are reported as an agreement rate only.

Usage: python benchmarks/folder_throughput.py [--rounds 3] [--threads 2] [--model m.tflite] [--only small|vga]
"""

from __future__ import annotations

import argparse
import csv
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

NAIVE_SCRIPT = '''\
import csv, os, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
model, folder, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
it = Interpreter(model_path=model, num_threads=threads)
it.allocate_tensors()
inp, outd = it.get_input_details()[0], it.get_output_details()[0]
h, w = inp["shape"][1:3]
scale, zp = inp["quantization"]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
with open(out, "w", newline="") as fh:
    rows = csv.writer(fh)
    rows.writerow(["source", "class_index", "score"])
    for f in files:
        x = np.asarray(Image.open(f).convert("RGB").resize((w, h)), dtype=np.float32)[None]
        if scale:
            x = np.clip(np.round(x / scale + zp), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max)
        it.set_tensor(inp["index"], x.astype(inp["dtype"]))
        it.invoke()
        y = it.get_tensor(outd["index"])[0]
        rows.writerow([f, int(y.argmax()), int(y.max())])
'''


def make_small(folder: Path, count: int, classes: list[str]) -> None:
    import numpy as np
    from PIL import Image

    from edgecnn.synthetic import pattern_image

    rng = np.random.default_rng(0)
    kinds = ["disc", "cross", "hstripes"]
    fmts = [("png", {}), ("jpg", {"quality": 90}), ("bmp", {})]
    for i in range(count):
        c = i % len(classes)
        (folder / classes[c]).mkdir(parents=True, exist_ok=True)
        size = int(rng.integers(100, 111))
        img = pattern_image(kinds[c], size, rng)[: int(rng.integers(96, 105))]  # ~100x110, not square
        ext, kw = fmts[i % 3]
        Image.fromarray(img).save(folder / classes[c] / f"{i:05d}.{ext}", **kw)


def make_vga(folder: Path, count: int, classes: list[str]) -> None:
    import numpy as np
    from PIL import Image

    from edgecnn.synthetic import pattern_image

    rng = np.random.default_rng(1)
    kinds = ["disc", "cross", "hstripes"]
    for i in range(count):
        c = i % len(classes)
        (folder / classes[c]).mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(pattern_image(kinds[c], 160, rng, noise=12)).resize((640, 480), Image.BILINEAR)
        img.save(folder / classes[c] / f"{i:05d}.jpg", quality=90)


def measure_all(spec_path: Path) -> None:
    """The interleaved timing loop, in a lean child (a child's ru_maxrss counts what it inherits before exec)."""
    spec = json.loads(spec_path.read_text())
    env, cases = spec["env"], spec["cases"]
    raw: dict[str, dict[str, list[tuple[float, float, float, int]]]] = {k: {w: [] for w in c} for k, c in cases.items()}
    load = [os.getloadavg()[0]]
    for case in cases.values():
        for cmd in case.values():
            measure(cmd, env)  # warm the page cache and the file system
    for r in range(spec["rounds"]):
        for label, case in cases.items():
            order = list(case) if r % 2 == 0 else list(case)[::-1]
            for who in order:
                raw[label][who].append(measure(case[who], env))
        load.append(os.getloadavg()[0])
    Path(str(spec_path) + ".out").write_text(json.dumps({"raw": raw, "load": load}))


def reference_labels(model: Path, files: list[str], threads: int) -> dict[str, int]:
    """Top-1 class of every file with the model's own preprocessing, one image at a time (in this process)."""
    from edgecnn.imaging import load_image
    from edgecnn.runtime.backends import load_backend

    out = {}
    with load_backend(model, threads=threads) as be:
        spec, pre = be.card.input, be.card.preprocessing
        for f in files:
            x = load_image(f, spec.height, spec.width, pre.color, pre.resize)
            out[f] = int(be.predict(x[None])[0].argmax())
    return out


def read_csv(path: Path, label_col: str) -> dict[str, str]:
    with open(path, newline="") as fh:
        return {row["source"]: row[label_col] for row in csv.DictReader(fh)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="interpreter threads, the same for both")
    ap.add_argument("--small", type=int, default=2400)
    ap.add_argument("--vga", type=int, default=2000)
    ap.add_argument("--only", choices=["small", "vga"])
    ap.add_argument("--model", type=Path, help="an int8 .tflite (default: train and export the benchmark model)")
    ap.add_argument("--edgecnn-args", default="", help="extra arguments for edgecnn run (e.g. '--batch 16')")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "folder_throughput.json")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure_all(args.measure)
        return 0

    with tempfile.TemporaryDirectory(prefix="edgecnn-folderbench-") as tmp:
        work = Path(tmp)
        from run_throughput import given_or_made_model

        model = given_or_made_model(args.model, work)
        from edgecnn.runtime.backends import load_backend

        with load_backend(model) as be:
            labels = be.labels
        folders = {}
        if args.only in (None, "small"):
            folders[f"small: {args.small} PNG/JPEG/BMP ~100x110"] = (work / "small", make_small, args.small)
        if args.only in (None, "vga"):
            folders[f"vga: {args.vga} JPEG 640x480"] = (work / "vga", make_vga, args.vga)
        print("writing the image folders (not timed) ...", flush=True)
        for folder, make, count in folders.values():
            make(folder, count, labels)
        naive = work / "naive.py"
        naive.write_text(NAIVE_SCRIPT)
        env = child_env()
        cases, csvs = {}, {}
        for label, (folder, _, _) in folders.items():
            key = folder.name
            csvs[label] = (work / f"{key}-naive.csv", work / f"{key}-edgecnn.csv")
            cases[label] = {
                "naive": [sys.executable, str(naive), str(model), str(folder), str(csvs[label][0]), str(args.threads)],
                "edgecnn": [*edgecnn_cmd(), "run", str(model), "--source", str(folder), "--quiet", "--threads",
                            str(args.threads), "--save-csv", str(csvs[label][1]), *args.edgecnn_args.split()],
            }
        spec = work / "spec.json"
        spec.write_text(json.dumps({"rounds": args.rounds, "env": env, "cases": cases}))
        subprocess.run([sys.executable, __file__, "--measure", str(spec)], check=True, env=env)
        measured = json.loads((work / "spec.json.out").read_text())

        raw, load = measured["raw"], measured["load"]
        print(f"\nFolder runs, whole processes, {args.rounds} interleaved rounds, medians, threads={args.threads} "
              f"(load average {min(load):.2f}-{max(load):.2f}, {os.cpu_count()} cores)")
        results = {"rounds": args.rounds, "threads": args.threads, "model": model.name, "machine": platform.platform(),
                   "cores": os.cpu_count(), "load_average": [round(v, 2) for v in load],
                   "edgecnn_args": args.edgecnn_args, "cases": {}}
        ok = True
        for label, (_, _, count) in folders.items():
            target = 1.5 if label.startswith("small") else 2.0
            nw = statistics.median(s[0] for s in raw[label]["naive"])
            ew = statistics.median(s[0] for s in raw[label]["edgecnn"])
            nr = statistics.median(s[1] for s in raw[label]["naive"])
            er = statistics.median(s[1] for s in raw[label]["edgecnn"])
            nc = statistics.median(s[2] for s in raw[label]["naive"])
            ec = statistics.median(s[2] for s in raw[label]["edgecnn"])
            naive_rows = read_csv(csvs[label][0], "class_index")
            edge_rows = read_csv(csvs[label][1], "label")
            files = sorted(naive_rows)
            ref = reference_labels(model, files, args.threads)
            complete = len(edge_rows) == count and len(naive_rows) == count
            exact = sum(edge_rows.get(f) == labels[ref[f]] for f in files)
            naive_agree = sum(int(naive_rows[f]) == ref[f] for f in files)
            speedup = nw / ew
            passed = speedup >= target and complete and exact == count
            ok &= passed
            print(f"  {label}:")
            print(f"    edgecnn run {ew:6.2f} s ({count / ew:7.1f} img/s, {er:.0f} MiB) vs naive loop {nw:6.2f} s "
                  f"({count / nw:7.1f} img/s, {nr:.0f} MiB) = {speedup:.2f}x (target >= {target}x) "
                  f"{'PASS' if passed else 'FAIL'}")
            print(f"    CPU (user+system): edgecnn {ec:6.2f} s vs naive {nc:6.2f} s")
            print(f"    labels: edgecnn = reference preprocessing on {exact}/{count} files; "
                  f"naive loop (Pillow bicubic) agrees on {naive_agree}/{count}")
            results["cases"][label] = {
                "edgecnn_s": round(ew, 3), "naive_s": round(nw, 3), "speedup": round(speedup, 3), "target": target,
                "edgecnn_rss_mib": round(er, 1), "naive_rss_mib": round(nr, 1), "edgecnn_cpu_s": round(ec, 3),
                "naive_cpu_s": round(nc, 3), "labels_match_reference": exact,
                "naive_agrees_with_reference": naive_agree, "images": count, "pass": passed,
                "raw_s": {who: [round(w, 3) for w, *_ in s] for who, s in raw[label].items()},
            }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp_out, args.out)
    print(f"Saved {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
