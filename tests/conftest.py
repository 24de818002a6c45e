"""Shared fixtures: real image folders written in tmp dirs and a tiny real Keras run folder.

Everything here is real (PIL-written files, a Keras model trained for a few epochs); nothing is mocked.
Heavy fixtures are session-scoped so the suite stays within a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1" if os.environ.get("CI") else os.environ.get("CUDA_VISIBLE_DEVICES", ""))

from tinymodels import TINY_SIZE, build_tiny_model  # noqa: E402  (tests/ is on sys.path)

from edgecnn.imaging import load_image, scan_labelled_folder  # noqa: E402
from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing, write_labels_txt  # noqa: E402
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


def make_tiny_run(data_dir: Path, run_dir: Path, epochs: int = 8, seed: int = 0) -> Path:
    """Train a tiny real Keras model on ``data_dir`` and write a run folder like ``edgecnn train`` does:
    model.keras, modelcard.json, labels.txt, splits.json (train/val/test)."""
    import keras

    keras.utils.set_random_seed(seed)
    ds = scan_labelled_folder(data_dir)
    x = np.stack([load_image(f, TINY_SIZE, TINY_SIZE, "rgb", "area") for f in ds.files]).astype(np.float32)
    y = np.asarray(ds.targets)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_test = n_val = len(y) // 5
    test, val, train = idx[:n_test], idx[n_test : n_test + n_val], idx[n_test + n_val :]
    model = build_tiny_model(len(ds.labels))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=epochs, batch_size=16, verbose=0)
    acc = float(model.evaluate(x[test], y[test], verbose=0)[1])
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.keras")
    card = ModelCard(
        labels=ds.labels,
        input=InputSpec(height=TINY_SIZE, width=TINY_SIZE, channels=3),
        output=OutputSpec(activation="softmax", units=len(ds.labels)),
        preprocessing=Preprocessing(color="rgb", resize="area"),
        name="tiny",
        architecture="tiny-test",
        metrics={"test_accuracy": acc},
        dataset={"root": str(data_dir), "num_images": len(y)},
    )
    card.save(run_dir / "modelcard.json")
    write_labels_txt(run_dir / "labels.txt", ds.labels)

    def entries(ix):
        return [[str(ds.files[i].relative_to(data_dir)), int(y[i])] for i in ix]

    (run_dir / "splits.json").write_text(
        json.dumps(
            {"root": str(data_dir), "labels": ds.labels, "train": entries(train), "val": entries(val),
             "test": entries(test), "test_root": None},
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return run_dir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shapes_dir) -> Path:
    """A run folder holding a tiny trained Keras model (24×24×3, 3 classes), independent of the trainer."""
    return make_tiny_run(shapes_dir, tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture(scope="session")
def exported_artifacts(tiny_run, tmp_path_factory) -> dict[str, Path]:
    """``tiny_run`` exported by ``edgecnn.export.export`` to a tmp folder, parity gates checked (raises if any fails).

    Keys: ``tflite-float32``, ``tflite-float16``, ``tflite-dynamic``, ``tflite-int8`` (int8 I/O),
    ``onnx-float32``, ``onnx-int8`` (QDQ), plus ``golden`` (golden.npz) and ``dir`` (the export folder,
    which also holds export_report.json/.md).
    """
    from edgecnn.export import export

    out = tmp_path_factory.mktemp("export") / "export"
    report = export(tiny_run, formats=["tflite", "onnx"], quantize=["all"], out=out)
    report.raise_for_gates()
    return {**report.artifacts(), "golden": report.golden, "dir": out}
