"""The input pipeline: ``keras.utils.PyDataset`` batches from the decoded uint8 cache, for every Keras backend.

Each epoch reshuffles (a permutation drawn from ``(seed, epoch)``), slices batches, augments the training split
with one fused affine warp per image (:mod:`edgecnn.training.augmentation`, OpenCV, which releases the GIL so
``workers`` threads run in parallel) and hands float32 NHWC 0..255 pixels to Keras. A batch is a pure function
of (seed, epoch, index), so the same seed gives the same batches on TensorFlow, JAX and PyTorch.
``benchmarks/train_input.py`` measured it against the ``tf.data`` pipeline it replaced and ImageDataGenerator.

Class weights become per-sample weights. With N data-parallel devices the last (short) batch is padded to a
multiple of N with zero-weight copies, so every device gets an equal shard and the padding changes nothing.

Imports Keras at module level: import it only after :func:`edgecnn.training.backend.activate`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from edgecnn.training.augmentation import AugmentSpec, augment


def default_workers() -> int:
    """Loader threads: one per CPU core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


class ArrayBatches(keras.utils.PyDataset):
    """Batches ``(x float32 NHWC, y[, sample_weight])`` of an in-memory uint8 image array.

    Args:
        images: uint8 NxHxWxC (already decoded and resized: nothing is decoded here).
        targets: int label indices.
        batch: Batch size (the global batch with data parallelism).
        training: Reshuffle every epoch and apply ``spec``.
        seed: Seed of the shuffles and augmentation draws.
        spec: Augmentation ranges (training only); None or inactive for none.
        num_classes: Classes (for one-hot labels).
        one_hot: Yield one-hot labels (label smoothing); else sparse int32 indices.
        binary: Yield float32 labels of shape (N, 1) (sigmoid head).
        class_weight: {class index: weight}; yields per-sample weights.
        multiple_of: Pad every batch to a multiple of this (data-parallel devices) with zero-weight samples.
        workers: Threads preparing batches (1 = in the training loop's thread).
        shard: (index, count): yield only this process's equal slice of every (padded) global batch, for
            multi-process data parallelism; its augmentation draws are its own.
        variants: The same images resized by other methods (K x N x H x W x C, ``--resize-augment``): in
            training, each sample of each epoch takes one of the K + 1 versions at random.
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        batch: int,
        *,
        training: bool,
        seed: int = 0,
        spec: AugmentSpec | None = None,
        num_classes: int | None = None,
        one_hot: bool = False,
        binary: bool = False,
        class_weight: dict[int, float] | None = None,
        multiple_of: int = 1,
        workers: int = 1,
        shard: tuple[int, int] = (0, 1),
        variants: np.ndarray | None = None,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.images = images
        self.variants = variants if (training and variants is not None and len(variants)) else None
        self.targets = np.asarray(targets, np.int32)
        self.batch = batch
        self.training = training
        self.seed = seed
        self.spec = spec if (training and spec is not None and spec.active) else None
        self.num_classes = num_classes
        self.one_hot = one_hot
        self.binary = binary
        self.multiple_of = max(1, multiple_of)
        self.shard = shard
        if shard[1] > 1 and self.multiple_of % shard[1]:
            raise ValueError(f"multiple_of {self.multiple_of} must split over {shard[1]} processes")
        n_classes = num_classes or (int(self.targets.max()) + 1 if len(self.targets) else 0)
        self.weights: np.ndarray | None = None
        if class_weight or self.multiple_of > 1 or shard[1] > 1:  # every batch has the same structure: (x, y, w)
            self.weights = np.asarray([(class_weight or {}).get(c, 1.0) for c in range(n_classes)], np.float32)
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        n = len(self.targets)
        if not self.training:
            return np.arange(n)
        return np.random.default_rng((self.seed, self.epoch)).permutation(n)

    def __len__(self) -> int:
        return math.ceil(len(self.targets) / self.batch)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        idx = self.order[index * self.batch : (index + 1) * self.batch]
        if self.shard[1] > 1:
            return self._shard_item(index, idx)
        x = self._pick(idx, index)
        if self.spec is not None:
            x = augment(x, self.spec, np.random.default_rng((self.seed, self.epoch, index, 1)))
        x = x.astype(np.float32)
        t = self.targets[idx]
        w = self.weights[t] if self.weights is not None else None
        pad = -len(idx) % self.multiple_of
        if pad:
            x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
            t = np.concatenate([t, np.repeat(t[:1], pad)])
            w = np.concatenate([w, np.zeros(pad, np.float32)])  # type: ignore[list-item]
        return self._labels(x, t, w)

    def _shard_item(self, index: int, idx: np.ndarray) -> tuple[Any, ...]:
        """This process's slice of global batch ``index`` (padded first, so every process gets as many rows)."""
        pad = -len(idx) % self.multiple_of
        w_global = self.weights[self.targets[idx]] if self.weights is not None else np.ones(len(idx), np.float32)
        if pad:
            idx = np.concatenate([idx, np.repeat(idx[:1], pad)])
            w_global = np.concatenate([w_global, np.zeros(pad, np.float32)])
        part = len(idx) // self.shard[1]
        lo = self.shard[0] * part
        idx, w = idx[lo : lo + part], w_global[lo : lo + part]
        x = self._pick(idx, index)
        if self.spec is not None:
            x = augment(x, self.spec, np.random.default_rng((self.seed, self.epoch, index, 1, self.shard[0])))
        return self._labels(x.astype(np.float32), self.targets[idx], w)

    def _pick(self, idx: np.ndarray, index: int) -> np.ndarray:
        """The batch's images; with resize variants, each sample's version drawn from (seed, epoch, batch index)."""
        x = self.images[idx]
        if self.variants is None:
            return x
        which = np.random.default_rng((self.seed, self.epoch, index, 2)).integers(0, len(self.variants) + 1, len(idx))
        for k in range(len(self.variants)):
            sel = which == k + 1
            x[sel] = self.variants[k][idx[sel]]  # x is a copy (fancy indexing): the cache is untouched
        return x

    def _labels(self, x: np.ndarray, t: np.ndarray, w: np.ndarray | None) -> tuple[Any, ...]:
        if self.binary:
            y: np.ndarray = t.astype(np.float32).reshape(-1, 1)
        elif self.one_hot:
            y = np.eye(self.num_classes or int(t.max()) + 1, dtype=np.float32)[t]
        else:
            y = t
        return (x, y) if w is None else (x, y, w)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()
