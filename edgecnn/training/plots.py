"""PNG plots of a training run (matplotlib, Agg backend): curves, confusion matrix, augmented samples,
model summary. Every file is written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.fileio import atomic_path
from edgecnn.reports import plot_confusion  # noqa: F401  (the one confusion-matrix plot, shared with evaluate)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_history(history: list[dict[str, float]], path: Path) -> Path:
    """Loss and accuracy (train and val) per epoch."""
    plt = _plt()
    epochs = [int(r["epoch"]) for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        for prefix, style in (("", "-o"), ("val_", "-s")):
            values = [r.get(prefix + key) for r in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style, ms=3,
                        label="val" if prefix else "train")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_samples(images: np.ndarray, targets: np.ndarray, labels: list[str], path: Path,
                 title: str = "Augmented training samples") -> Path:
    """A grid of (augmented) training images with their labels."""
    plt = _plt()
    n = min(len(images), 16)
    cols = 4
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2, rows * 2.2))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            img = np.clip(images[i], 0, 255).astype(np.uint8)
            if img.shape[-1] == 1:
                ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(img)
            ax.set_title(labels[int(targets[i])], fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def model_rows(model: Any) -> list[tuple[str, str, str, int]]:
    """(layer name, layer type, output shape, parameters) of every layer of a Keras model."""
    rows = []
    for layer in model.layers:
        try:
            shape = str(tuple(layer.output.shape)).replace("None", "N")
        except (AttributeError, ValueError):
            shape = "?"
        rows.append((layer.name, type(layer).__name__, shape, int(layer.count_params())))
    return rows


def plot_model_summary(model: Any, path: Path) -> Path:
    """The model's layers, output shapes and parameter counts rendered as a table image."""
    plt = _plt()
    rows = model_rows(model)
    total = int(model.count_params())
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    cells = [[name, kind, shape, f"{params:,}"] for name, kind, shape, params in rows]
    fig, ax = plt.subplots(figsize=(9, 0.24 * (len(cells) + 2) + 0.5))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=["layer", "type", "output shape", "params"], loc="upper center",
                     cellLoc="left", colLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.2)
    ax.set_title(f"{model.name}: {total:,} parameters ({trainable:,} trainable, {total - trainable:,} non-trainable)",
                 fontsize=10)
    return _save(fig, path)
