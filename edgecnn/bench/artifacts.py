"""What ``edgecnn bench`` measures: the artifacts a MODEL argument names, in registry order, and their facts.

A file is taken as is; a run or export folder gives its ``*.tflite``/``*.onnx`` (and ``model.keras`` on request).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters.registry import FORMATS, FULL_PRECISION, parse_artifact_name, precision_rank
from edgecnn.errors import ConfigError, EdgeCNNError, ModelError
from edgecnn.runtime.keras_model import KERAS_FORMAT
from edgecnn.runtime.keras_model import KERAS_SUFFIXES as _KERAS_SUFFIXES

#: Model file suffixes benchmarked when a folder is given, by format name (the registry's file formats).
FOLDER_FORMATS = {f.suffix: f.name for f in FORMATS.values() if not f.directory}
#: Keras model suffixes (benchmarked with ``--include-keras``), by format name.
KERAS_SUFFIXES = dict.fromkeys(_KERAS_SUFFIXES, KERAS_FORMAT)


def discover_artifacts(models: Sequence[str | os.PathLike[str]], backend: str = "auto", include_keras: bool = False) -> list[Path]:
    """Model files to benchmark, in the given order.

    A file is taken as is. A folder (run or export folder) gives every ``*.tflite`` and ``*.onnx`` in it
    and in its ``export/`` sub-folder; ``model.keras`` only with ``include_keras`` or ``backend="keras"``.
    With a named backend, only the files that backend runs are taken from folders.

    Raises:
        ModelError: a path that does not exist, a file of unknown type, or a folder without artifacts.
    """
    from edgecnn.runtime.backends import BACKENDS, backend_for

    if backend != "auto" and backend not in BACKENDS:
        raise ConfigError(f"Unknown --backend {backend!r}; expected auto or one of {sorted(BACKENDS)}.")
    if not models:
        raise ConfigError("Expected at least one MODEL (a .tflite/.onnx/.keras file or a run/export folder).")
    suffixes = dict(FOLDER_FORMATS)
    if include_keras or backend == KERAS_FORMAT:
        suffixes.update(KERAS_SUFFIXES)
    if backend != "auto":
        suffixes = {s: f for s, f in suffixes.items() if s in BACKENDS[backend].suffixes}
    found: list[Path] = []
    for model in models:
        path = Path(model)
        if not path.exists():
            if str(model).strip().isdigit():  # `--threads 1 2`: the second number became a model
                raise ConfigError(f"Expected models (files or folders); received the number {str(model)!r}. List values "
                                  f"of --threads and --batch with commas: --threads 1,{str(model).strip()}.")
            raise ModelError(f"Model not found: {path} (expected a .tflite/.onnx/.keras file or a run/export folder).")
        if path.is_file():
            backend_for(path, backend)  # unknown type → ModelError now, before anything is measured
            found.append(path)
            continue
        files: list[Path] = []
        for folder in (path, path / "export"):
            if folder.is_dir():
                files += sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                                and not p.name.startswith("."))
        if not files:
            raise ModelError(
                f"No artifacts to benchmark in {path}: expected {sorted(suffixes)} files there or in {path / 'export'}"
                + ("" if include_keras else " (add --include-keras to benchmark model.keras)") + "."
            )
        found += sorted(files, key=_artifact_order)
    return list(dict.fromkeys(p.resolve() for p in found))


def _artifact_order(path: Path) -> tuple[int, int, str]:
    """Registry order: formats as in FORMATS (Keras last), then precisions float32 → int8, then name."""
    order = [*FOLDER_FORMATS, *KERAS_SUFFIXES]
    suffix = path.suffix.lower()
    target = parse_artifact_name(path.name)
    return (order.index(suffix) if suffix in order else len(order),
            precision_rank(target[1]) if target else precision_rank(""), path.name)


@dataclass
class ArtifactFacts:
    """What is known about a file before loading it."""

    path: Path
    format: str
    precision: str
    size_bytes: int | None
    sha256: str | None
    model_id: str | None
    model_name: str | None
    card: Any = None


def describe_artifact(path: Path) -> ArtifactFacts:
    """Format, precision, size, checksums and card of a file (never raises: facts left unknown are None/'?')."""
    from edgecnn.fileio import sha256_file
    from edgecnn.modelcard import load_card

    suffix = path.suffix.lower()
    fmt = {**FOLDER_FORMATS, **KERAS_SUFFIXES}.get(suffix, suffix.lstrip(".") or "?")
    card = None
    try:
        card = load_card(path)
    except (EdgeCNNError, OSError, ValueError):
        card = None
    precision = None
    if card is not None:
        precision = card.artifact.get("precision")
        fmt = card.artifact.get("format", fmt) or fmt
    if not precision:
        target = parse_artifact_name(path.name)
        precision = target[1] if target else (FULL_PRECISION if fmt == KERAS_FORMAT else "?")
    try:
        size = path.stat().st_size
        sha = sha256_file(path)
    except OSError:
        size = sha = None
    model_id = None
    name = None
    if card is not None:
        model_id = card.provenance.get("source_sha256") or card.provenance.get("model_sha256")
        name = card.name
    return ArtifactFacts(path, str(fmt), str(precision), size, sha, model_id, name, card)
