"""``train --from RUN``: start a new run from an earlier run's weights, growing the head for added classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import ConfigError, DataError
from edgecnn.modelcard import ModelCard
from edgecnn.runs import MODEL_FILENAME
from edgecnn.training.config import parent_run_dir


def load_parent_weights(model: Any, run: str, labels: list[str], head: str) -> dict[str, Any]:
    """Copy the parent run's weights into ``model`` (built for ``labels``), layer by layer.

    Every layer but the classifier takes the parent's weights as they are. The classifier's columns are mapped
    by label: a parent class keeps its column wherever it now sorts, an added class keeps the fresh
    initialisation (its bias set to the parent's lowest, so it starts unlikely rather than at random).

    Raises:
        DataError: a parent class is missing from the new data.
        ConfigError: the networks differ (another architecture, or a two-class sigmoid head asked to grow).
    """
    from edgecnn.training.callbacks import load_checkpoint

    folder = parent_run_dir(run)
    card = ModelCard.from_json((folder / "modelcard.json").read_bytes())
    parent_labels = list(card.labels)
    missing = [lbl for lbl in parent_labels if lbl not in labels]
    if missing:
        raise DataError(f"Expected every class of the parent run {folder} in --data; {', '.join(missing)} "
                        f"missing. Fine-tuning keeps the parent's classes: add a folder per class (received "
                        f"{labels}).")
    parent = load_checkpoint(folder / MODEL_FILENAME, folder)
    mine = [layer for layer in model.layers if layer.weights]
    theirs = [layer for layer in parent.layers if layer.weights]
    if len(mine) != len(theirs):
        raise ConfigError(f"The parent run {folder} has another network ({len(theirs)} weighted layers, this one "
                          f"{len(mine)}); train from scratch without --from.")
    for i, (a, b) in enumerate(zip(mine, theirs)):
        wa, wb = a.get_weights(), b.get_weights()
        if i == len(mine) - 1:
            a.set_weights(_grow_head(wa, wb, parent_labels, labels, head, card.output.activation, folder))
            continue
        if [w.shape for w in wa] != [w.shape for w in wb]:
            raise ConfigError(f"Layer {a.name} of the parent run {folder} has other shapes "
                              f"({[w.shape for w in wb]} vs {[w.shape for w in wa]}); train from scratch.")
        a.set_weights(wb)
    return {"run": str(folder), "labels": parent_labels}


def _grow_head(fresh: list[np.ndarray], old: list[np.ndarray], parent_labels: list[str], labels: list[str],
               head: str, parent_head: str, folder: Path) -> list[np.ndarray]:
    if len(fresh) != 2 or len(old) != 2 or fresh[0].shape[0] != old[0].shape[0]:
        raise ConfigError(f"The classifier of the parent run {folder} is not a dense layer over the same features; "
                          "train from scratch without --from.")
    if head != parent_head or (head == "sigmoid" and parent_labels != labels):
        raise ConfigError(f"The parent run {folder} has a {parent_head} head over {parent_labels}; this run needs a "
                          f"{head} head over {labels}. A two-class sigmoid head cannot grow: retrain the parent "
                          "with --head softmax, or train from scratch.")
    if head == "sigmoid":
        return old
    kernel, bias = fresh[0].copy(), fresh[1].copy()
    bias[:] = float(np.min(old[1])) if old[1].size else 0.0
    for j, lbl in enumerate(parent_labels):
        i = labels.index(lbl)
        kernel[:, i] = old[0][:, j]
        bias[i] = old[1][j]
    return [kernel, bias]


__all__ = ["load_parent_weights"]
