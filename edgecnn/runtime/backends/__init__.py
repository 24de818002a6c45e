"""Inference backends, chosen by file type or by name: TFLite (LiteRT), ONNX Runtime, Keras (reference).

This package is the backends' registry (:data:`BACKENDS`) and loader; one module per backend
(:mod:`.tflite`, :mod:`.onnx`, :mod:`.keras`) over the base class in :mod:`.base`. Every name that lived in the
former ``runtime/backends.py`` is importable from here.

Nothing here imports TensorFlow at module level; the Keras backend imports Keras only when a ``.keras``
model is run, and the TFLite backend falls back to ``tf.lite`` only when neither LiteRT nor
tflite-runtime is installed and TensorFlow happens to be.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgecnn.errors import ModelError
from edgecnn.runtime.backends.base import Backend, TensorInfo
from edgecnn.runtime.backends.keras import KerasBackend
from edgecnn.runtime.backends.onnx import DEFAULT_PROVIDERS, ONNXBackend, describe_placement, node_placement
from edgecnn.runtime.backends.tflite import DELEGATE_ALIASES, TFLiteBackend, delegate_library, tflite_runtime

__all__ = [
    "BACKENDS",
    "DEFAULT_PROVIDERS",
    "DELEGATE_ALIASES",
    "Backend",
    "KerasBackend",
    "ONNXBackend",
    "TFLiteBackend",
    "TensorInfo",
    "backend_for",
    "delegate_library",
    "describe_placement",
    "load_backend",
    "node_placement",
    "preferred_backend",
    "tflite_runtime",
]

BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (TFLiteBackend, ONNXBackend, KerasBackend)}


def backend_for(path: str | os.PathLike[str], backend: str = "auto") -> type[Backend]:
    """The backend class for a model file (by suffix) or by name."""
    p = Path(path)
    if backend != "auto":
        if backend not in BACKENDS:
            raise ModelError(f"Unknown backend {backend!r}; expected auto or one of {sorted(BACKENDS)}.")
        return BACKENDS[backend]
    suffix = p.suffix.lower()
    for cls in BACKENDS.values():
        if suffix in cls.suffixes:
            return cls
    known = sorted(s for cls in BACKENDS.values() for s in cls.suffixes)
    raise ModelError(f"Unknown model type {p.name!r}; expected one of {known} (or a run folder).")


def preferred_backend(model: str | os.PathLike[str], preferred: str | None) -> str:
    """A device profile's backend is a preference: it applies to files it can run; others use their own type's.

    Returns ``preferred`` when it can run ``model`` (a run folder means its ``model.keras``), else ``"auto"``.
    """
    from edgecnn.runs import MODEL_FILENAME

    cls = BACKENDS.get(preferred or "auto")
    path = Path(model)
    suffix = Path(MODEL_FILENAME).suffix if path.is_dir() else path.suffix.lower()
    return preferred if cls is not None and preferred and suffix in cls.suffixes else "auto"


def load_backend(
    model: str | os.PathLike[str],
    backend: str = "auto",
    threads: int | None = None,
    delegate: str | None = None,
    delegate_options: dict[str, str] | None = None,
    providers: list[str] | None = None,
    unsafe: bool = False,
    init_cache: bool = True,
    spin: bool = True,
    conventions: Any = None,
) -> Backend:
    """Load a model file (or a run folder's ``model.keras``) with the right backend.

    ``init_cache=False`` builds the runtime from scratch, neither reading nor writing the init cache
    (:mod:`edgecnn.runtime.initcache`). ``spin=False`` lets onnxruntime's CPU threads sleep between nodes
    instead of spin-waiting (its default), for a run whose decoding threads need the cores. ``conventions``
    (:class:`edgecnn.conventions.Conventions`) states a model's input conventions: layout, range, mean/std,
    colour, resize, labels, strict; they win over what the file says.
    """
    from edgecnn.runs import run_model

    path = run_model(model)
    cls = backend_for(path, backend)
    if path.suffix.lower() not in cls.suffixes:
        raise ModelError(f"Backend {cls.name!r} cannot run {path.name}; it runs {list(cls.suffixes)} files.")
    kwargs: dict[str, Any] = {"threads": threads, "delegate": delegate, "delegate_options": delegate_options,
                              "providers": providers, "init_cache": init_cache, "conventions": conventions}
    if cls is KerasBackend:
        kwargs["unsafe"] = unsafe
    if cls is ONNXBackend:
        kwargs["spin"] = spin
    return cls(path, **kwargs)
