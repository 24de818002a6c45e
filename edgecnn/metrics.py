"""Class probabilities from model outputs: the one place a sigmoid head becomes two columns.

Pure numpy, no TensorFlow: train, evaluate, parity, bench and export all turn raw outputs into (N, C)
probabilities through :func:`class_probs`.
"""

from __future__ import annotations

import numpy as np


def class_probs(out: np.ndarray) -> np.ndarray:
    """(N, C) float32 class probabilities; a sigmoid head's (N, 1) output becomes ``[1 - p, p]``."""
    out = np.asarray(out, dtype=np.float32)
    out = out.reshape(len(out), -1)
    if out.shape[1] == 1:
        return np.concatenate([1.0 - out, out], axis=1)
    return out
