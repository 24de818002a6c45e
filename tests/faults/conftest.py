"""Fixtures of the faults suite: the real CLI in a subprocess, full and read-only file systems, input hashes.

* ``cli(*args, env=..., limit_fsize=...)`` runs ``python -m edgecnn`` with this checkout first on the path.
* ``full_dir`` is a folder on a file system with a few KiB left: a small tmpfs when we may mount (root), else an
  ordinary folder whose writers run with ``RLIMIT_FSIZE`` (SIGXFSZ ignored, so writes fail with EFBIG).
* ``readonly_dir`` is a read-only folder: a tmpfs mounted ``ro`` (root ignores permission bits), else chmod 0555.
* ``Snapshot`` hashes every file under some folders before a command and compares after it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import Done  # tests/ is on sys.path

ROOT = Path(__file__).resolve().parents[2]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", COLUMNS="200", PYTHONUNBUFFERED="1")
    for key in ("EDGECNN_FAULT_POINT", "EDGECNN_FAULT_SIGNAL", "EDGECNN_FAULT_AFTER"):
        env.pop(key, None)
    env.update(extra or {})
    return env


def _limit_fsize(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def run_cli(*args: object, env: dict[str, str] | None = None, limit_fsize: int | None = None,
            timeout: float = 240, cwd: Path | None = None) -> Done:
    argv = [sys.executable, "-m", "edgecnn", *map(str, args)]
    res = subprocess.run(argv, capture_output=True, text=True, env=_env(env), timeout=timeout, cwd=cwd,
                         preexec_fn=_limit_fsize(limit_fsize) if limit_fsize else None)
    return Done(argv, res.returncode, res.stdout, res.stderr)


def invoke(*args: object) -> Done:
    """The same CLI in this process (no second TensorFlow import): for the steps of a case that need no kill or
    rlimit (the re-run after a kill, a resume of a damaged run)."""
    from typer.testing import CliRunner

    from edgecnn.cli import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    code = res.exit_code
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Done(["edgecnn", *map(str, args)], code, res.stdout, res.stderr)


@pytest.fixture()
def cli():
    return run_cli


def assert_one_line_error(res: Done, code: int, *needles: str) -> None:
    """Exit ``code``, no traceback, exactly one ``Error:`` line on stderr that holds every needle."""
    assert res.returncode == code, f"exit {res.returncode} != {code}\n{res.output}"
    assert "Traceback" not in res.output, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.stderr
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"


# ---------------------------------------------------------------------- file systems
def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None and sys.platform.startswith("linux")


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[bool]:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    try:
        yield res.returncode == 0
    finally:
        if res.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@dataclass
class FullDir:
    """A folder where writes soon fail: ``path``; pass ``limit`` as the CLI's ``limit_fsize`` (None on tmpfs)."""

    path: Path
    limit: int | None
    kind: str

    def fill(self, leave: int) -> None:
        """On a tmpfs, fill the file system so that about ``leave`` bytes remain."""
        if self.limit is not None:
            return
        filler = self.path / ".filler"
        with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 4096)
        size = filler.stat().st_size
        os.truncate(filler, max(0, size - leave))


@pytest.fixture(params=["tmpfs", "rlimit"])
def full_dir(request, tmp_path) -> Iterator[FullDir]:
    """A nearly full file system (tmpfs, when we may mount) or a per-file size limit (RLIMIT_FSIZE, always)."""
    if request.param == "tmpfs":
        if not _can_mount():
            pytest.skip("mounting a small tmpfs needs root; the RLIMIT_FSIZE case covers the same paths")
        with _tmpfs(tmp_path / "full", "size=2m,mode=0777") as ok:
            if not ok:
                pytest.skip("mount -t tmpfs is not permitted here")
            yield FullDir(tmp_path / "full", None, "tmpfs")
        return
    (tmp_path / "limited").mkdir()
    yield FullDir(tmp_path / "limited", 12_000, "rlimit")


@pytest.fixture()
def readonly_dir(tmp_path) -> Iterator[Path]:
    """A read-only folder: a tmpfs mounted read-only (root), else a folder with mode 0555 (not root)."""
    path = tmp_path / "ro"
    if _can_mount():
        with _tmpfs(path, "ro,size=64k") as ok:
            if ok:
                yield path
                return
    if os.geteuid() == 0:
        pytest.skip("root ignores mode bits and cannot mount a read-only tmpfs here")
    path.mkdir(exist_ok=True)
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)


# ---------------------------------------------------------------------- inputs and rows
class Snapshot:
    """SHA-256 of every file under the given paths; :meth:`assert_unchanged` proves no input was destroyed."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths
        self.before = self._hash()

    def _hash(self) -> dict[str, str]:
        out = {}
        for root in self.paths:
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for f in files:
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
        return out

    def assert_unchanged(self, allow_new: bool = False) -> None:
        after = self._hash()
        keys = self.before.keys() if allow_new else self.before.keys() | after.keys()
        changed = sorted(k for k in keys if self.before.get(k) != after.get(k))
        assert not changed, f"inputs changed: {changed[:5]}"


def csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a result CSV, asserting the file holds whole rows only: one header, every line complete."""
    from edgecnn.runtime.sinks import CSV_COLUMNS

    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends with a partial row: {data[-80:]!r}"
    lines = data.decode("utf-8").splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS), lines[0]
    assert sum(1 for line in lines if line == lines[0]) == 1, "the header is written once"
    rows = list(csv.DictReader(lines))
    for row in rows:
        assert None not in row and all(row[c] is not None for c in CSV_COLUMNS), row
        assert row["time_utc"].endswith("Z") and row["status"] in ("ok", "skipped"), row
    return rows


def jsonl_rows(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends with a partial row"
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert all(r["time_utc"].endswith("Z") and "source" in r for r in rows)
    return rows


def hidden_leftovers(folder: Path) -> list[str]:
    """Staging or backup folders of edgecnn left in ``folder`` (``.NAME.staging-*``/``.NAME.old-*``)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and (".staging-" in p.name or ".old-" in p.name))


@pytest.fixture(scope="session")
def faults_model(exported_artifacts) -> Path:
    """A float32 TFLite model with its card (shared session export)."""
    return exported_artifacts["tflite-float32"]


@pytest.fixture()
def images(tmp_path, shapes_dir) -> Path:
    """A private copy of 24 of the shapes images in class folders (a run reads it; tests may damage it)."""
    dst = tmp_path / "images"
    for cls in sorted(p for p in shapes_dir.iterdir() if p.is_dir()):
        (dst / cls.name).mkdir(parents=True)
        for f in sorted(cls.glob("*.png"))[:8]:
            shutil.copy2(f, dst / cls.name / f.name)
    return dst
