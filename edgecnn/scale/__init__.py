"""Scale-out on Ray: batch inference over archives (Ray Data) and multi-worker training (Ray Train).

Nothing here imports Ray or TensorFlow at module level; Ray loads when a job starts and, when it is
missing, fails with ``pip install 'edgecnn[ray]'``. Names load lazily, so the CLI can read :data:`ENGINES`
without importing the runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "ENGINES": "cluster", "ClusterInfo": "cluster", "ray_session": "cluster", "require_ray": "cluster",
    "JobReport": "infer", "RayJobError": "infer", "ScaleOptions": "infer", "predict_files": "infer",
    "RaySummary": "run", "input_files": "run", "ray_results": "run", "run_ray": "run",
    "train_ray": "train",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'edgecnn.scale' has no attribute {name!r}")
    return getattr(importlib.import_module(f"edgecnn.scale.{module}"), name)
