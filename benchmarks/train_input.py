"""Training input pipeline throughput: edgecnn's ``tf.data`` pipeline vs Keras' classic
``ImageDataGenerator.flow_from_directory``, same folder, same augmentation, same process, interleaved rounds.

edgecnn decodes every image once (thread pool, :func:`edgecnn.imaging.load_image`) into a uint8 cache, then each
epoch shuffles, batches, applies ONE fused affine warp per batch (rotation/shift/shear/zoom/flip) and prefetches.
ImageDataGenerator re-reads, re-decodes and warps every image one at a time with scipy on every epoch.

Reported: images/s per epoch for both (median over rounds), the ratio, and edgecnn's one-time decode cost
(also amortised over one epoch, the least favourable case). Target: >= 3x.

Usage: python benchmarks/train_input.py [--images 2000] [--size 64] [--rounds 3] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AUG = dict(rotation=15.0, width_shift=0.1, height_shift=0.1, shear=10.0, zoom=0.1, hflip=True)


def edgecnn_epoch(ds) -> int:
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n


def idg_epoch(it) -> int:
    n = 0
    for _ in range(len(it)):
        x, _ = next(it)
        n += len(x)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000, help="images in the generated folder")
    ap.add_argument("--size", type=int, default=64, help="training input size (images are written 64-128 px)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()

    import tensorflow as tf

    from edgecnn.synthetic import write_dataset
    from edgecnn.training.augmentation import AugmentSpec, make_augmenter
    from edgecnn.training.datasets import load_training_data, make_dataset

    tf.random.set_seed(0)
    classes = 8
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp) / "data", classes=classes, per_class=args.images // classes, size=64,
                             formats=("png", "jpg"), vary_size=True)
        n_files = sum(1 for _ in root.rglob("*.*"))
        print(f"folder: {n_files} images (png/jpg, 64-128 px, {classes} classes) -> {args.size}x{args.size}x3, "
              f"batch {args.batch}, augmentation {AUG}, {os.cpu_count()} CPUs")

        # edgecnn: decode once (timed), then per-epoch pipeline
        t0 = time.perf_counter()
        data = load_training_data(root, (args.size, args.size), "rgb", val_split=0.01, test_split=0.0)
        decode_s = time.perf_counter() - t0
        x = data.train.x
        y = data.train.y
        ours = make_dataset(x, y, args.batch, training=True, augment=make_augmenter(AugmentSpec(**AUG)))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = tf.keras.preprocessing.image.ImageDataGenerator(rescale=None, rotation_range=AUG["rotation"], width_shift_range=AUG["width_shift"],
                                     height_shift_range=AUG["height_shift"], shear_range=AUG["shear"],
                                     zoom_range=AUG["zoom"], horizontal_flip=AUG["hflip"], fill_mode="nearest")
            theirs = gen.flow_from_directory(str(root), target_size=(args.size, args.size), color_mode="rgb",
                                             class_mode="sparse", batch_size=args.batch, shuffle=True, seed=0)

        # untimed warm-up of both (graph tracing, thread pools, file cache)
        edgecnn_epoch(ours)
        for _ in range(min(5, len(theirs))):
            next(theirs)
        theirs.reset()

        ours_ips: list[float] = []
        theirs_ips: list[float] = []
        for r in range(args.rounds):
            order = (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours"))
            for who in order:
                t = time.perf_counter()
                if who == "ours":
                    n = edgecnn_epoch(ours)
                    ours_ips.append(n / (time.perf_counter() - t))
                else:
                    theirs.reset()
                    n = idg_epoch(theirs)
                    theirs_ips.append(n / (time.perf_counter() - t))
            print(f"round {r + 1}: edgecnn {ours_ips[-1]:9.0f} img/s   ImageDataGenerator {theirs_ips[-1]:7.0f} img/s")

        o, t = statistics.median(ours_ips), statistics.median(theirs_ips)
        first_epoch = len(y) / (decode_s + len(y) / o)
        print()
        print(f"edgecnn tf.data pipeline      : {o:9.0f} img/s per epoch (median of {args.rounds})")
        print(f"ImageDataGenerator (Keras)    : {t:9.0f} img/s per epoch (median of {args.rounds})")
        print(f"ratio                         : {o / t:9.1f}x  (target >= 3x)")
        print(f"edgecnn one-time decode       : {decode_s:9.2f} s for {len(y) + len(data.val.y)} images "
              f"({(len(y) + len(data.val.y)) / decode_s:.0f} img/s, thread pool)")
        print(f"first epoch incl. decode      : {first_epoch:9.0f} img/s  ratio {first_epoch / t:.1f}x")


if __name__ == "__main__":
    main()
