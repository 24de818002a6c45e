"""Training input pipeline throughput: edgecnn's backend-neutral loader vs the ``tf.data`` pipeline it replaced and
Keras' classic ``ImageDataGenerator.flow_from_directory``: same folder, same augmentation, same process,
interleaved rounds.

edgecnn decodes every image once (thread pool, :func:`edgecnn.imaging.load_image`) into a uint8 cache; then each
epoch its ``keras.utils.PyDataset`` (:class:`edgecnn.training.loader.ArrayBatches`) shuffles, batches and applies
ONE fused affine warp per image (rotation/shift/shear/zoom/flip, OpenCV, worker threads). The ``tf.data`` baseline
is the pipeline of edgecnn 0.1 (same cache, ``ImageProjectiveTransformV3`` per batch, AUTOTUNE map + prefetch).
ImageDataGenerator re-reads, re-decodes and warps every image one at a time with scipy on every epoch.

Reported: images/s per epoch (median over rounds), the ratios, and the one-time decode cost (also amortised over
one epoch, the least favourable case). Target: loader >= 3x ImageDataGenerator; the loader is kept for every
backend unless tf.data measures clearly better.

Usage: python benchmarks/train_input.py [--images 2000] [--size 64] [--rounds 3] [--batch 32] [--workers N]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # the baselines need TensorFlow anyway
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AUG = dict(rotation=15.0, width_shift=0.1, height_shift=0.1, shear=10.0, zoom=0.1, hflip=True)


def tf_data_pipeline(x, y, batch, spec):
    """edgecnn 0.1's pipeline: tf.data + one ImageProjectiveTransformV3 per batch (kept here as the baseline)."""
    import tensorflow as tf

    deg = math.pi / 180.0

    def uniform(n, limit):
        return tf.random.uniform((n,), -limit, limit, dtype=tf.float32)

    def augment(images):
        shape = tf.shape(images)
        n = shape[0]
        h = tf.cast(shape[1], tf.float32)
        w = tf.cast(shape[2], tf.float32)
        zeros, ones = tf.zeros((n,), tf.float32), tf.ones((n,), tf.float32)
        theta = uniform(n, spec.rotation * deg) if spec.rotation else zeros
        shear = uniform(n, spec.shear * deg) if spec.shear else zeros
        zx = 1.0 + uniform(n, spec.zoom) if spec.zoom else ones
        zy = 1.0 + uniform(n, spec.zoom) if spec.zoom else ones
        if spec.hflip:
            zx = zx * tf.where(tf.random.uniform((n,)) < 0.5, -1.0, 1.0)
        tx = uniform(n, spec.width_shift) * w if spec.width_shift else zeros
        ty = uniform(n, spec.height_shift) * h if spec.height_shift else zeros
        cos, sin = tf.cos(theta), tf.sin(theta)
        a0, b0 = cos * zx, sin * zx
        a1 = (-cos * tf.sin(shear) - sin * tf.cos(shear)) * zy
        b1 = (-sin * tf.sin(shear) + cos * tf.cos(shear)) * zy
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        a2 = cx - a0 * cx - a1 * cy + tx
        b2 = cy - b0 * cx - b1 * cy + ty
        t = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=t, output_shape=shape[1:3],
                                                    fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
        return tf.clip_by_value(out, 0.0, 255.0)

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32"))).shuffle(len(y), seed=0).batch(batch)
    ds = ds.map(lambda a, b: (augment(tf.cast(a, tf.float32)), b), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=False)
    return ds.prefetch(tf.data.AUTOTUNE)


def loader_epoch(ds) -> int:
    """One epoch the way Keras' fit consumes a PyDataset (its thread enqueuer when workers > 1)."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(ds, shuffle=False)
    adapter.on_epoch_begin()
    n = 0
    for x, *_ in adapter.get_numpy_iterator():
        n += int(x.shape[0])
    adapter.on_epoch_end()
    return n


def tf_epoch(ds) -> int:
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
    ap.add_argument("--workers", type=int, default=0, help="loader threads (0 = edgecnn's default)")
    args = ap.parse_args()

    import tensorflow as tf

    from edgecnn.synthetic import write_dataset
    from edgecnn.training.augmentation import AugmentSpec
    from edgecnn.training.datasets import load_training_data
    from edgecnn.training.loader import ArrayBatches, default_workers

    tf.random.set_seed(0)
    classes = 8
    workers = args.workers or default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp) / "data", classes=classes, per_class=args.images // classes, size=64,
                             formats=("png", "jpg"), vary_size=True)
        n_files = sum(1 for _ in root.rglob("*.*"))
        print(f"folder: {n_files} images (png/jpg, 64-128 px, {classes} classes) -> {args.size}x{args.size}x3, "
              f"batch {args.batch}, augmentation {AUG}, {os.cpu_count()} CPUs, loader workers {workers}")

        t0 = time.perf_counter()
        data = load_training_data(root, (args.size, args.size), "rgb", val_split=0.01, test_split=0.0)
        decode_s = time.perf_counter() - t0
        x, y = data.train.x, data.train.y
        spec = AugmentSpec(**AUG)
        ours = ArrayBatches(x, y, args.batch, training=True, spec=spec, workers=workers)
        old = tf_data_pipeline(x, y, args.batch, spec)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = tf.keras.preprocessing.image.ImageDataGenerator(
                rotation_range=AUG["rotation"], width_shift_range=AUG["width_shift"],
                height_shift_range=AUG["height_shift"], shear_range=AUG["shear"], zoom_range=AUG["zoom"],
                horizontal_flip=AUG["hflip"], fill_mode="nearest")
            theirs = gen.flow_from_directory(str(root), target_size=(args.size, args.size), color_mode="rgb",
                                             class_mode="sparse", batch_size=args.batch, shuffle=True, seed=0)

        # untimed warm-up of all three (graph tracing, thread pools, file cache)
        loader_epoch(ours)
        tf_epoch(old)
        for _ in range(min(5, len(theirs))):
            next(theirs)
        theirs.reset()

        ips: dict[str, list[float]] = {"loader": [], "tf.data": [], "idg": []}
        names = list(ips)
        for r in range(args.rounds):
            for who in names[r % 3:] + names[: r % 3]:  # rotate the order every round
                t = time.perf_counter()
                if who == "loader":
                    n = loader_epoch(ours)
                elif who == "tf.data":
                    n = tf_epoch(old)
                else:
                    theirs.reset()
                    n = idg_epoch(theirs)
                ips[who].append(n / (time.perf_counter() - t))
            print(f"round {r + 1}: loader {ips['loader'][-1]:8.0f} img/s   tf.data {ips['tf.data'][-1]:8.0f} img/s   "
                  f"ImageDataGenerator {ips['idg'][-1]:7.0f} img/s")

        o, d, t = (statistics.median(ips[k]) for k in names)
        first_epoch = len(y) / (decode_s + len(y) / o)
        print()
        print(f"edgecnn loader (PyDataset+cv2)  : {o:9.0f} img/s per epoch (median of {args.rounds})")
        print(f"edgecnn 0.1 tf.data pipeline    : {d:9.0f} img/s per epoch (median of {args.rounds})")
        print(f"ImageDataGenerator (Keras)      : {t:9.0f} img/s per epoch (median of {args.rounds})")
        print(f"loader / ImageDataGenerator     : {o / t:9.1f}x  (target >= 3x)")
        print(f"loader / tf.data                : {o / d:9.2f}x  (tf.data kept only if clearly better)")
        print(f"edgecnn one-time decode         : {decode_s:9.2f} s for {len(y) + len(data.val.y)} images "
              f"({(len(y) + len(data.val.y)) / decode_s:.0f} img/s, thread pool)")
        print(f"first epoch incl. decode        : {first_epoch:9.0f} img/s  ratio {first_epoch / t:.1f}x")


if __name__ == "__main__":
    main()
