"""Tiny real Keras models shared by the fixtures (one module name, unlike the several conftest.py files)."""

from __future__ import annotations

import json
from pathlib import Path

TINY_SIZE = 24


def build_tiny_model(num_classes: int, channels: int = 3, size: int = TINY_SIZE, seed: int | None = None,
                     name: str = "tiny", head: str = "gap"):
    """A 2-conv CNN taking 0..255 pixels (rescaling in the graph), as edgecnn models do. ``head="flatten"``
    flattens the features instead of pooling them (as the ``simple`` and ``lenet`` architectures do)."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D()(x)) if head == "flatten" else \
        keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def make_tiny_run(data_dir: Path, run_dir: Path, epochs: int = 8, seed: int = 0, channels: int = 3,
                  interpolation: str = "area", head: str = "gap", resize_augment: bool = False) -> Path:
    """Train a tiny real Keras model on ``data_dir`` and write a run folder like ``edgecnn train`` does:
    model.keras, modelcard.json, labels.txt, splits.json (train/val/test). ``channels=1``: a grayscale model;
    ``interpolation``: the resampling of training (and so of every runtime); ``resize_augment``: as
    ``edgecnn train`` does by default, the training images are also given resized by the other methods
    (``edgecnn.imaging.TRAIN_RESIZES``), so the model answers the same under any consumer's resize. Off here by
    default: the shared fixtures keep the model the int8 tests were tuned on (blank calibration breaks it)."""
    import keras
    import numpy as np

    from edgecnn.imaging import TRAIN_RESIZES, decode_image, preprocess_as, scan_labelled_folder
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing, write_labels_txt

    color = "rgb" if channels == 3 else "grayscale"

    keras.utils.set_random_seed(seed)
    ds = scan_labelled_folder(data_dir)
    methods = [interpolation] + ([m for m in TRAIN_RESIZES if m != interpolation] if resize_augment else [])
    rgbs = [decode_image(f) for f in ds.files]
    xs = [np.stack([preprocess_as(rgb, TINY_SIZE, TINY_SIZE, color, m) for rgb in rgbs]).astype(np.float32)
          for m in methods]
    x = xs[0]
    y = np.asarray(ds.targets)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_test = n_val = len(y) // 5
    test, val, train = idx[:n_test], idx[n_test : n_test + n_val], idx[n_test + n_val :]
    model = build_tiny_model(len(ds.labels), channels, head=head)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.concatenate([v[train] for v in xs]), np.concatenate([y[train]] * len(xs)),
              validation_data=(x[val], y[val]), epochs=epochs, batch_size=16, verbose=0)
    acc = float(model.evaluate(x[test], y[test], verbose=0)[1])
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.keras")
    card = ModelCard(
        labels=ds.labels,
        input=InputSpec(height=TINY_SIZE, width=TINY_SIZE, channels=channels),
        output=OutputSpec(activation="softmax", units=len(ds.labels)),
        preprocessing=Preprocessing(color=color, resize=interpolation),
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


def structured_pixels(count: int, size: int, seed: int = 1):
    """``count`` random-but-structured uint8 RGB images (smooth gradients, a colour cast, noise) at ``size`` px."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size, dtype=np.float32)
    imgs = []
    for i in range(count):
        g = np.stack(np.meshgrid(base, base[::-1]), -1).mean(-1) if i % 2 else np.outer(base, np.ones(size))
        img = np.clip(g[..., None] * rng.uniform(0.3, 1.0, 3) + rng.normal(0, 20, (size, size, 3)), 0, 255)
        imgs.append(img)
    return np.stack(imgs).astype(np.uint8)
