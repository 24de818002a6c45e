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
from pathlib import Path

from edgecnn.errors import DataError, ModelError
from edgecnn.imaging import LabelledFiles
from edgecnn.modelcard import CARD_FILENAME, ModelCard

SPLITS_FILENAME = "splits.json"
MODEL_FILENAME = "model.keras"
#: Checkpoints of a training run: ``weights/last.keras`` (what ``--resume`` continues) and ``weights/best.keras``.
WEIGHTS_DIR = "weights"
LAST_FILENAME = "last.keras"
BEST_FILENAME = "best.keras"
STATE_FILENAME = "state.json"


def latest_run(project: Path) -> Path | None:
    """The most recently modified run in ``project`` that has a last checkpoint (``--resume`` without a name)."""
    runs = [p for p in project.glob(f"*/{WEIGHTS_DIR}/{LAST_FILENAME}")
            if not p.parent.parent.name.startswith(".")] if project.is_dir() else []  # not staging folders
    return max(runs, key=lambda p: p.stat().st_mtime).parent.parent if runs else None


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a trained ``model.keras``."""
    return Path(path).is_dir() and (Path(path) / MODEL_FILENAME).is_file()


def run_model(source: str | os.PathLike[str]) -> Path:
    """The model file ``source`` names: the file itself, or a run folder's ``model.keras`` (the one resolver).

    Raises:
        ModelError: nothing there, or a folder without ``model.keras``.
    """
    path = Path(source)
    if not path.exists():
        raise ModelError(f"Model not found: {path} (expected a model file or a run folder).")
    if path.is_dir():
        if not is_run_folder(path):
            raise ModelError(f"Expected a model file or a run folder containing {MODEL_FILENAME}; {path} has none.")
        return path / MODEL_FILENAME
    return path


def resolve_run(source: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(run folder, model file) for a run folder or a ``.keras``/``.h5`` file."""
    model = run_model(source)
    return model.parent, model


def next_run_dir(project: str | os.PathLike[str], base: str = "exp") -> Path:
    """``project/exp``, else ``exp2``, ``exp3``… (the first that does not exist), as ``runs/train`` numbers runs.

    Every command that writes (train, evaluate) puts its outputs in such a folder unless given a path, so a
    second run never overwrites the first.
    """
    project = Path(project)
    candidate = project / base
    i = 2
    while candidate.exists():
        candidate = project / f"{base}{i}"
        i += 1
    return candidate


def next_commands_after_train(run_dir: str | os.PathLike[str]) -> list[str]:
    """What a user runs after ``edgecnn train``: export (int8 + float32, TFLite and ONNX), evaluate, info."""
    from converters.registry import FORMATS, FULL_PRECISION, PRECISIONS

    formats = " ".join(f"--format {f}" for f, spec in FORMATS.items() if not spec.directory)
    precisions = [PRECISIONS[FULL_PRECISION], *(p for p in PRECISIONS.values() if p.calibration)]
    quantize = " ".join(f"--quantize {p.alias}" for p in precisions)
    return [f"edgecnn export {run_dir} {formats} {quantize}",
            f"edgecnn evaluate {run_dir} --run {run_dir}",
            f"edgecnn info {Path(run_dir) / MODEL_FILENAME}"]


def load_run_card(run_dir: str | os.PathLike[str]) -> ModelCard | None:
    p = Path(run_dir) / CARD_FILENAME
    if not p.exists():
        return None
    from edgecnn.modelcard import _read_small

    return ModelCard.from_json(_read_small(p))


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
    import shutil

    dest = Path(dest)
    for i, (f, t) in enumerate(zip(files.files, files.targets)):
        d = dest / files.labels[t]
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, d / f"{i:05d}_{f.name}")
    return dest
