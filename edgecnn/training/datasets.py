"""Training data: scan a class-folder tree, decode every image once (threads), split (framework-free).

Decoding and resizing go through :mod:`edgecnn.imaging` (``decode_image``, ``preprocess_as``) — the one preprocessing definition
shared with every runtime — so the pixels the model is trained on are the pixels ``edgecnn run`` feeds it.
Images are decoded once into a uint8 array (the cache); each epoch only shuffles, batches, augments
(training split only) and prefetches (:mod:`edgecnn.training.loader`, on any Keras backend).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import warn
from edgecnn.errors import DataError
from edgecnn.fileio import write_json
from edgecnn.imaging import UnreadableImageError, decode_image, preprocess_as, scan_labelled_folder
from edgecnn.runs import SPLITS_FILENAME


@dataclass
class ImageSet:
    """Decoded images of one split: ``x[i]`` (uint8 HxWxC) has label index ``y[i]`` and came from ``files[i]``."""

    x: np.ndarray
    y: np.ndarray
    files: list[Path]
    root: Path
    #: The same images resized with each other method of ``--resize-augment`` (K x N x H x W x C), or None.
    variants: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> ImageSet:
        variants = self.variants[:, idx] if self.variants is not None else None
        return ImageSet(self.x[idx], self.y[idx], [self.files[i] for i in idx], self.root, variants)

    def entries(self) -> list[list[Any]]:
        """``[[relative path, label index], ...]`` as stored in ``splits.json``."""
        return [[_rel(f, self.root), int(t)] for f, t in zip(self.files, self.y)]


@dataclass
class TrainingData:
    """The three splits, labels and what was skipped."""

    labels: list[str]
    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    root: Path
    test_root: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Dataset section of the model card / metrics."""

        def counts(s: ImageSet | None) -> dict[str, int]:
            if s is None:
                return {}
            return {lbl: int((s.y == i).sum()) for i, lbl in enumerate(self.labels)}

        return {
            "root": str(self.root),
            "test_root": str(self.test_root) if self.test_root else None,
            "num_classes": len(self.labels),
            "num_images": len(self.train) + len(self.val) + (len(self.test) if self.test is not None else 0),
            "splits": {
                "train": len(self.train),
                "val": len(self.val),
                "test": len(self.test) if self.test is not None else 0,
            },
            "per_class": {"train": counts(self.train), "val": counts(self.val), "test": counts(self.test)},
            "skipped_files": len(self.skipped),
        }


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def decode_files(
    files: list[Path], height: int, width: int, color: str, interpolation: str, workers: int = 0,
    variants: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, str]]]:
    """Decode and preprocess ``files`` in a thread pool.

    Args:
        variants: Other resize methods (:func:`edgecnn.imaging.preprocess_as`): each file, decoded once, is also
            resized with each; they come back stacked after the main images (``--resize-augment``).

    Returns:
        (images uint8 NxHxWxC of the readable files — (1+K)xNxHxWxC with K ``variants`` —, boolean mask of
        readable files, [(file, reason)] of the others).
    """
    channels = 1 if color == "grayscale" else 3
    methods = (interpolation, *variants)
    out = np.zeros((len(methods), len(files), height, width, channels), dtype=np.uint8)
    ok = np.zeros(len(files), dtype=bool)
    failed: list[tuple[Path, str]] = []

    def one(i: int) -> tuple[int, str | None]:
        try:
            rgb = decode_image(files[i])
            for k, method in enumerate(methods):
                out[k, i] = preprocess_as(rgb, height, width, color, method)
            return i, None
        except UnreadableImageError as exc:
            return i, str(exc)

    n_workers = workers or min(32, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
        for i, reason in pool.map(one, range(len(files))):
            if reason is None:
                ok[i] = True
            else:
                failed.append((files[i], reason))
    return (out[:, ok] if variants else out[0, ok]), ok, failed


def _load_folder(
    root: Path, labels: list[str] | None, size: tuple[int, int], color: str, interpolation: str, workers: int,
    strict: bool, what: str, variants: tuple[str, ...] = (),
) -> tuple[list[str], ImageSet, list[str]]:
    scan = scan_labelled_folder(root, labels)
    if labels is None and len(scan.labels) < 2:
        raise DataError(
            f"Expected at least 2 class sub-folders in {root}; found {len(scan.labels)} ({scan.labels}). "
            "Add a folder per class."
        )
    if not scan.files:
        raise DataError(f"Expected images in the class sub-folders of {root}; found none.")
    x, ok, failed = decode_files(scan.files, size[0], size[1], color, interpolation, workers, variants)
    x, alt = (x[0], x[1:]) if variants else (x, None)
    skipped = [_rel(f, root) for f, _ in failed]
    if failed and strict:
        raise DataError(
            f"{len(failed)} unreadable image(s) in {what} {root} with --strict: {', '.join(skipped[:5])}"
            f"{' ...' if len(skipped) > 5 else ''} ({failed[0][1]})."
        )
    files = [f for f, good in zip(scan.files, ok) if good]
    y = np.asarray([t for t, good in zip(scan.targets, ok) if good], dtype=np.int32)
    if labels is None:
        empty = [lbl for i, lbl in enumerate(scan.labels) if not (y == i).any()]
        if empty:
            raise DataError(
                f"Class folder(s) {empty} in {root} contain no readable image; add images or remove the folder."
            )
    return scan.labels, ImageSet(x, y, files, root, alt), skipped


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled, stratified split: (keep indices, held-out indices), ``round(n_c * fraction)`` per class.

    Every class keeps at least one sample on the keep side; classes with enough samples give at least
    one to the held-out side.
    """
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    held: list[int] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_held = int(round(len(idx) * fraction))
        if fraction > 0 and n_held == 0 and len(idx) >= 3:
            n_held = 1
        n_held = min(n_held, len(idx) - 1)
        held += idx[:n_held].tolist()
        keep += idx[n_held:].tolist()
    return rng.permutation(np.asarray(keep, dtype=np.int64)), rng.permutation(np.asarray(held, dtype=np.int64))


def load_training_data(
    root: str | os.PathLike[str],
    size: tuple[int, int],
    color: str,
    interpolation: str = "area",
    val_split: float = 0.2,
    test_split: float = 0.1,
    test_root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    strict: bool = False,
    workers: int = 0,
    variants: tuple[str, ...] = (),
) -> TrainingData:
    """Scan, decode once and split a class-folder dataset.

    ``variants``: other resize methods each image is also resized with (``--resize-augment``; see
    :func:`decode_files`); the test folder of ``test_root`` gets none (it is only evaluated).

    Raises:
        DataError: missing folder, no class sub-folders, a single class, a class without readable images,
            or (with ``strict``) any unreadable image.
    """
    root = Path(root).resolve()
    labels, full, skipped = _load_folder(root, None, size, color, interpolation, workers, strict, "data folder",
                                         variants)
    test: ImageSet | None = None
    troot: Path | None = None
    if test_root is not None:
        troot = Path(test_root).resolve()
        _, test, tskipped = _load_folder(troot, labels, size, color, interpolation, workers, strict, "test folder")
        skipped += [f"{troot.name}/{s}" for s in tskipped]
        rest = full
    elif test_split > 0:
        keep, held = stratified_split(full.y, test_split, seed)
        rest, test = full.subset(keep), full.subset(held)
        if len(test) == 0:
            test = None
    else:
        rest = full
    keep, held = stratified_split(rest.y, val_split / (1.0 - (test_split if test_root is None else 0.0)), seed + 1)
    train, val = rest.subset(keep), rest.subset(held)
    if len(val) == 0:
        raise DataError(
            f"Too few images in {root} for a validation split ({len(rest)} usable); add images or raise --val-split."
        )
    return _finish(TrainingData(labels, train, val, test, root, troot, skipped))


def load_from_splits(
    splits_path: Path, size: tuple[int, int], color: str, interpolation: str, workers: int = 0,
    variants: tuple[str, ...] = (),
) -> TrainingData:
    """Re-load the exact splits a run was started with (``--resume``)."""
    data = json.loads(splits_path.read_text(encoding="utf-8"))
    root = Path(data["root"])
    troot = Path(data["test_root"]) if data.get("test_root") else None
    sets: dict[str, ImageSet | None] = {}
    for split in ("train", "val", "test"):
        entries = data.get(split) or []
        base = troot if (split == "test" and troot) else root
        if not entries:
            sets[split] = None
            continue
        files = [base / rel for rel, _ in entries]
        alts = variants if split == "train" else ()
        x, ok, failed = decode_files(files, size[0], size[1], color, interpolation, workers, alts)
        if failed:
            raise DataError(f"{len(failed)} files of the run's {split} split are gone or unreadable: {failed[0][0]}.")
        x, alt = (x[0], x[1:]) if alts else (x, None)
        sets[split] = ImageSet(x, np.asarray([t for _, t in entries], dtype=np.int32), files, base, alt)
    if sets["train"] is None or sets["val"] is None:
        raise DataError(f"{splits_path} has no train/val split; start a new run instead of --resume.")
    return TrainingData(
        list(data["labels"]), sets["train"], sets["val"], sets["test"], root, troot, list(data.get("skipped", []))
    )


def _finish(data: TrainingData) -> TrainingData:
    if data.skipped:
        shown = ", ".join(data.skipped[:8]) + (f" and {len(data.skipped) - 8} more" if len(data.skipped) > 8 else "")
        warn(f"Skipped {len(data.skipped)} unreadable image(s) (counted in metrics.json as skipped_files): {shown}")
    return data


def write_splits(path: Path, data: TrainingData) -> Path:
    """Write ``splits.json`` in the format documented in :mod:`edgecnn.runs`."""
    return write_json(
        path / SPLITS_FILENAME if path.is_dir() else path,
        {
            "root": str(data.root),
            "labels": data.labels,
            "train": data.train.entries(),
            "val": data.val.entries(),
            "test": data.test.entries() if data.test is not None else [],
            "test_root": str(data.test_root) if data.test_root else None,
            "skipped": data.skipped,
        },
    )
