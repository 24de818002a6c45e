"""Fixtures of the bundle tests: x86 bundles built from a local wheelhouse, unpacked, installed with no network.

* The wheels of the x86-cpu target (CPython 3.11, edgecnn[onnx]) are downloaded ONCE into a cache folder outside the
  repository (``$EDGECNN_TEST_WHEELHOUSE``, else ``~/.cache/edgecnn-test-wheelhouse/<platform>-<python>``) from the
  registry pip is set up for (CI: PyPI), keyed by constraints.txt and pyproject.toml; every bundle of the session
  is then built from it with ``--wheelhouse`` (no network). Installing a bundle is real: ``sh install`` under
  ``unshare -n`` (no network at all), a venv made by the box's python3 from the bundled wheels only.
* Bundles are built once per session: ``bundle_a`` (onnx float32 artifact), ``bundle_b`` (a deploy profile naming the
  int8 ONNX artifact, signed), ``bundle_bad`` (a model whose golden.npz outputs were shuffled: fails its own set).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from procs import Done  # tests/ is on sys.path

ROOT = Path(__file__).resolve().parents[2]
TARGET = "x86-cpu"


def _unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


UNSHARE = _unshare_works()


def box_python() -> str:
    """The python3 a box would have: the system one when it has venv (Debian's /usr/bin/python3), else ours."""
    for cand in ("/usr/bin/python3", shutil.which("python3") or ""):
        if cand and subprocess.run([cand, "-c", "import venv, ensurepip, sys; assert sys.version_info[:2] == (3, 11)"],
                                   capture_output=True).returncode == 0:
            return cand
    return sys.executable


def run_install(bundle_dir: Path, prefix: Path, *args: object, fault: str | None = None,
                timeout: float = 600) -> Done:
    """``sh BUNDLE/install --prefix P --no-service ARGS`` with no network (``unshare -n`` where it works)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECNN_FAULT", "PYTHONPATH"))}
    py_dir = str(Path(box_python()).parent)
    env["PATH"] = py_dir + os.pathsep + env.get("PATH", "")
    if fault:
        env["EDGECNN_FAULT_POINT"] = fault
    cmd = ["sh", str(bundle_dir / "install"), "--prefix", str(prefix), "--no-service", *map(str, args)]
    if UNSHARE:
        cmd = ["unshare", "-n", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    return Done(cmd, res.returncode, res.stdout, res.stderr)


def unpack(bundle: Path, dest: Path) -> Path:
    """Unpack a bundle into ``dest`` (made fresh); returns its one top folder."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(bundle) as tar:
        tar.extractall(dest, filter="data")
    (top,) = list(dest.iterdir())
    return top


def current(prefix: Path) -> str | None:
    try:
        return Path(os.readlink(prefix / "current")).name
    except OSError:
        return None


def assert_current_works(prefix: Path, expect: str | None) -> None:
    """``current`` names ``expect`` (None: absent), and that release is complete, passed, with a venv that runs."""
    assert current(prefix) == expect, (current(prefix), expect)
    if expect is None:
        return
    rel = prefix / "current"
    status = json.loads((rel / "status.json").read_text())
    assert status["passed"] and status["id"] == expect
    res = subprocess.run([str(rel / "venv" / "bin" / "python"), "-c", "import edgecnn, onnxruntime"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr


def _stamp() -> str:
    h = hashlib.sha256()
    for name in ("constraints.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The x86-cpu target's wheels, downloaded once into a cache outside the repository."""
    from edgecnn.deploy.bundle import resolve_target
    from edgecnn.deploy.wheels import build_edgecnn_wheel, download_target

    tgt = resolve_target(TARGET, "onnx")
    base = os.environ.get("EDGECNN_TEST_WHEELHOUSE")
    cache = Path(base) if base else Path.home() / ".cache" / "edgecnn-test-wheelhouse" / f"{tgt.platforms[0]}-cp{tgt.python}"
    stamp = cache / f".complete-{_stamp()}"
    if not stamp.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / ".build"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        wheel = build_edgecnn_wheel(tmp)
        try:
            download_target(wheel, tgt.extra, cache, tgt.platforms, tgt.python, tgt.machine, ROOT / "constraints.txt")
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"the x86 wheels could not be downloaded into {cache} (no package registry?): {exc}")
        for old in cache.glob("edgecnn-*.whl"):
            old.unlink()  # the checkout's own wheel is built per bundle
        shutil.rmtree(tmp, ignore_errors=True)
        for old in cache.glob(".complete-*"):
            old.unlink()
        stamp.touch()
    return cache


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, exported_artifacts, wheelhouse) -> dict[str, Path]:
    """Bundles of the session: ``a`` (artifact), ``b`` (deploy profile, signed), ``bad`` (fails its golden set),
    and the keys ``key``/``pub`` (B's signer) and ``other_pub`` (another key)."""
    from edgecnn.deploy.bundle import build_bundle
    from edgecnn.deploy.keys import new_key

    work = tmp_path_factory.mktemp("bundles")
    key, pub = new_key(work / "keys" / "station.key")
    _, other_pub = new_key(work / "keys" / "other.key")
    out = {"key": key, "pub": pub, "other_pub": other_pub}

    a_dir = work / "a"
    a_dir.mkdir()
    shutil.copy2(exported_artifacts["onnx-float32"], a_dir)
    shutil.copy2(exported_artifacts["golden"], a_dir)
    out["a"] = build_bundle(a_dir / exported_artifacts["onnx-float32"].name, TARGET, work / "a.tar.gz",
                            wheelhouse=wheelhouse).path

    b_dir = work / "b"
    b_dir.mkdir()
    art = Path(shutil.copy2(exported_artifacts["onnx-int8"], b_dir))
    shutil.copy2(exported_artifacts["golden"], b_dir)
    profile = {"schema": "edgecnn.deploy/1",
               "artifact": {"path": art.name, "sha256": hashlib.sha256(art.read_bytes()).hexdigest()},
               "backend": "onnx", "threads": 1, "batch": 1, "providers": ["CPUExecutionProvider"],
               "measured": {"p50_ms": 0.5, "p99_ms": 0.9, "runs": 100}, "device": {"label": "bench box"}}
    (b_dir / "deploy.json").write_text(json.dumps(profile))
    out["b"] = build_bundle(b_dir / "deploy.json", TARGET, work / "b.tar.gz", wheelhouse=wheelhouse, sign=key).path

    bad_dir = work / "bad"
    bad_dir.mkdir()
    shutil.copy2(exported_artifacts["onnx-float32"], bad_dir)
    with np.load(exported_artifacts["golden"]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["outputs"] = np.roll(arrays["outputs"], 1, axis=1)  # its own golden answers, shifted by one class
    np.savez_compressed(bad_dir / "golden.npz", **arrays)
    out["bad"] = build_bundle(bad_dir / exported_artifacts["onnx-float32"].name, TARGET, work / "bad.tar.gz",
                              wheelhouse=wheelhouse).path
    return out
