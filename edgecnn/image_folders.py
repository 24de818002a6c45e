"""Folders of images: which files are images, and a class-folder dataset's labels and files.

Stdlib only (no numpy, Pillow or OpenCV): listing a folder decodes nothing. :mod:`edgecnn.imaging` re-exports
these names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def is_hidden(path: Path, root: Path | None = None) -> bool:
    """True if any path component (below ``root``) starts with a dot."""
    parts = path.relative_to(root).parts if root is not None else (path.name,)
    return any(p.startswith(".") for p in parts)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted by relative path; hidden files/folders and non-image files ignored."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"Expected a folder of images; {root} does not exist or is not a folder.")
    found: list[tuple[str, str]] = []  # (relative path, full path): plain strings, fast on big folders
    prefix = len(str(root).rstrip(os.sep)) + 1
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                full = os.path.join(dirpath, name)
                if os.path.isfile(full):
                    found.append((full[prefix:], full))
    found.sort()
    return [Path(full) for _, full in found]


def list_class_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """Class sub-folders of a dataset root, sorted by name (labels = folder names, kept exactly)."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"Data folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"Expected a folder with one sub-folder per class; {root} is a file.")
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


@dataclass
class LabelledFiles:
    """Files of a class-folder dataset: ``files[i]`` has label index ``targets[i]``."""

    labels: list[str]
    files: list[Path]
    targets: list[int]
    per_class: dict[str, int] = field(default_factory=dict)


def scan_labelled_folder(folder: str | os.PathLike[str], labels: list[str] | None = None) -> LabelledFiles:
    """List a class-folder dataset.

    Args:
        folder: Root with one sub-folder per class.
        labels: Expected labels (e.g. a model's); every sub-folder must be one of them.

    Raises:
        DataError: missing folder, no class sub-folders, or a sub-folder that is not a known label.
    """
    root = Path(folder)
    classes = list_class_folders(root)
    if not classes:
        raise DataError(f"Expected one sub-folder per class in {root}; found none.")
    names = [c.name for c in classes]
    if labels is None:
        labels = names
    else:
        unknown = [n for n in names if n not in labels]
        if unknown:
            raise DataError(
                f"Folder {root} has classes {unknown} that the model does not know; expected a subset of {labels}."
            )
    files: list[Path] = []
    targets: list[int] = []
    per_class: dict[str, int] = {}
    for cls in classes:
        imgs = list_images(cls)
        per_class[cls.name] = len(imgs)
        files += imgs
        targets += [labels.index(cls.name)] * len(imgs)
    return LabelledFiles(labels=list(labels), files=files, targets=targets, per_class=per_class)
