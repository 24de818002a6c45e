"""Classification metrics from predicted probabilities (numpy + scikit-learn): accuracy, top-k,
per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_class_probs(probs: np.ndarray) -> np.ndarray:
    """(N, C) class probabilities; a sigmoid head's (N, 1) output becomes ``[1 - p, p]``."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 2 and probs.shape[1] == 1:
        return np.concatenate([1.0 - probs, probs], axis=1)
    return probs


def predict_probs(model: Any, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class probabilities of uint8 NHWC images (the model called on batches, inference mode)."""
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    out = [np.asarray(model(images[i : i + batch].astype(np.float32), training=False))
           for i in range(0, len(images), batch)]
    return as_class_probs(np.concatenate(out))


def top_k_accuracy(probs: np.ndarray, y: np.ndarray, k: int) -> float:
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean(np.any(top == y[:, None], axis=1))) if len(y) else float("nan")


def classification_report(probs: np.ndarray, y: np.ndarray, labels: list[str], top_k: int) -> dict[str, Any]:
    """Accuracy, top-k accuracy (when ``top_k < len(labels)``), per-class P/R/F1, macro F1 (classes with
    support) and confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    pred = probs.argmax(axis=1)
    n = len(labels)
    idx = list(range(n))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=idx, zero_division=0)
    report: dict[str, Any] = {
        "accuracy": float(np.mean(pred == y)) if len(y) else None,
        "num_images": int(len(y)),
        "per_class": {
            labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in idx
        },
        # over the classes present in this split, as ``edgecnn evaluate`` does: a class with no image in a
        # small val/test split has F1 0 by convention and would otherwise drag a perfect score down
        "macro_f1": float(np.mean(f[s > 0])) if (s > 0).any() else 0.0,
        "confusion_matrix": confusion_matrix(y, pred, labels=idx).tolist(),
    }
    if top_k < n:
        report[f"top{top_k}_accuracy"] = top_k_accuracy(probs, y, top_k)
    return report
