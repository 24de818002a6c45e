"""Whole-process measurement shared by ``cold_start.py`` and ``folder_throughput.py``.

Standard library only: the timing loops run in a lean process, because a child's ``ru_maxrss`` counts the memory
it inherits before ``exec`` (measuring from a process with numpy and LiteRT loaded would put that under every
figure).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall seconds, peak RSS MiB, CPU seconds user+system, minor page faults) of one whole process.

    Raises:
        SystemExit: the process failed (its stderr is shown).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{err}")
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime, usage.ru_minflt


def edgecnn_cmd() -> list[str]:
    """The ``edgecnn`` console script beside this Python (as a user runs it), else the same entry point via -c."""
    script = Path(sys.executable).parent / "edgecnn"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from edgecnn.cli import main; main()"]


def child_env() -> dict[str, str]:
    """The environment of the measured processes: this checkout first on the path, plain (piped) output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("FORCE_COLOR", None)
    # As installed: pip compiles bytecode at install time, so a start never compiles sources. A checkout run
    # with PYTHONDONTWRITEBYTECODE would recompile edgecnn on every start (~60 ms) and the bare script none.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
