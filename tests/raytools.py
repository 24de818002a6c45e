"""Helpers of the Ray tests (one module name on sys.path, like tinymodels)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def has_ray() -> bool:
    """Whether Ray Data can be imported (looked up without importing it: collection stays fast)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("ray", "pyarrow"))


needs_ray = pytest.mark.skipif(not has_ray(), reason="Ray Data is not installed (pip install 'edgecnn[ray]')")


def edgecnn_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the ``edgecnn`` CLI in a subprocess (bounded in time)."""
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
