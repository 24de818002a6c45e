"""Export matrix: train a small model, export every (format, precision) in the converters registry, print the table.

For each artifact: file size and ratio to float32, parity with the Keras model (max/mean |Δp|, top-1 agreement),
accuracy of the artifact and of Keras on the held-out split, conversion time. Checks the issue's targets on the
built-in digits: int8 TFLite ≤ 0.30× the float32 file size and accuracy drop ≤ 0.5 points.

Usage:
    .venv/bin/python benchmarks/export_matrix.py [--dataset digits] [--epochs 30] [--out DIR] [--json FILE]

Trains with ``edgecnn.training.train`` (preset ``digits``) when the trainer is available; otherwise a small Keras
CNN is trained here on the same digits (scikit-learn's bundled copy) and written as a run folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

INT8_SIZE_TARGET = 0.30
INT8_DROP_TARGET = 0.005


def train_run(dataset: str, epochs: int, workdir: Path) -> Path:
    """A run folder trained on ``dataset`` (the edgecnn trainer if present, else a fallback Keras CNN)."""
    try:
        from edgecnn.training import build_config, train
    except ImportError:
        return _fallback_run(epochs, workdir)
    overrides = {"project": str(workdir / "runs"), "name": "matrix", "epochs": epochs, "quiet": True, "plots": False}
    preset = dataset if dataset == "digits" else None
    if preset is None:
        overrides["data"] = dataset
    cfg = build_config(preset=preset, overrides=overrides)
    result = train(cfg)
    return result.run_dir


def _fallback_run(epochs: int, workdir: Path) -> Path:  # pragma: no cover - used only without edgecnn.training
    import keras
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from edgecnn.imaging import load_image, scan_labelled_folder
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing, write_labels_txt

    data = workdir / "digits"
    bunch = load_digits()
    for i, (img, t) in enumerate(zip(bunch.images, bunch.target)):
        (data / str(t)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255 / 16).astype("uint8"), "L").save(data / str(t) / f"d_{i:05d}.png")
    ds = scan_labelled_folder(data)
    x = np.stack([load_image(f, 16, 16, "grayscale", "bilinear") for f in ds.files]).astype("float32")
    y = np.asarray(ds.targets)
    idx = np.random.default_rng(0).permutation(len(y))
    n = len(y) // 5
    test, val, tr = idx[:n], idx[n : 2 * n], idx[2 * n :]
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 1))
    h = keras.layers.Rescaling(1 / 255)(inp)
    for f in (32, 64):
        h = keras.layers.MaxPooling2D()(keras.layers.Conv2D(f, 3, padding="same", activation="relu")(h))
    h = keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(h))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[tr], y[tr], validation_data=(x[val], y[val]), epochs=epochs, batch_size=32, verbose=0)
    run = workdir / "run"
    run.mkdir()
    model.save(run / "model.keras")
    ModelCard(labels=ds.labels, input=InputSpec(16, 16, 1), output=OutputSpec(units=10),
              preprocessing=Preprocessing(color="grayscale", resize="bilinear"), name="digits").save(run / "modelcard.json")
    write_labels_txt(run / "labels.txt", ds.labels)

    def entries(ix):
        return [[str(ds.files[i].relative_to(data)), int(y[i])] for i in ix]

    (run / "splits.json").write_text(json.dumps({"root": str(data), "labels": ds.labels, "train": entries(tr),
                                                 "val": entries(val), "test": entries(test), "test_root": None}))
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="digits (built-in) or a class-folder path")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="keep the run and artifacts here (default: temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)

    from edgecnn.console import set_quiet
    from edgecnn.export import export
    from edgecnn.parity import markdown_table

    workdir = args.out or Path(tempfile.mkdtemp(prefix="edgecnn-export-matrix-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run = train_run(args.dataset, args.epochs, workdir)
    train_s = time.perf_counter() - t0
    set_quiet(True)
    t0 = time.perf_counter()
    report = export(run, formats=["all"], quantize=["all"], out=workdir / "export", force=True)
    export_s = time.perf_counter() - t0
    rows = {f"{r.format}-{r.precision}": r for r in report.results}

    print(f"# export matrix — {args.dataset}, {report.check_data['samples']} held-out images, "
          f"calibration {report.calibration['samples']} train images")
    print(f"training {train_s:.1f}s, export + parity of {len(rows)} artifacts {export_s:.1f}s\n")
    print(markdown_table(report.results))
    int8, fp32 = rows["tflite-int8"], rows["tflite-float32"]
    size_ratio = int8.size_bytes / fp32.size_bytes
    drop = (int8.accuracy_reference or 0) - (int8.accuracy or 0)
    ok_size, ok_drop = size_ratio <= INT8_SIZE_TARGET, drop <= INT8_DROP_TARGET
    print(f"int8 TFLite size ratio: {size_ratio:.3f} (target ≤ {INT8_SIZE_TARGET:.2f}) {'OK' if ok_size else 'MISSED'}")
    print(f"int8 TFLite accuracy drop: {100 * drop:+.2f} pts (Keras {100 * int8.accuracy_reference:.2f}% → "
          f"{100 * int8.accuracy:.2f}%; target ≤ {100 * INT8_DROP_TARGET:.1f}) {'OK' if ok_drop else 'MISSED'}")
    print(f"all parity gates: {'PASS' if report.passed else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({"dataset": args.dataset, "train_seconds": train_s, "export_seconds": export_s,
                                         "int8_size_ratio": size_ratio, "int8_accuracy_drop": drop,
                                         "artifacts": [r.to_dict() for r in report.results]}, indent=2, default=str))
    return 0 if (ok_size and ok_drop and report.passed) else 1


if __name__ == "__main__":
    sys.exit(main())
