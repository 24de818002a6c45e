"""Run folders written by ``edgecnn train`` and read by export, run, evaluate and demo (TF-free).

A run folder ``runs/train/<name>/`` holds ``model.keras``, ``modelcard.json``, ``labels.txt``,
``config.toml``, ``history.csv``, ``metrics.json``, plots, and ``splits.json``::

    {"root": "/abs/path/to/dataset", "labels": [...],
     "train": [["rel/path.png", 0], ...], "val": [...], "test": [...],
     "test_root": "/abs/path/to/test-data" | null}

Paths in a split are relative to ``root`` (or to ``test_root`` for the ``test`` split when
``--test-data`` was given). This is how export finds calibration data (train split) and held-out
data (test, else val) without retraining or re-splitting.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from edgecnn.errors import DataError, ModelError
from edgecnn.imaging import LabelledFiles
from edgecnn.modelcard import CARD_FILENAME, ModelCard

SPLITS_FILENAME = "splits.json"
MODEL_FILENAME = "model.keras"


def resolve_run(source: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(run folder, model file) for a run folder or a ``.keras``/``.h5`` file."""
    path = Path(source)
    if not path.exists():
        raise ModelError(f"Model or run folder not found: {path}")
    if path.is_dir():
        model = path / MODEL_FILENAME
        if not model.exists():
            raise ModelError(f"Expected a run folder containing {MODEL_FILENAME}; {path} has none.")
        return path, model
    return path.parent, path


def load_run_card(run_dir: str | os.PathLike[str]) -> ModelCard | None:
    p = Path(run_dir) / CARD_FILENAME
    return ModelCard.from_json(p.read_bytes()) if p.exists() else None


def load_split(run_dir: str | os.PathLike[str], split: str) -> LabelledFiles | None:
    """Files of one split (``train``/``val``/``test``) of a run, or None when the run has no such split."""
    p = Path(run_dir) / SPLITS_FILENAME
    if not p.exists():
        return None
    data = json.loads(p.read_text(encoding="utf-8"))
    entries = data.get(split) or []
    if not entries:
        return None
    root = Path(data.get("test_root") or data["root"]) if split == "test" else Path(data["root"])
    files = [root / rel for rel, _ in entries]
    targets = [int(t) for _, t in entries]
    missing = [f for f in files if not f.exists()]
    if missing:
        raise DataError(f"{len(missing)} files of the run's {split} split are gone (first: {missing[0]}).")
    labels = list(data["labels"])
    per_class = {lbl: targets.count(i) for i, lbl in enumerate(labels)}
    return LabelledFiles(labels=labels, files=files, targets=targets, per_class=per_class)


def heldout_split(run_dir: str | os.PathLike[str]) -> LabelledFiles | None:
    """The run's test split, else its validation split."""
    return load_split(run_dir, "test") or load_split(run_dir, "val")


def materialize(files: LabelledFiles, dest: str | os.PathLike[str]) -> Path:
    """Copy a split into a class-folder tree ``dest/<label>/...`` (for ``run``/``evaluate`` on a folder)."""
    dest = Path(dest)
    for i, (f, t) in enumerate(zip(files.files, files.targets)):
        d = dest / files.labels[t]
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, d / f"{i:05d}_{f.name}")
    return dest
