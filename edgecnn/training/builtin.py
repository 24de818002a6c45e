"""Built-in datasets that ship with our dependencies (nothing is downloaded).

``digits`` is scikit-learn's bundled copy of the UCI handwritten digits (1,797 8×8 grayscale images,
classes ``0``–``9``). It is materialised once as a class-folder tree of PNG files so that it goes through
exactly the same path as ``--data`` (and ``splits.json`` points at real files that export and run can read).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecnn.errors import require
from edgecnn.fileio import umask_mode

DATA_DIR_ENV = "EDGECNN_DATA_DIR"
_COMPLETE = ".complete"  # hidden marker: ignored by list_images, written last


def data_home() -> Path:
    """Root of materialised built-in datasets: ``$EDGECNN_DATA_DIR``, else ``datasets/`` in edgecnn's cache folder
    (:func:`edgecnn.fileio.cache_dir`: ``$EDGECNN_CACHE_DIR``, ``$XDG_CACHE_HOME/edgecnn`` or ``~/.cache/edgecnn``)."""
    from edgecnn.fileio import cache_dir

    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else cache_dir() / "datasets"


def _digits_arrays() -> tuple[list[np.ndarray], list[str]]:
    datasets = require("sklearn.datasets", "train", "for --dataset digits")
    bunch = datasets.load_digits()
    images = [np.clip(np.rint(img * (255.0 / 16.0)), 0, 255).astype(np.uint8) for img in bunch.images]
    return images, [str(int(t)) for t in bunch.target]


BUILTIN_DATASETS: dict[str, Callable[[], tuple[list[np.ndarray], list[str]]]] = {"digits": _digits_arrays}


def materialize_builtin(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Write built-in dataset ``name`` as ``<root>/<name>/<label>/<name>_<i>.png`` once; return that folder.

    Idempotent and safe against concurrent callers: the tree is written in a temporary sibling folder
    and renamed into place; an existing complete tree is reused as is.
    """
    from PIL import Image

    if name not in BUILTIN_DATASETS:
        from edgecnn.errors import DataError

        raise DataError(f"Unknown built-in dataset {name!r}; expected one of {sorted(BUILTIN_DATASETS)}.")
    home = Path(root) if root is not None else data_home()
    final = home / name
    if (final / _COMPLETE).exists():
        return final
    home.mkdir(parents=True, exist_ok=True)
    images, labels = BUILTIN_DATASETS[name]()
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=home))
    os.chmod(tmp, umask_mode(is_dir=True))  # mkdtemp makes 0700; the folder is published as it is
    try:
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = tmp / label
            folder.mkdir(exist_ok=True)
            Image.fromarray(img, "L").save(folder / f"{name}_{i:05d}.png")
        (tmp / _COMPLETE).write_text(f"{len(images)} images\n", encoding="utf-8")
        if final.exists():  # an incomplete leftover of a killed run
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / _COMPLETE).exists():  # not a concurrent writer that won the race
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return final
