"""``edgecnn evaluate``: accuracy, top-k, per-class precision/recall/F1 and a confusion matrix of a model
on a labelled folder (or a run's held-out split), through the same runtime pipeline as ``edgecnn run``.

TF-free for ``.tflite``/``.onnx`` models; the PNG needs matplotlib (a warning says so when it is missing).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import info, warn
from edgecnn.errors import ConfigError, DataError
from edgecnn.fileio import atomic_path, write_json
from edgecnn.imaging import LabelledFiles, scan_labelled_folder
from edgecnn.runtime.backends import load_backend
from edgecnn.runtime.pipeline import Pipeline
from edgecnn.runtime.sources import ImageFilesSource


@dataclass
class EvalReport:
    """Figures of one evaluation."""

    model: str
    data: str
    labels: list[str]
    count: int
    accuracy: float
    topk: int
    topk_accuracy: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    macro_f1: float = 0.0
    outputs: list[str] = field(default_factory=list)
    backend_info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def metrics(targets: np.ndarray, probs: np.ndarray, labels: list[str], k: int) -> dict[str, Any]:
    """Accuracy, top-k accuracy, per-class precision/recall/F1/support and the confusion matrix."""
    n = len(labels)
    pred = probs.argmax(axis=1)
    k = max(1, min(k, n))
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (targets, pred), 1)
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
        "topk_accuracy": float((topk == targets[:, None]).any(axis=1).mean()) if len(targets) else 0.0,
        "per_class": per_class,
        "confusion": cm.tolist(),
        "macro_f1": float(np.mean(present)) if present else 0.0,
    }


def plot_confusion(cm: np.ndarray, labels: list[str], path: Path, title: str) -> bool:
    """Write a confusion-matrix PNG (row-normalised colours, counts written in); False without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        warn("matplotlib is not installed, so no confusion-matrix PNG: pip install 'edgecnn[train]' (or matplotlib).")
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black",
                        fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return True


def _dataset(data: str | os.PathLike[str] | None, run: str | os.PathLike[str] | None, split: str,
             labels: list[str]) -> tuple[LabelledFiles, str]:
    if data is not None and run is not None:
        raise ConfigError("Expected --data DIR or --run RUN, not both.")
    if run is not None:
        from edgecnn.runs import load_split

        files = load_split(run, split)
        if files is None:
            raise DataError(f"Run {run} has no {split!r} split in splits.json.")
        if files.labels != labels:
            raise DataError(f"Run {run} has labels {files.labels}; the model has {labels}.")
        return files, f"{run} ({split} split)"
    if data is None:
        raise ConfigError("Expected --data DIR (one sub-folder per class) or --run RUN.")
    files = scan_labelled_folder(data, labels=labels)
    if not files.files:
        raise DataError(f"No images under the class folders of {data}.")
    return files, str(data)


def evaluate(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    run: str | os.PathLike[str] | None = None,
    split: str = "test",
    out_dir: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    threads: int | None = None,
    providers: list[str] | None = None,
    delegate: str | None = None,
    batch: int = 32,
    topk: int = 5,
    workers: int | None = None,
) -> EvalReport:
    """Evaluate a model on a labelled folder (``data``) or a run's split (``run``/``split``).

    Writes ``metrics.json`` and ``confusion_matrix.png`` into ``out_dir`` (default ``runs/evaluate/<model>``).
    The output folder is checked before the model is loaded: it may not be the model, the data or inside it,
    and must be writable.
    """
    from edgecnn.outputs import check_outputs

    out = Path(out_dir) if out_dir else Path("runs") / "evaluate" / Path(model).stem
    model_file = Path(model) / "model.keras" if Path(model).is_dir() else model  # a run folder is not image data
    check_outputs({"--out": out}, {"MODEL": model_file, "--data": data}, folders={"--out"})
    be = load_backend(model, backend=backend, threads=threads, providers=providers, delegate=delegate)
    try:
        ds, name = _dataset(data, run, split, be.labels)
        source = ImageFilesSource(ds.files, name, workers=workers or max(1, min(4, os.cpu_count() or 1)),
                                  transform=be.preprocess)
        pipe = Pipeline(be, source, batch=batch, topk=1)
        target_of = {str(f): t for f, t in zip(ds.files, ds.targets)}
        probs: list[np.ndarray] = []
        targets: list[int] = []
        skipped: list[tuple[str, str]] = []
        for _frame, result in pipe:
            if not result.ok:
                skipped.append((result.source, result.error or ""))
                continue
            probs.append(result.probs)
            targets.append(target_of[result.source])
        info_ = be.info()
    finally:
        be.close()
    if not probs:
        raise DataError(f"None of the {len(ds.files)} images in {name} could be decoded.")
    m = metrics(np.asarray(targets), np.stack(probs), ds.labels, topk)
    out.mkdir(parents=True, exist_ok=True)
    report = EvalReport(model=str(model), data=name, labels=ds.labels, count=len(targets), skipped=skipped,
                        backend_info=info_, **m)
    png = out / "confusion_matrix.png"
    if plot_confusion(np.asarray(m["confusion"]), ds.labels, png, f"{Path(model).name}: accuracy {m['accuracy']:.3f}"):
        report.outputs.append(str(png))
    write_json(out / "metrics.json", report.to_dict())
    report.outputs.insert(0, str(out / "metrics.json"))
    if skipped:
        info(f"Skipped {len(skipped)} unreadable images.")
    return report
