"""Edge install check (``make test-edge``): the wheel runs exported models with only an edge extra installed,
on every Python the edge side supports (3.10, 3.11, 3.12).

1. builds the edgecnn wheel once (``pip wheel --no-deps .``; pure Python, shared by every venv);
2. with this interpreter (the training venv, which has TensorFlow) trains a tiny model on a synthetic
   folder and exports it (int8 TFLite, fp32 ONNX) with ``edgecnn.export``;
3. with ``--python`` (the dev stack's 3.11): one fresh venv per edge extra (``tflite``, ``onnx``), installed from
   the wheel with ``-c constraints.txt``; with each other Python found (``--also-python``, default: 3.10 and 3.12
   where installed): one fresh venv with ``edgecnn[tflite,onnx]`` resolved from the extras' ranges, as a user's
   ``pip install`` does (constraints.txt pins the 3.11 dev stack). In every venv:
   * TensorFlow, Keras and tf2onnx are not installed,
   * ``edgecnn run MODEL --source FOLDER --save-csv`` gives every image a row, and a ``Speed:`` line,
   * the example app ``examples/classify_frames.py`` (numpy frames through ``edgecnn.load(...).predict(...)``)
     gives every image the same label and score as that ``edgecnn run``,
   * an in-process run imports no TensorFlow/Keras/JAX/torch module,
   * the device profiles ship in the wheel;
4. prints a PASS/FAIL summary per venv, ends with ``edge-install: N passed, N failed`` and exits non-zero on any
   failure.

Usage: ``python tests/edge_install_check.py [--python python3.11] [--also-python 3.10,3.12|none] [--keep]
[--extras tflite,onnx]``. Needs the package index (PyPI or a mirror) for the venv installs; about 2-4 minutes on
2 cores with a warm pip cache.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"tflite": "tflite-int8", "onnx": "onnx-float32"}
EXAMPLE = ROOT / "examples" / "classify_frames.py"
PROBE = (
    "import sys\nfrom edgecnn.cli import app\n"
    "try:\n    app(['run', sys.argv[1], '--source', sys.argv[2], '--quiet'], prog_name='edgecnn')\n"
    "except SystemExit as e:\n    assert not e.code, f'edgecnn run exited {e.code}'\n"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'jax', 'torch'))\n"
    "print('HEAVY-MODULES', heavy)\nsys.exit(1 if heavy else 0)\n"
)
#: Prints "3.10 [] {'numpy': '2.2.6', ...}": the Python, the heavy packages installed (must be none), the runtimes.
VERSIONS = (
    "import importlib.metadata as md, importlib.util as u, sys\n"
    "heavy = [m for m in ('tensorflow', 'keras', 'tf2onnx') if u.find_spec(m)]\n"
    "found = {}\n"
    "for dist in ('numpy', 'ai-edge-litert', 'onnxruntime', 'opencv-python-headless', 'tomli'):\n"
    "    try:\n        found[dist] = md.version(dist)\n    except md.PackageNotFoundError:\n        pass\n"
    "print('%d.%d' % sys.version_info[:2], heavy, found)\n"
)


def venv_env() -> dict[str, str]:
    """The environment of every command in an edge venv: no PYTHONPATH (a source tree on it, with its
    ``edgecnn.egg-info``, would make pip skip installing the wheel and the venv import the tree)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONPATH", None)
    return env


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
    from edgecnn.parity import Gates

    # trained as `edgecnn train` trains (every resize method), and exported without the consumers' resize gate: this
    # check is about installs; on 12 held-out images one near-tie under another resize fails that gate (its own
    # tests cover it), and a rejected artifact is not one to install-test
    run_dir = make_tiny_run(data, work / "run", epochs=4, resize_augment=True)
    report = export(run_dir, formats=["tflite", "onnx"], quantize=["float32", "int8"], out=run_dir / "export",
                    gates=Gates(consumer_agreement=0.0))
    report.raise_for_gates()
    return {**report.artifacts(), "run": run_dir}, data


def find_python(version: str) -> str | None:
    """A working interpreter of ``version`` (e.g. ``"3.10"``) with venv and ensurepip, or None.

    Tries ``python3.10`` on PATH (a pyenv shim that is not the active version fails and is skipped), then
    pyenv's own installs, then the usual system paths.
    """
    candidates = [f"python{version}"]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")), reverse=True)
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for cand in candidates:
        exe = shutil.which(cand) or (cand if os.path.isfile(cand) else None)
        if not exe:
            continue
        probe = subprocess.run([exe, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=60)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return exe
    return None


def python_version(exe: str) -> str:
    res = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                         text=True, timeout=60)
    return res.stdout.strip() if res.returncode == 0 else "?"


@dataclass
class Venv:
    """One edge venv to check: a name, its interpreter, the extras it installs, and whether constraints apply."""

    name: str
    python: str
    extras: list[str]
    constraints: bool
    label: str


def create_venv(v: Venv, work: Path) -> str | None:
    """Create the venv (one at a time: interpreter shims such as pyenv's are not safe to run concurrently)."""
    venv = work / f"venv-{v.name}"
    res = sh([v.python, "-m", "venv", venv], env=venv_env())
    if res.returncode or not (venv / "bin" / "python").exists():
        return f"venv creation failed: {res.stderr.strip()[-300:]}"
    return None


def install_venv(v: Venv, wheel: Path, work: Path) -> str | None:
    """Install ``edgecnn[<extras>]`` from the wheel into the venv; an error message, or None."""
    venv = work / f"venv-{v.name}"
    pin = ["-c", ROOT / "constraints.txt"] if v.constraints else []
    res = sh([venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", *pin,
              f"{wheel}[{','.join(v.extras)}]"], env=venv_env())
    if res.returncode:
        return f"pip install edgecnn[{','.join(v.extras)}] failed: {res.stderr.strip()[-500:]}"
    if not (venv / "bin" / "edgecnn").exists():
        return f"pip install edgecnn[{','.join(v.extras)}] left no bin/edgecnn script: {res.stderr.strip()[-300:]}"
    return None


def real_python(exe: str) -> str:
    """The interpreter's own path (a pyenv shim resolves to the version it runs)."""
    res = subprocess.run([exe, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, timeout=60)
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else exe


def check_venv(name: str, extras: list[str], models: dict[str, Path], data: Path, work: Path) -> list[str]:
    """Problems found in one installed venv with ``edgecnn[<extras>]`` (empty list: PASS)."""
    venv = work / f"venv-{name}"
    py = venv / "bin" / "python"
    problems = []
    env = venv_env()
    res = sh([py, "-c", VERSIONS], env=env)
    print(f"      {res.stdout.strip()}")
    if res.returncode or " [] " not in res.stdout:
        problems.append(f"heavy packages installed with edgecnn[{','.join(extras)}]: {res.stdout.strip()} {res.stderr[-200:]}")
    images = sorted(str(p) for p in data.rglob("*.png"))
    for extra in extras:
        model = models[extra]
        out = work / f"preds-{name}-{extra}.csv"
        res = sh([venv / "bin" / "edgecnn", "run", model, "--source", data, "--save-csv", out, "--quiet"],
                 env=env, timeout=300)
        if res.returncode:
            problems.append(f"edgecnn run {model.name} exited {res.returncode}: {(res.stdout + res.stderr).strip()[-500:]}")
            continue
        with open(out, newline="") as fh:
            rows = {r["source"]: r for r in csv.DictReader(fh)}
        if len(rows) != len(images) or not all(r["status"] == "ok" and r["label"] for r in rows.values()):
            problems.append(f"expected {len(images)} classified rows in {out.name}; found {len(rows)}")
        if "Speed:" not in res.stdout:
            problems.append(f"no Speed: summary line in the output of edgecnn run {model.name}")
        # the ~10-line example app: numpy frames through edgecnn.load(...).predict(...) -> same label and score
        res = sh([py, EXAMPLE, model, *images], env=env, timeout=300)
        if res.returncode:
            problems.append(f"{EXAMPLE.name} {model.name} exited {res.returncode}: {res.stderr.strip()[-400:]}")
        else:
            got = [line.split("\t") for line in res.stdout.splitlines() if line.count("\t") == 2]
            differ = [(path, label, score, rows.get(path, {}).get("label"), rows.get(path, {}).get("score"))
                      for path, label, score in got
                      if (label, score) != (rows.get(path, {}).get("label"), rows.get(path, {}).get("score"))]
            if len(got) != len(images) or differ:
                problems.append(f"{EXAMPLE.name} on {model.name}: {len(got)}/{len(images)} images, {len(differ)} with a "
                                f"label or score other than edgecnn run's (first: {differ[:1]})")
            else:
                print(f"      {EXAMPLE.name} == edgecnn run on {len(got)} images ({model.name})")
        res = sh([py, "-c", PROBE, model, data], env=env, timeout=300)
        if res.returncode or "HEAVY-MODULES []" not in res.stdout:
            problems.append(f"in-process run imported heavy modules or failed: {(res.stdout + res.stderr).strip()[-400:]}")
    # a run folder (model.keras + export/) on an edge install: run picks the best exported artifact, never model.keras
    res = sh([venv / "bin" / "edgecnn", "run", models["run"], "--source", data, "--max-frames", "3"], env=env, timeout=300)
    expected = "tflite int8" if "tflite" in extras else "onnx int8"
    said = res.stdout + res.stderr
    if res.returncode or f"({expected}:" not in said or "model.keras" in said:
        problems.append(f"edgecnn run RUN_FOLDER should pick the {expected} artifact: exit {res.returncode}, "
                        f"{(res.stdout + res.stderr).strip()[-400:]}")
    else:
        print(f"      edgecnn run RUN_FOLDER picked the {expected} artifact")
    res = sh([venv / "bin" / "edgecnn", "devices", "show", "rpi4"], env=env)
    if res.returncode or "rpi4" not in res.stdout:
        problems.append(f"device profiles not found in the installed wheel: {res.stderr.strip()[-200:]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="Interpreter of the dev stack (venvs use constraints.txt).")
    ap.add_argument("--also-python", default="3.10,3.12",
                    help="Other Python versions to check where installed (one venv each, both extras); 'none' to skip.")
    ap.add_argument("--extras", default="tflite,onnx")
    ap.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = ap.parse_args()
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="edgecnn-edge-"))
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    main_version = python_version(args.python)
    results: dict[str, list[str]] = {}
    try:
        print("[1/3] building the wheel", flush=True)
        wheel = build_wheel(work / "dist")
        print(f"      {wheel.name}")
        main_python = real_python(args.python)
        venvs = [Venv(f"{main_version}-{extra}", main_python, [extra], True,
                      f"py{main_version} edgecnn[{extra}] (constraints.txt)") for extra in extras]
        others = [] if args.also_python.strip().lower() == "none" else \
            [v.strip() for v in args.also_python.split(",") if v.strip() and v.strip() != main_version]
        for version in others:
            exe = find_python(version)
            if exe is None:
                print(f"      Python {version}: not installed here; skipped", flush=True)
                continue
            venvs.append(Venv(version, real_python(exe), extras, False,
                              f"py{version} edgecnn[{','.join(extras)}] (the extras' ranges)"))
        created = {v.name: create_venv(v, work) for v in venvs}
        # the installs (network and unzipping) overlap the training/export step and each other
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="venv") as pool:
            installs = {v.name: pool.submit(install_venv, v, wheel, work) for v in venvs if created[v.name] is None}
            print("[2/3] training and exporting a tiny model (training venv), installing the edge venvs meanwhile",
                  flush=True)
            artifacts, data = export_tiny(work)
            models = {**{extra: artifacts[MODELS[extra]] for extra in extras}, "run": artifacts["run"]}
            for v in venvs:
                failure = created[v.name] or installs[v.name].result()
                print(f"[3/3] {v.label}: {v.python}", flush=True)
                try:
                    results[v.label] = [failure] if failure else check_venv(v.name, v.extras, models, data, work)
                except Exception as exc:  # noqa: BLE001  (one venv's surprise must not hide the others' results)
                    results[v.label] = [f"{type(exc).__name__}: {exc}"]
    except Exception as exc:  # noqa: BLE001  (the summary below must always print)
        results["setup"] = [f"{type(exc).__name__}: {exc}"]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nEdge install check ({time.perf_counter() - t0:.0f}s):")
    for name, problems in results.items():
        print(f"  {'PASS' if not problems else 'FAIL'}  {name}")
        for p in problems:
            print(f"        - {p}")
    ok = bool(results) and not any(results.values())
    failed = sum(1 for problems in results.values() if problems)
    print(f"edge-install: {len(results) - failed} passed, {failed} failed")  # the closing line CI logs read
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
