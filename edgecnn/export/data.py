"""The images an export uses: int8 calibration from the TRAIN split (never test data), held-out data for parity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import ConfigError, DataError
from edgecnn.export.source import Source
from edgecnn.imaging import LabelledFiles, scan_labelled_folder
from edgecnn.parity import load_folder, load_images
from edgecnn.runs import heldout_split, load_split

DEFAULT_CALIB_SAMPLES = 300


def stratified(files: LabelledFiles, limit: int, seed: int = 0) -> LabelledFiles:
    """At most ``limit`` files, balanced over classes (round-robin over shuffled per-class lists)."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(files.targets):
        by_class.setdefault(t, []).append(i)
    queues = [list(rng.permutation(ix)) for _, ix in sorted(by_class.items())]
    chosen: list[int] = []
    while len(chosen) < limit and any(queues):
        for q in queues:
            if q and len(chosen) < limit:
                chosen.append(int(q.pop()))
    chosen.sort()
    targets = [files.targets[i] for i in chosen]
    return LabelledFiles(labels=files.labels, files=[files.files[i] for i in chosen], targets=targets,
                         per_class={lbl: targets.count(k) for k, lbl in enumerate(files.labels)})


def calibration_set(src: Source, calib_data: str | os.PathLike[str] | None, samples: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Representative images for int8: ``calib_data`` if given, else the run's TRAIN split (never test data).

    Raises:
        DataError: folder missing/empty, a different number of classes than the model, or no train split.
    """
    if samples < 1:
        raise ConfigError(f"--calib-samples must be ≥ 1; received {samples}.")
    card = src.card
    if calib_data is not None:
        folder = Path(calib_data)
        if not folder.is_dir():
            raise DataError(f"Calibration folder not found: {folder}")
        found = scan_labelled_folder(folder)
        if not found.files:
            raise DataError(f"Calibration folder {folder} holds no images; expected class sub-folders with training images.")
        if len(found.labels) != card.num_classes:
            raise DataError(f"Calibration folder {folder} has {len(found.labels)} classes {found.labels}; the model has "
                            f"{card.num_classes} {card.labels}. Point --calib-data at the training data.")
        files = scan_labelled_folder(folder, card.labels) if set(found.labels) <= set(card.labels) else found
        origin = str(folder)
    else:
        files = load_split(src.run_dir, "train")
        if files is None:
            raise DataError(f"{src.model_path.name} has no training split (splits.json) to calibrate int8 on; "
                            "give --calib-data DIR (training images in class folders).")
        origin = f"{src.run_dir}/splits.json:train"
    picked = stratified(files, samples)
    x, _ = load_images(picked, card)
    return x, {"source": origin, "samples": int(len(x)), "per_class": picked.per_class}


def heldout_set(src: Source, check_data: str | os.PathLike[str] | None) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Held-out images for parity and golden.npz: ``check_data`` if given, else the run's test (else val) split."""
    if check_data is not None:
        if src.card_synthesized:  # numeric labels: class folders map to indices in sorted order, as training did
            folder = Path(check_data)
            if not folder.is_dir():
                raise DataError(f"--check-data {folder} is not a folder of class sub-folders.")
            files = scan_labelled_folder(folder)
            if len(files.labels) != src.card.num_classes:
                raise DataError(f"--check-data {folder} has {len(files.labels)} classes; the model has {src.card.num_classes}.")
            x, y = load_images(files, src.card)
        else:
            x, y = load_folder(check_data, src.card)
        return x, y, str(check_data)
    files = heldout_split(src.run_dir)
    if files is None:
        return None
    x, y = load_images(files, src.card)
    return x, y, f"{src.run_dir}/splits.json:{'test' if load_split(src.run_dir, 'test') else 'val'}"


def heldout_files(src: Source, check_data: str | os.PathLike[str] | None) -> LabelledFiles | None:
    """The files behind :func:`heldout_set` (the consumers' check decodes them at their own size)."""
    if check_data is not None:
        folder = Path(check_data)
        return scan_labelled_folder(folder) if src.card_synthesized else scan_labelled_folder(folder, src.card.labels)
    return heldout_split(src.run_dir)
