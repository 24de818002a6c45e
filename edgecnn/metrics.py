"""Classification figures from class probabilities: the one implementation train, evaluate, parity and bench use.

Pure numpy, no TensorFlow, no scikit-learn. :func:`class_probs` is the one place a sigmoid head becomes two
columns; :func:`classification_metrics` gives accuracy, top-k accuracy, per-class precision/recall/F1/support,
macro F1 and the confusion matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def class_probs(out: np.ndarray) -> np.ndarray:
    """(N, C) float32 class probabilities; a sigmoid head's (N, 1) output becomes ``[1 - p, p]``."""
    out = np.asarray(out, dtype=np.float32)
    out = out.reshape(len(out), -1)
    if out.shape[1] == 1:
        return np.concatenate([1.0 - out, out], axis=1)
    return out


def top_k_accuracy(probs: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Fraction of rows whose target is among the ``k`` highest probabilities (ties: the lower index first)."""
    targets = np.asarray(targets)
    if not len(targets):
        return float("nan")
    top = np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :k]
    return float((top == targets[:, None]).any(axis=1).mean())


def confusion_matrix(targets: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts: rows are true classes, columns predicted ones."""
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(targets, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return cm


def classification_metrics(targets: np.ndarray, probs: np.ndarray, labels: list[str], k: int) -> dict[str, Any]:
    """Accuracy, top-k accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix.

    Macro F1 averages the classes present in ``targets``: a class with no image in a small split has F1 0 by
    convention and would otherwise drag a perfect score down. ``k`` is clamped to ``1..len(labels)``.
    """
    targets = np.asarray(targets, dtype=np.int64)
    probs = np.asarray(probs)
    n = len(labels)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    k = max(1, min(k, n))
    cm = confusion_matrix(targets, pred, n)
    per_class = {}
    for i, lbl in enumerate(labels):
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[lbl] = {"precision": float(prec), "recall": float(rec), "f1": float(f1), "support": int(cm[i].sum())}
    present = [v["f1"] for v in per_class.values() if v["support"]]
    return {
        "accuracy": float((pred == targets).mean()) if len(targets) else 0.0,
        "topk": k,
        "topk_accuracy": top_k_accuracy(probs, targets, k) if len(targets) else 0.0,
        "per_class": per_class,
        "confusion": cm.tolist(),
        "macro_f1": float(np.mean(present)) if present else 0.0,
    }
