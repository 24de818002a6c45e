"""aarch64 check of the offline bundle (``make test-arm64``): an rpi4 bundle installed in a Debian 12 arm64 root with
no network, under qemu-user (emulated), self-checked there, and a folder run compared row by row with x86.

1. makes, once, a Debian 12 (bookworm) arm64 root with debootstrap (``--variant=minbase
   --include=python3,python3-venv,ca-certificates``; the mirror from /etc/apt/sources.list.d/debian.sources) and
   qemu-user-static through binfmt_misc, cached OUTSIDE the repository (``$EDGECNN_ARM64_ROOT``, default
   ``/var/cache/edgecnn-arm64-root``; ~15 minutes on a loaded machine, a few on an idle one). Needs root;
2. trains and exports a tiny model (int8 TFLite, the rpi4 profile's) with this interpreter (the training venv);
3. builds the ``rpi4`` bundle (wheels for manylinux_2_36..2_17 aarch64, CPython 3.11) from the package registry, or
   from ``--wheelhouse DIR`` with no network;
4. unpacks it in the root and runs ``unshare -n chroot ROOT sh .../install --prefix /opt/edgecnn-check --no-service``:
   no network at all; the venv is made by the root's own python3 (Debian 12's 3.11) from the bundled wheels only, and
   the on-box self-check (parity against golden.npz, short benchmark) runs on aarch64 LiteRT;
5. runs ``edgecnn run MODEL --source FOLDER --save-csv`` in the root (the installed edgecnn, no network) and the same
   run on x86 with this interpreter, and compares every row: same files, same labels, largest score difference.

Prints a summary (bundle size, install time under qemu, self-check figures, rows) and exits non-zero on any failure.
Usage: ``python tests/arm64_check.py [--wheelhouse DIR] [--keep]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARM64_ROOT = Path(os.environ.get("EDGECNN_ARM64_ROOT", "/var/cache/edgecnn-arm64-root"))
PREFIX = "/opt/edgecnn-check"
WORK_IN_ROOT = "/tmp/edgecnn-arm64-check"
DEBS = ("qemu-user-static", "debootstrap", "binfmt-support")


def sh(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    print("  $", " ".join(map(str, cmd)), flush=True)
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if check and res.returncode:
        raise SystemExit(f"FAIL: {' '.join(map(str, cmd[:3]))} exited {res.returncode}:\n{res.stdout[-2000:]}{res.stderr[-3000:]}")
    return res


def mirror() -> str:
    src = Path("/etc/apt/sources.list.d/debian.sources")
    if src.is_file():
        for line in src.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].strip().split()[0]
    return "http://deb.debian.org/debian"


def ensure_qemu() -> None:
    missing = [d for d in DEBS if subprocess.run(["dpkg", "-s", d], capture_output=True).returncode]
    if missing:
        sh(["apt-get", "install", "-y", "-qq", *missing], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not Path("/proc/sys/fs/binfmt_misc/register").exists():
        sh(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"])
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        sh(["update-binfmts", "--enable", "qemu-aarch64"], check=False)
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        raise SystemExit("FAIL: qemu-aarch64 is not registered with binfmt_misc (update-binfmts --enable qemu-aarch64)")


def ensure_root() -> float:
    """The cached arm64 root; made once (to a temporary folder, renamed when complete). Returns seconds spent."""
    if (ARM64_ROOT / "usr" / "bin" / "python3").exists():
        return 0.0
    t0 = time.perf_counter()
    tmp = ARM64_ROOT.with_name(ARM64_ROOT.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sh(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
        "bookworm", tmp, mirror()], timeout=7200)
    os.rename(tmp, ARM64_ROOT)
    return time.perf_counter() - t0


def in_root(*cmd: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """A command inside the arm64 root with no network (a new, empty network namespace)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    return sh(["unshare", "-n", "chroot", ARM64_ROOT, *cmd], env=env, timeout=timeout, check=False)


def rows(path: Path, data_dir: str) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {os.path.relpath(r["source"], data_dir): r for r in csv.DictReader(fh)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheelhouse", type=Path, help="Build the bundle from this folder of aarch64 wheels, offline.")
    parser.add_argument("--keep", action="store_true", help="Keep the install in the root and the work folder.")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("SKIP: make test-arm64 needs root (debootstrap, binfmt_misc, chroot, unshare -n).")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ensure_qemu()
    root_s = ensure_root()
    made = f"made in {root_s:.0f} s" if root_s else "cached"
    print(f"arm64 root: {ARM64_ROOT} ({made})")
    arch = in_root("uname", "-m").stdout.strip()
    if arch != "aarch64":
        raise SystemExit(f"FAIL: the root runs {arch!r}, not aarch64")

    work = Path(tempfile.mkdtemp(prefix="edgecnn-arm64-"))
    inner = ARM64_ROOT / WORK_IN_ROOT.lstrip("/")
    shutil.rmtree(inner, ignore_errors=True)
    shutil.rmtree(ARM64_ROOT / PREFIX.lstrip("/"), ignore_errors=True)
    proc = ARM64_ROOT / "proc"
    mounted = sh(["mount", "-t", "proc", "proc", proc], check=False).returncode == 0
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        sys.path.insert(0, str(ROOT))
        from conftest import TINY_CLASSES, make_tiny_run

        from edgecnn.deploy.bundle import build_bundle
        from edgecnn.export import export
        from edgecnn.synthetic import write_dataset

        data = write_dataset(work / "data", classes=TINY_CLASSES, per_class=20, size=32)
        run_dir = make_tiny_run(data, work / "run", epochs=4)
        export(run_dir, formats=["tflite"], quantize=["int8"], out=work / "export")
        t0 = time.perf_counter()
        res = build_bundle(work / "export", "rpi4", work / "rpi4.tar.gz", wheelhouse=args.wheelhouse)
        print(f"bundle: {res.path.name} {res.size_bytes / 1e6:.1f} MB, {res.wheels} wheels, {res.manifest['requirement']},"
              f" built in {time.perf_counter() - t0:.1f} s; unpinned: {res.manifest['unpinned'] or 'none'}")

        inner.mkdir(parents=True)
        with tarfile.open(res.path) as tar:
            tar.extractall(inner, filter="data")
        shutil.copytree(data, inner / "data")
        bundle_in_root = f"{WORK_IN_ROOT}/edgecnn-{res.id}"
        t0 = time.perf_counter()
        inst = in_root("sh", f"{bundle_in_root}/install", "--prefix", PREFIX, "--no-service")
        install_s = time.perf_counter() - t0
        print(inst.stdout.strip())
        if inst.returncode:
            raise SystemExit(f"FAIL: install in the arm64 root exited {inst.returncode}: {inst.stderr.strip()[-2000:]}")
        status = json.loads((ARM64_ROOT / PREFIX.lstrip("/") / "current" / "status.json").read_text())
        sc = status["selfcheck"]
        print(f"install (aarch64 under qemu-user, emulated, no network): {install_s:.0f} s; machine "
              f"{status['machine']}, Python {status['python']}")
        print(f"self-check: passed={sc['passed']} parity samples={sc['parity']['samples']} max|dp|="
              f"{sc['parity']['max_abs']:.2e} agreement={sc['parity']['agreement']:.3f}; p50 {sc['latency']['p50_ms']:.2f} ms"
              f" p99 {sc['latency']['p99_ms']:.2f} ms (emulated: not a Pi's speed); runtime "
              f"{sc['parity']['runtime'].get('runtime')} {sc['parity']['runtime'].get('runtime_version')}")

        model = f"{PREFIX}/current/{res.manifest['artifact']['path']}"
        t0 = time.perf_counter()
        run = in_root(f"{PREFIX}/current/venv/bin/edgecnn", "run", model, "--source", f"{WORK_IN_ROOT}/data",
                      "--save-csv", f"{WORK_IN_ROOT}/rows-arm64.csv", "--quiet")
        if run.returncode:
            raise SystemExit(f"FAIL: edgecnn run in the arm64 root exited {run.returncode}: {run.stderr.strip()[-2000:]}")
        arm_s = time.perf_counter() - t0
        x86_csv = work / "rows-x86.csv"
        sh([sys.executable, "-m", "edgecnn", "run", ARM64_ROOT / model.lstrip("/"), "--source", inner / "data",
            "--save-csv", x86_csv, "--quiet"], env={**os.environ, "PYTHONPATH": str(ROOT)})
        arm = rows(inner / "rows-arm64.csv", f"{WORK_IN_ROOT}/data")
        x86 = rows(x86_csv, str(inner / "data"))
        same_files = sorted(arm) == sorted(x86)
        same_labels = sum(arm[k]["label"] == x86[k]["label"] for k in arm if k in x86)
        diff = max((abs(float(arm[k]["score"]) - float(x86[k]["score"])) for k in arm if k in x86), default=float("nan"))
        print(f"folder run: {len(arm)} rows on aarch64 ({arm_s:.0f} s emulated), {len(x86)} on x86; same files: "
              f"{same_files}; same labels: {same_labels}/{len(arm)}; max score difference {diff:.3g}")
        ok = sc["passed"] and same_files and same_labels == len(arm) == len(x86) and len(arm) > 0 and diff <= 1e-6
        print(f"arm64: {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        if mounted:
            sh(["umount", "-l", proc], check=False)
        if not args.keep:
            shutil.rmtree(inner, ignore_errors=True)
            shutil.rmtree(ARM64_ROOT / PREFIX.lstrip("/"), ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
