"""System facts recorded in every benchmark report, and process memory figures.

Pure stdlib (plus numpy's version string): nothing here imports a runtime library, let alone TensorFlow.
Library versions are read from installed distribution metadata, not by importing the packages.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgecnn.fileio import MB

#: Distributions whose versions a report lists when they are installed.
RUNTIME_DISTRIBUTIONS = (
    "ai-edge-litert",
    "tflite-runtime",
    "onnxruntime",
    "onnxruntime-gpu",
    "tensorflow",
    "keras",
    "opencv-python-headless",
    "pillow",
)


def dist_version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """CPU model name (x86 ``model name``; on ARM boards the device-tree model or ``Hardware`` line)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        try:
            text = cpuinfo.read_text(errors="replace")
        except OSError:
            text = ""
        for key in ("model name", "Hardware", "Processor", "cpu model"):
            for line in text.splitlines():
                if line.lower().startswith(key.lower()) and ":" in line:
                    value = line.split(":", 1)[1].strip()
                    if value:
                        return value
    dt_model = Path("/proc/device-tree/model")
    if dt_model.exists():
        try:
            return dt_model.read_bytes().rstrip(b"\x00").decode("utf-8", "replace")
        except OSError:
            pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5)
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def board_model() -> str | None:
    """The board name on single-board computers (Raspberry Pi, Jetson), from the device tree."""
    path = Path("/proc/device-tree/model")
    try:
        return path.read_bytes().rstrip(b"\x00").decode("utf-8", "replace") if path.exists() else None
    except OSError:
        return None


def physical_cores() -> int | None:
    """Number of physical cores (distinct core ids per package), or None when unknown."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return None
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("physical id"):
            phys = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core = line.split(":", 1)[1].strip()
            cores.add((phys, core))
    return len(cores) or None


def allowed_cpus() -> list[int] | None:
    """CPUs this process may run on (None where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return None


def gpu_names() -> list[str]:
    """NVIDIA GPU names from ``nvidia-smi`` (empty when there is none or it is not installed)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_bytes() -> int | None:
    """Current resident set size of this process (``VmRSS``), or None where unavailable."""
    kb = _status_kb("VmRSS")
    return kb * 1024 if kb is not None else None


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process (``VmHWM``, else ``getrusage`` maxrss)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    try:
        import resource
    except ImportError:  # Windows
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ``clear_refs`` 5) so the next peak is per artifact.

    Returns:
        Whether the reset worked; when it did not, the peak is the process-wide peak so far.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def pin_cpus(cpus: list[int] | None) -> list[int] | None:
    """Pin this process to ``cpus`` (os.sched_setaffinity); returns the previous set to restore.

    Returns None (and changes nothing) when ``cpus`` is empty or the OS has no affinity API.

    Raises:
        ConfigError: a CPU that does not exist or is not allowed to this process.
    """
    from edgecnn.errors import ConfigError

    if not cpus:
        return None
    if not hasattr(os, "sched_setaffinity"):
        from edgecnn.console import warn

        warn(f"This OS cannot pin processes to CPUs; --cpus {cpus} is ignored.")
        return None
    previous = sorted(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, set(cpus))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Cannot pin to CPUs {cpus} ({exc}); expected a subset of the CPUs this process may use: {previous}."
        ) from exc
    return previous


def unpin_cpus(previous: list[int] | None) -> None:
    """Restore the affinity returned by :func:`pin_cpus`."""
    if previous and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(previous))


def system_info() -> dict[str, Any]:
    """The facts a latency figure means nothing without: CPU, cores, OS, Python, libraries, GPU, time."""
    import numpy as np

    from edgecnn import __version__

    uname = platform.uname()
    libraries = {name: v for name in RUNTIME_DISTRIBUTIONS if (v := dist_version(name))}
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "board": board_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": physical_cores(),
        "cpus_allowed": allowed_cpus(),
        "machine": uname.machine,
        "os": platform.platform(),
        "kernel": uname.release,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "libraries": libraries,
        "gpus": gpu_names(),
        "memory_total_mb": _mem_total_mb(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "edgecnn": __version__,
    }


#: Facts that make a latency figure belong to one kind of device and runtime (a deploy profile's fingerprint).
FINGERPRINT_FACTS = ("cpu", "board", "machine", "cores_logical", "gpus", "libraries")


def device_fingerprint(info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The device a measurement belongs to: its facts and a short hash of them (``id``).

    Two boxes of the same model running the same runtime versions share a fingerprint; another CPU, core count,
    board, GPU or runtime version changes it. Hostname and time are left out on purpose.
    """
    import hashlib
    import json

    info = info or system_info()
    runtimes = {k: v for k, v in (info.get("libraries") or {}).items()
                if k in ("ai-edge-litert", "tflite-runtime", "onnxruntime", "onnxruntime-gpu")}
    facts = {k: info.get(k) for k in FINGERPRINT_FACTS if k != "libraries"} | {"libraries": runtimes}
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"id": digest, "facts": facts}


def _mem_total_mb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) * 1024 / MB, 1)  # /proc/meminfo counts KiB
    except (OSError, ValueError):
        return None
    return None
