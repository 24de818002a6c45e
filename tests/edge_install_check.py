"""Edge install check (``make test-edge``): the wheel runs exported models with only an edge extra installed.

1. builds the edgecnn wheel (``pip wheel --no-deps .``);
2. with this interpreter (the training venv, which has TensorFlow) trains a tiny model on a synthetic
   folder and exports it (int8 TFLite, fp32 ONNX) with ``edgecnn.export``;
3. for each edge extra (``tflite``, ``onnx``) creates a fresh venv with ``--python``, installs
   ``edgecnn[<extra>]`` from the wheel with ``-c constraints.txt``, and there
   * checks TensorFlow is not installed,
   * runs ``edgecnn run MODEL --source FOLDER --save-csv`` and checks every image got a row,
   * runs it again in-process and checks no TensorFlow/Keras module was imported;
4. prints a PASS/FAIL summary and exits non-zero on any failure.

Usage: ``python tests/edge_install_check.py [--python python3.11] [--keep] [--extras tflite,onnx]``.
Needs the package index (PyPI or a mirror) for the venv installs; about 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"tflite": "tflite-int8", "onnx": "onnx-float32"}
PROBE = (
    "import sys\nfrom edgecnn.cli import app\n"
    "try:\n    app(['run', sys.argv[1], '--source', sys.argv[2], '--quiet'], prog_name='edgecnn')\n"
    "except SystemExit as e:\n    assert not e.code, f'edgecnn run exited {e.code}'\n"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'jax', 'torch'))\n"
    "print('HEAVY-MODULES', heavy)\nsys.exit(1 if heavy else 0)\n"
)


def sh(cmd: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    shown = " ".join(str(c) if "\n" not in str(c) else "<script>" for c in cmd)
    print("  $", shown, flush=True)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env)


def build_wheel(dest: Path) -> Path:
    res = sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dest, ROOT])
    if res.returncode:
        raise RuntimeError(f"pip wheel failed:\n{res.stdout}{res.stderr}")
    wheel = next(dest.glob("edgecnn-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    if not any(n.startswith("edgecnn/profiles/") and n.endswith("rpi4.toml") for n in names):
        raise RuntimeError(f"{wheel.name} does not ship the device profiles (edgecnn/profiles/*.toml)")
    return wheel


def export_tiny(work: Path) -> tuple[dict[str, Path], Path]:
    """Train a tiny model and export it, in this (training) interpreter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import TINY_CLASSES, make_tiny_run  # the shared tiny-run recipe

    from edgecnn.export import export
    from edgecnn.synthetic import write_dataset

    data = write_dataset(work / "data", classes=TINY_CLASSES, per_class=20, size=32)
    run_dir = make_tiny_run(data, work / "run", epochs=4)
    report = export(run_dir, formats=["tflite", "onnx"], quantize=["float32", "int8"], out=work / "export")
    return report.artifacts(), data


def check_extra(extra: str, python: str, wheel: Path, model: Path, data: Path, work: Path) -> list[str]:
    """Problems found for one extra (empty list: PASS)."""
    venv = work / f"venv-{extra}"
    res = sh([python, "-m", "venv", venv])
    if res.returncode:
        return [f"venv creation failed: {res.stderr.strip()[-300:]}"]
    py = venv / "bin" / "python"
    res = sh([py, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", f"{wheel}[{extra}]"])
    if res.returncode:
        return [f"pip install edgecnn[{extra}] failed: {res.stderr.strip()[-500:]}"]
    problems = []
    res = sh([py, "-c", "import importlib.util as u; print([m for m in ('tensorflow', 'keras', 'tf2onnx') "
                        "if u.find_spec(m)])"])
    if res.stdout.strip() != "[]":
        problems.append(f"heavy packages installed with edgecnn[{extra}]: {res.stdout.strip()} {res.stderr[-200:]}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONPATH", None)
    out = work / f"preds-{extra}.csv"
    res = sh([venv / "bin" / "edgecnn", "run", model, "--source", data, "--save-csv", out, "--batch", "8", "--quiet"],
             env=env, timeout=300)
    if res.returncode:
        problems.append(f"edgecnn run exited {res.returncode}: {(res.stdout + res.stderr).strip()[-500:]}")
    else:
        with open(out, newline="") as fh:
            rows = list(csv.DictReader(fh))
        expected = sum(1 for p in data.rglob("*.png"))
        if len(rows) != expected or not all(r["status"] == "ok" and r["label"] for r in rows):
            problems.append(f"expected {expected} classified rows in {out.name}; found {len(rows)}")
        if "Speed:" not in res.stdout:
            problems.append("no Speed: summary line in the output")
    res = sh([py, "-c", PROBE, model, data], env=env, timeout=300)
    if res.returncode or "HEAVY-MODULES []" not in res.stdout:
        problems.append(f"in-process run imported heavy modules or failed: {(res.stdout + res.stderr).strip()[-400:]}")
    res = sh([venv / "bin" / "edgecnn", "devices", "show", "rpi4"], env=env)
    if res.returncode or "rpi4" not in res.stdout:
        problems.append(f"device profiles not found in the installed wheel: {res.stderr.strip()[-200:]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="Interpreter for the fresh edge venvs.")
    ap.add_argument("--extras", default="tflite,onnx")
    ap.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = ap.parse_args()
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="edgecnn-edge-"))
    results: dict[str, list[str]] = {}
    try:
        print("[1/3] building the wheel", flush=True)
        wheel = build_wheel(work / "dist")
        print(f"      {wheel.name}")
        print("[2/3] training and exporting a tiny model (training venv)", flush=True)
        artifacts, data = export_tiny(work)
        for extra in [e.strip() for e in args.extras.split(",") if e.strip()]:
            print(f"[3/3] fresh venv with only edgecnn[{extra}]", flush=True)
            results[extra] = check_extra(extra, args.python, wheel, artifacts[MODELS[extra]], data, work)
    except Exception as exc:  # noqa: BLE001  (the summary below must always print)
        results["setup"] = [f"{type(exc).__name__}: {exc}"]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nEdge install check ({time.perf_counter() - t0:.0f}s):")
    for name, problems in results.items():
        print(f"  {'PASS' if not problems else 'FAIL'}  edgecnn[{name}]" if name != "setup" else "  FAIL  setup")
        for p in problems:
            print(f"        - {p}")
    ok = bool(results) and not any(results.values())
    failed = sum(1 for problems in results.values() if problems)
    print(f"edge-install: {len(results) - failed} passed, {failed} failed")  # the closing line CI logs read
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
