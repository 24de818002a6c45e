"""Pretrained backbones against ``simple`` at 96 px on a small folder: accuracy after N epochs, train time, int8
latency and size.

Each backbone starts from ``--weights FILE``: the ImageNet file from Keras' cache when it is there (then the
figures are real transfer learning), else a weights file written here with the backbone's random initialisation
(then the accuracy column says nothing about pretraining: the figures measure only speed and size). The script
says which, per backbone. ``simple`` trains from scratch as the baseline. Training goes through ``edgecnn.train``
(the real trainer, two phases: frozen backbone, then ``--finetune-epochs`` with the top blocks unfrozen); int8 is
converted with the converters ``edgecnn export`` uses (full int8, uint8 I/O) and timed through edgecnn's LiteRT
backend, interleaved with ``simple``'s in the same run (ratios against ``simple``, with the raw p50 and the load
average: the machine is shared, figures are noisy).

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/backbones.py [--epochs 3] [--finetune-epochs 2] [--per-class 40]
        [--size 96] [--rounds 5] [--iters 20] [--archs mobilenet-v3-small,...] [--out benchmarks/results/backbones.json]
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

import numpy as np  # noqa: E402


def weights_for(arch: str, size: int, work: Path) -> tuple[str, bool]:
    """The ImageNet file from Keras' cache, else a random-initialisation file written here (legacy HDF5, as Keras'
    cache stores them). Returns (path, is_imagenet)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from edgecnn.training.architectures import ARCHITECTURES, build_backbone
    from edgecnn.training.weights import keras_cache_dir

    spec = ARCHITECTURES[arch].backbone
    cached = keras_cache_dir() / spec.weights_file(size)
    if cached.is_file():
        return str(cached), True
    path = work / f"{arch}-random.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, build_backbone(spec, (size, size, 3)))
    return str(path), False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default="mobilenet-v3-small,mobilenet-v3-large,mobilenet-v2,efficientnet-b0")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--finetune-epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/backbones.json")
    args = ap.parse_args()

    import converters
    import edgecnn
    from edgecnn.imaging import load_image, scan_labelled_folder
    from edgecnn.runtime.backends import load_backend
    from edgecnn.synthetic import write_dataset

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-backbones-") as tmp:
        work = Path(tmp)
        data = write_dataset(work / "data", classes=4, per_class=args.per_class, size=args.size, seed=0,
                             vary_size=True)
        files = scan_labelled_folder(data)
        calib = np.stack([load_image(f, args.size, args.size) for f in files.files[::4]]).astype(np.float32)
        sample = calib[:1]
        artifacts: dict[str, Path] = {}
        for arch in ["simple", *args.archs.split(",")]:
            opts: dict = {}
            imagenet = None
            if arch != "simple":
                path, imagenet = weights_for(arch, args.size, work)
                opts = {"weights": path, "finetune_epochs": args.finetune_epochs}
            t0 = time.perf_counter()
            result = edgecnn.train(data=str(data), img_size=str(args.size), arch=arch, epochs=args.epochs, batch=16,
                                   project=str(work / "runs"), name=arch, plots=False, quiet=True, **opts)
            train_s = time.perf_counter() - t0
            import keras

            model = keras.saving.load_model(result.run_dir / "model.keras")
            out = work / f"{arch}-int8.tflite"
            converters.convert(model, "tflite", "int8", out, calibration=calib, labels=result.card.labels,
                               metadata=result.card.to_dict())
            artifacts[arch] = out
            rows[arch] = {"test_accuracy": result.metrics.get("test_accuracy"), "train_s": round(train_s, 1),
                          "epochs": args.epochs + (args.finetune_epochs if arch != "simple" else 0),
                          "params": int(model.count_params()), "int8_bytes": out.stat().st_size,
                          "weights": "scratch" if arch == "simple" else ("imagenet (Keras cache)" if imagenet
                                                                         else "random (no ImageNet file in the cache)")}
            print(f"{arch}: trained in {train_s:.0f}s, test acc {rows[arch]['test_accuracy']}, "
                  f"int8 {out.stat().st_size / 1e6:.2f} MB, weights {rows[arch]['weights']}", flush=True)
        backends = {k: load_backend(p, threads=1) for k, p in artifacts.items()}
        for b in backends.values():
            for _ in range(3):
                b.predict(sample)
        times: dict[str, list[float]] = {k: [] for k in backends}
        for r in range(args.rounds):
            order = list(backends) if r % 2 == 0 else list(reversed(backends))
            for k in order:
                t = []
                for _ in range(args.iters):
                    t0 = time.perf_counter()
                    backends[k].predict(sample)
                    t.append(time.perf_counter() - t0)
                times[k].append(float(np.median(t)))
        base = np.asarray(times["simple"])
        for k in backends:
            rows[k]["int8_p50_ms"] = round(float(np.median(times[k])) * 1e3, 3)
            rows[k]["int8_p50_vs_simple"] = round(float(np.median(np.asarray(times[k]) / base)), 2)
    result_doc = {"size": args.size, "per_class": args.per_class, "classes": 4, "threads": 1,
                  "loadavg": os.getloadavg(), "rows": rows,
                  "note": ("accuracy is meaningful only for rows whose weights are imagenet; with random weights "
                           "the figures measure only speed and size")}
    print(f"\n{'arch':20} {'weights':40} {'epochs':>6} {'acc':>6} {'train s':>8} {'int8 MB':>8} {'p50 ms':>8} {'x simple':>8}")
    for k, r in rows.items():
        acc = f"{r['test_accuracy']:.3f}" if r["test_accuracy"] is not None else "-"
        print(f"{k:20} {r['weights']:40} {r['epochs']:>6} {acc:>6} {r['train_s']:>8} {r['int8_bytes'] / 1e6:>8.2f} "
              f"{r['int8_p50_ms']:>8} {r['int8_p50_vs_simple']:>8}")
    print(f"load average {os.getloadavg()}; {result_doc['note']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result_doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
