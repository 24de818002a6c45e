"""What ``train`` reports about a finished run: per-split metrics, training throughput and the model card."""

from __future__ import annotations

import datetime as _dt
import platform
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from converters.registry import FULL_PRECISION
from edgecnn import __version__
from edgecnn.fileio import sha256_file
from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing
from edgecnn.runs import MODEL_FILENAME
from edgecnn.training.config import TrainConfig


def train_throughput(history: list[dict[str, Any]], n_train: int) -> float | None:
    """Training images per second: median over the epochs of this session after the first (compilation), of the
    time from an epoch's start to its validation (so checkpoints and validation are not counted)."""
    times = [float(r["train_s"]) for r in history if r.get("train_s")]
    if len(times) > 1:
        times = times[1:]
    return round(n_train / statistics.median(times), 1) if times else None


def evaluate_splits(model: Any, data: Any, cfg: TrainConfig, head: str, tracker: Any, fit_s: float,
              total_s: float) -> dict[str, Any]:
    from edgecnn.training.evaluation import classification_report, predict_probs

    metrics: dict[str, Any] = {}
    splits = {"train": data.train, "val": data.val, "test": data.test}
    k = cfg.top_k
    for split, images in splits.items():
        if images is None or len(images) == 0:
            metrics[f"{split}_accuracy"] = None
            continue
        report = classification_report(predict_probs(model, images.x), images.y, data.labels, k)
        metrics[split] = report
        metrics[f"{split}_accuracy"] = report["accuracy"]
        if f"top{k}_accuracy" in report:
            metrics[f"{split}_top{k}_accuracy"] = report[f"top{k}_accuracy"]
    metrics.update(
        top_k=k,
        head=head,
        heldout_split="test" if data.test is not None else "val",
        skipped_files=len(data.skipped),
        skipped=data.skipped,
        epochs_run=len(tracker.history),
        best_epoch=tracker.best_epoch,
        best_val_loss=tracker.best if np.isfinite(tracker.best) else None,
        stopped_early=tracker.stopped_early,
        fit_seconds=round(fit_s, 3),
        total_seconds=round(total_s, 3),
    )
    return metrics


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("tensorflow", "keras", "jax", "jaxlib", "torch", "numpy", "pillow", "opencv-python-headless",
                 "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_card(cfg: TrainConfig, model: Any, data: Any, head: str, metrics: dict[str, Any], model_path: Path) -> ModelCard:
    h, w = cfg.size
    keep = ("train_accuracy", "val_accuracy", "test_accuracy", f"train_top{cfg.top_k}_accuracy",
            f"val_top{cfg.top_k}_accuracy", f"test_top{cfg.top_k}_accuracy", "top_k", "heldout_split",
            "skipped_files", "epochs_run", "best_epoch")
    return ModelCard(
        labels=list(data.labels),
        input=InputSpec(height=h, width=w, channels=cfg.channels),
        output=OutputSpec(activation=head, units=1 if head == "sigmoid" else len(data.labels)),
        preprocessing=Preprocessing(color=cfg.color, resize=cfg.interpolation),
        name=cfg.name or "model",
        architecture=cfg.arch,
        artifact={"format": "keras", "precision": FULL_PRECISION, "file": MODEL_FILENAME, "params": int(model.count_params())},
        config=cfg.to_dict(),
        dataset=data.summary(),
        metrics={k: metrics[k] for k in keep if k in metrics},
        provenance={
            "edgecnn_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model_sha256": sha256_file(model_path),
            "platform": platform.platform(),
            "versions": _versions(),
            "training": metrics.get("training"),
            **({"parent": parent_of(cfg.from_run, list(data.labels))} if cfg.from_run else {}),
        },
        reference=drift_reference(model, data),
    )


def parent_of(run: str, labels: list[str]) -> dict[str, Any]:
    """What the card records of the run it was fine-tuned from."""
    from edgecnn.modelcard import ModelCard
    from edgecnn.training.config import parent_run_dir

    folder = parent_run_dir(run)
    card = ModelCard.from_json((folder / "modelcard.json").read_bytes())
    return {"run": str(folder.resolve()), "name": card.name, "model_sha256": sha256_file(folder / MODEL_FILENAME),
            "labels": list(card.labels), "added_labels": [lbl for lbl in labels if lbl not in card.labels],
            "metrics": {k: v for k, v in card.metrics.items() if k.endswith("accuracy")}}


def drift_reference(model: Any, data: Any) -> dict[str, Any]:
    """The validation split's statistics as the model sees them (the drift monitor's reference)."""
    from edgecnn.monitor.stats import reference_from
    from edgecnn.training.evaluation import predict_probs

    val = data.val if data.val is not None and len(data.val) else data.train
    if val is None or not len(val):
        return {}
    ref = reference_from(val.x, predict_probs(model, val.x))
    if val is not data.val:
        ref["split"] = "train"
    return ref
