"""GPU training proof: ``edgecnn train`` on the JAX and the PyTorch backend, on whatever GPU this host has.

One command on any NVIDIA host (``pip install -c constraints.txt -e '.[train-jax,train-torch]'`` with the CUDA builds
of jax and torch, see the README) runs, as whole ``edgecnn train`` processes:

- a generated set of >= 10,000 images at 96x96x3 (8 learnable classes, ``edgecnn.synthetic``), the
  ``arabic-letters`` preset (blocks CNN; rotation/shift/shear/zoom augmentation) at ``--img-size 96 --channels 3``;
- per backend: augmentation on / off and ``--mixed-precision`` on / off, img/s from metrics.json
  (``training.train_images_per_second``: training steps only, first epoch excluded), test accuracy, the GPU name;
- the same training (jax, augmentation on) on this host's CPU (``JAX_PLATFORMS=cpu``): test accuracy within noise;
- then exports the jax-trained model through TensorFlow to every format with the parity gates, when TensorFlow is
  installed here; otherwise it prints the command to run on a CPU machine.

On a host without a GPU it says so and runs a reduced version (fewer images and epochs, no mixed precision), which
proves the plumbing and gives CPU figures; the closing lines print the exact command for a GPU host.

Usage: python benchmarks/gpu_train.py [--images 10000] [--epochs 8] [--batch 128] [--out DIR] [--reduced]
Results: benchmarks/results/gpu_train.txt and .json (the latest run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PRESET = "arabic-letters"
BACKENDS = ("jax", "torch")


def gpu_present() -> str | None:
    """The NVIDIA GPU name from nvidia-smi (no framework import), or None."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    return ", ".join(names) if out.returncode == 0 and names else None


def train(data: Path, project: Path, name: str, backend: str, args: argparse.Namespace, *, augment: bool,
          mixed: bool, cpu: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if cpu:  # the same training on this host's CPU
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, "-m", "edgecnn", "train", "--data", str(data), "--preset", PRESET, "--img-size", "96",
           "--channels", "3", "--epochs", str(args.epochs), "--batch", str(args.batch), "--patience", "0",
           "--backend", backend, "--project", str(project), "--name", name, "--no-plots", "--quiet"]
    if not augment:
        cmd += ["--rotation", "0", "--width-shift", "0", "--height-shift", "0", "--shear", "0", "--zoom", "0"]
    if mixed:
        cmd += ["--mixed-precision"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(ROOT))
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        return {"name": name, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:], "wall_s": wall}
    metrics = json.loads((project / name / "metrics.json").read_text())
    tr = metrics["training"]
    return {"name": name, "backend": backend, "augment": augment, "mixed_precision_asked": mixed,
            "mixed_precision": tr["mixed_precision"], "device": f"{tr['accelerator']}: {tr['device_name']}",
            "img_s": tr["train_images_per_second"], "test_accuracy": metrics["test_accuracy"],
            "epochs": metrics["epochs_run"], "wall_s": round(wall, 1), "run": str(project / name)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", type=Path, default=None, help="keep the data and runs here (default: a temp folder)")
    ap.add_argument("--reduced", action="store_true", help="the CPU-host version even on a GPU host")
    args = ap.parse_args()

    gpu = None if args.reduced else gpu_present()
    if gpu is None:
        print("No NVIDIA GPU found (nvidia-smi lists none): running the REDUCED version on this CPU "
              "(fewer images and epochs, no mixed precision). The full proof needs a GPU host.")
        args.images, args.epochs, args.batch = min(args.images, 480), min(args.epochs, 2), min(args.batch, 32)
    else:
        print(f"GPU: {gpu}")
    print(f"host: {platform.node()}, {os.cpu_count()} CPUs; {args.images} images 96x96x3, preset {PRESET}, "
          f"{args.epochs} epochs, batch {args.batch}")

    from edgecnn.synthetic import write_dataset

    tmp = None
    base = args.out or Path(tmp := tempfile.mkdtemp(prefix="edgecnn-gpu-train-"))
    base.mkdir(parents=True, exist_ok=True)
    classes = 8  # the synthetic patterns edgecnn.synthetic draws
    t = time.perf_counter()
    data = base / "data"
    if not data.exists():
        write_dataset(data, classes=classes, per_class=args.images // classes, size=96, seed=0)
    print(f"generated {args.images} images in {time.perf_counter() - t:.0f}s")
    project = base / "runs"
    shutil.rmtree(project, ignore_errors=True)

    rows = []
    configs = [(True, False), (False, False)] + ([(True, True), (False, True)] if gpu else [])
    for backend in BACKENDS:
        for augment, mixed in configs:
            name = f"{backend}-aug{int(augment)}-mp{int(mixed)}"
            row = train(data, project, name, backend, args, augment=augment, mixed=mixed)
            rows.append(row)
            print(json.dumps(row))
    if gpu:  # the same training on the CPU, for accuracy
        rows.append(train(data, project, "jax-cpu-aug1-mp0", "jax", args, augment=True, mixed=False, cpu=True))
        print(json.dumps(rows[-1]))

    print()
    print(f"{'run':<22} {'device':<44} {'aug':>4} {'mp':>4} {'img/s':>9} {'test acc':>9} {'wall s':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<22} FAILED: {r['error']}")
            continue
        print(f"{r['name']:<22} {r['device'][:44]:<44} {'on' if r['augment'] else 'off':>4} "
              f"{'on' if r['mixed_precision'] else 'off':>4} {r['img_s'] or 0:9.0f} {r['test_accuracy']:9.4f} "
              f"{r['wall_s']:7.1f}")
    ok = {r["name"]: r for r in rows if "error" not in r}
    for backend in BACKENDS:
        on, off = ok.get(f"{backend}-aug1-mp0"), ok.get(f"{backend}-aug0-mp0")
        if on and off and on["img_s"] and off["img_s"]:
            print(f"{backend}: augmentation on/off img/s ratio {on['img_s'] / off['img_s']:.2f}")
        mp = ok.get(f"{backend}-aug1-mp1")
        if on and mp and on["img_s"] and mp["img_s"]:
            print(f"{backend}: mixed precision on/off img/s ratio {mp['img_s'] / on['img_s']:.2f}")
    cpu = ok.get("jax-cpu-aug1-mp0")
    if cpu and ok.get("jax-aug1-mp0"):
        print(f"test accuracy GPU {ok['jax-aug1-mp0']['test_accuracy']:.4f} vs CPU {cpu['test_accuracy']:.4f}")

    # the jax-trained model exports through TensorFlow and passes the parity gates
    jax_run = ok.get("jax-aug1-mp1") or ok.get("jax-aug1-mp0")
    export_cmd = f"edgecnn export {jax_run['run'] if jax_run else '<run folder>'} --format all --quantize all"
    exported = None
    try:
        import importlib.util

        has_tf = importlib.util.find_spec("tensorflow") is not None
    except ValueError:
        has_tf = False
    if jax_run and has_tf:
        # the reduced run is too short for a model whose int8 outputs can be gated: float32 of every format there
        precisions = ["--quantize", "none"] + (["--quantize", "int8", "--calib-samples", "100"] if gpu else [])
        proc = subprocess.run([sys.executable, "-m", "edgecnn", "export", jax_run["run"], "--format", "all", *precisions],
                              capture_output=True, text=True, cwd=str(ROOT),
                              env={**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""})
        report = Path(jax_run["run"]) / "export" / "export_report.json"
        exported = json.loads(report.read_text())["passed"] if report.exists() else False
        print(f"export of the jax-trained model through TensorFlow (every format, {' + '.join(precisions[1::2][:2])}, "
              f"parity gates): {'PASS' if exported else 'FAIL'} (exit {proc.returncode})")
        if not exported:
            print("  " + "\n  ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:]))
    else:
        print(f"TensorFlow is not installed here: copy {jax_run['run'] if jax_run else 'the run folder'} to a CPU "
              f"machine with edgecnn[train] and run: {export_cmd}")

    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "gpu_train.json").write_text(json.dumps(
        {"gpu": gpu, "reduced": gpu is None, "images": args.images, "epochs": args.epochs, "batch": args.batch,
         "rows": rows, "export_passed": exported}, indent=2))
    if gpu is None:
        print("\nNo GPU here: the figures above are this CPU's. On an NVIDIA host run:\n"
              "  pip install -c constraints.txt -e '.[train-jax,train-torch]' 'jax[cuda12]==0.10.2' && "
              "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu130\n"
              "  python benchmarks/gpu_train.py            # full: 10,000 images 96x96x3, jax + torch, aug/mp on/off\n"
              f"then on a CPU machine: {export_cmd}")
    if tmp and args.out is None and has_tf:  # without TensorFlow the run folder is kept for the export elsewhere
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all("error" not in r for r in rows) and exported is not False else 1


if __name__ == "__main__":
    sys.exit(main())
