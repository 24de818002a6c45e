"""Modules imported on first use: ``from edgecnn.lazy import cv2`` costs nothing until ``cv2.something`` is read.

OpenCV takes ~15-100 ms and ~17 MiB to import, more than loading a small model and classifying an image, so
the run path imports it only when a source or sink really uses it (issue 12, cold start).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A stand-in for a module that imports it on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (loaded)' if self._module else ''}>"


cv2: Any = LazyModule("cv2")

__all__ = ["LazyModule", "cv2"]
