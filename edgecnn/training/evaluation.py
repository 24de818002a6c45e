"""The training run's figures per split, from :mod:`edgecnn.metrics` (the one implementation ``evaluate``,
parity and bench share): accuracy, top-k, per-class precision/recall/F1, macro F1 and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecnn.metrics import classification_metrics, top_k_accuracy
from edgecnn.runtime.keras_model import keras_probs


def predict_probs(model: Any, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class probabilities of uint8 NHWC images (the model called on batches, inference mode)."""
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    return keras_probs(model, images, batch)


def classification_report(probs: np.ndarray, y: np.ndarray, labels: list[str], top_k: int) -> dict[str, Any]:
    """Accuracy, top-k accuracy (when ``top_k < len(labels)``), per-class P/R/F1, macro F1 (classes with
    support) and confusion matrix."""
    m = classification_metrics(y, probs, labels, top_k)
    report: dict[str, Any] = {
        "accuracy": m["accuracy"] if len(y) else None,
        "num_images": int(len(y)),
        "per_class": m["per_class"],
        "macro_f1": m["macro_f1"],
        "confusion_matrix": m["confusion"],
    }
    if top_k < len(labels):
        report[f"top{top_k}_accuracy"] = top_k_accuracy(probs, y, top_k)
    return report
