"""Shared fixtures: real image folders written in tmp dirs and a tiny real Keras run folder.

Everything here is real (PIL-written files, a Keras model trained for a few epochs); nothing is mocked.
Heavy fixtures are session-scoped so the suite stays within a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1" if os.environ.get("CI") else os.environ.get("CUDA_VISIBLE_DEVICES", ""))

from tinymodels import make_tiny_run  # noqa: E402  (tests/ is on sys.path)

from edgecnn.synthetic import write_dataset  # noqa: E402

TINY_CLASSES = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    """A learnable 3-class folder (32 px PNG, RGB), 30 images per class."""
    return write_dataset(tmp_path_factory.mktemp("shapes") / "data", classes=TINY_CLASSES, per_class=30, size=32)


@pytest.fixture(scope="session")
def mixed_dir(tmp_path_factory) -> Path:
    """Mixed formats (png/jpg/bmp/gif/webp), modes (RGB/L/RGBA) and sizes, plus a corrupt file,
    a zero-byte file, a non-image file and a hidden file."""
    root = write_dataset(
        tmp_path_factory.mktemp("mixed") / "data",
        classes=["ok", "ng"],
        per_class=12,
        size=20,
        formats=("png", "jpg", "bmp", "gif", "webp"),
        modes=("RGB", "L", "RGBA"),
        vary_size=True,
    )
    (root / "ok" / "empty.png").write_bytes(b"")
    good = sorted((root / "ng").glob("*.png"))[0].read_bytes()
    (root / "ng" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "ok" / "notes.txt").write_text("not an image")
    (root / "ok" / ".hidden.png").write_bytes(good)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shapes_dir) -> Path:
    """A run folder holding a tiny trained Keras model (24×24×3, 3 classes), independent of the trainer."""
    return make_tiny_run(shapes_dir, tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture(scope="session")
def exported_artifacts(tiny_run, tmp_path_factory) -> dict[str, Path]:
    """``tiny_run`` exported by ``edgecnn.export.export`` to a tmp folder, parity gates checked (raises if any fails).

    Keys: ``tflite-float32``, ``tflite-float16``, ``tflite-dynamic``, ``tflite-int8`` (uint8 I/O, the default),
    ``onnx-float32``, ``onnx-int8`` (QDQ), plus ``golden`` (golden.npz) and ``dir`` (the export folder,
    which also holds export_report.json/.md).
    """
    from edgecnn.export import export

    out = tmp_path_factory.mktemp("export") / "export"
    report = export(tiny_run, formats=["tflite", "onnx"], quantize=["all"], out=out)
    report.raise_for_gates()
    return {**report.artifacts(), "golden": report.golden, "dir": out}
