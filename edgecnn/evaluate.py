"""``edgecnn evaluate``: accuracy, top-k, per-class precision/recall/F1 and a confusion matrix of a model
on a labelled folder (or a run's held-out split), through the same runtime pipeline as ``edgecnn run``.

TF-free for ``.tflite``/``.onnx`` models; the PNG needs matplotlib (a warning says so when it is missing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import info
from edgecnn.conventions import labelled_files
from edgecnn.errors import ConfigError, DataError
from edgecnn.fileio import write_json
from edgecnn.imaging import LabelledFiles
from edgecnn.metrics import classification_metrics
from edgecnn.reports import plot_confusion
from edgecnn.runs import MODEL_FILENAME, next_run_dir
from edgecnn.runtime.backends import load_backend
from edgecnn.runtime.pipeline import Pipeline
from edgecnn.runtime.sources import ImageFilesSource
from edgecnn.tables import KEEP, Col

#: Parent of the numbered output folders of ``edgecnn evaluate`` without ``--out``.
EVALUATE_PROJECT = Path("runs") / "evaluate"

#: The per-class table ``edgecnn evaluate`` prints, as it gives way at narrow widths (edgecnn.tables).
PER_CLASS_TERMINAL = (Col("class", priority=KEEP), Col("precision", "prec", 60, right=True),
                      Col("recall", "rec", 70, right=True), Col("f1", "", 80, right=True),
                      Col("support", "n", 50, right=True))


def per_class_rows(per_class: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The per-class figures as text cells of :data:`PER_CLASS_TERMINAL` (labels escaped for the terminal)."""
    from edgecnn.console import printable

    return [{"class": printable(lbl), "precision": f"{m['precision']:.3f}", "recall": f"{m['recall']:.3f}",
             "f1": f"{m['f1']:.3f}", "support": str(m["support"])} for lbl, m in per_class.items()]


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
    #: Every wrong prediction, the most confident first: file, true, predicted, score, the true class's score.
    misclassified: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _dataset(data: str | os.PathLike[str] | None, run: str | os.PathLike[str] | None, split: str,
             card: Any) -> tuple[LabelledFiles, str]:
    labels = card.labels
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
    files = labelled_files(data, card)
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
    engine: str = "local",
    scale: Any | None = None,
    max_pixels: int | None = None,
    conventions: Any = None,
) -> EvalReport:
    """Evaluate a model on a labelled folder (``data``) or a run's split (``run``/``split``).

    Writes ``metrics.json`` and ``confusion_matrix.png`` into ``out_dir`` (default: the next free
    ``runs/evaluate/exp``, ``exp2``, ... so an ``.onnx`` never overwrites its ``.tflite`` twin's figures).
    The output folder is checked before the model is loaded: it may not be the model, the data or inside it,
    and must be writable. With ``engine="ray"`` the images are classified on a Ray cluster (``scale``: an
    :class:`edgecnn.scale.ScaleOptions`) by the same pipeline code, and the same metrics are computed.
    """
    from edgecnn.imaging import set_max_pixels
    from edgecnn.outputs import check_outputs

    set_max_pixels(max_pixels)  # the one pixel limit of every decoder (None: $EDGECNN_MAX_PIXELS or the default)
    out = Path(out_dir) if out_dir else next_run_dir(EVALUATE_PROJECT)
    model_file = Path(model) / MODEL_FILENAME if Path(model).is_dir() else model  # a run folder is not image data
    check_outputs({"--out": out}, {"MODEL": model_file, "--data": data}, folders={"--out"})
    if engine == "ray":
        from edgecnn.scale.infer import check_model

        check_model(model)
    be = load_backend(model, backend=backend, threads=threads, providers=providers, delegate=delegate,
                      conventions=conventions)
    try:
        ds, name = _dataset(data, run, split, be.card)
        info_ = be.info()
        target_of = {str(f): t for f, t in zip(ds.files, ds.targets)}
        if engine == "ray":
            be.close()
            from edgecnn.scale.infer import ScaleOptions
            from edgecnn.scale.run import ray_results

            opts = scale or ScaleOptions()
            opts.batch = batch
            opts.conventions = opts.conventions or conventions
            opts.threads = opts.threads or threads
            results: Any = ray_results([str(f) for f in ds.files], model, opts, backend=backend, providers=providers,
                                       topk=1, want_probs=True)
            info_ = {**info_, "engine": "ray"}
        else:
            source = ImageFilesSource(ds.files, name, workers=workers or max(1, min(4, os.cpu_count() or 1)),
                                      transform=be.preprocess)
            results = (result for _frame, result in Pipeline(be, source, batch=batch, topk=1))
        probs: list[np.ndarray] = []
        targets: list[int] = []
        sources: list[str] = []
        skipped: list[tuple[str, str]] = []
        for result in results:
            if not result.ok:
                skipped.append((result.source, result.error or ""))
                continue
            probs.append(result.probs)
            targets.append(target_of[result.source])
            sources.append(result.source)
    finally:
        be.close()
    if not probs:
        raise DataError(f"None of the {len(ds.files)} images in {name} could be decoded.")
    m = classification_metrics(np.asarray(targets), np.stack(probs), ds.labels, topk)
    out.mkdir(parents=True, exist_ok=True)
    report = EvalReport(model=str(model), data=name, labels=ds.labels, count=len(targets), skipped=skipped,
                        backend_info=info_, **m)
    report.misclassified = misclassified(sources, np.asarray(targets), np.stack(probs), ds.labels)
    png = out / "confusion_matrix.png"
    if plot_confusion(np.asarray(m["confusion"]), ds.labels, png, f"{Path(model).name}: accuracy {m['accuracy']:.3f}"):
        report.outputs.append(str(png))
    report.outputs += write_pictures(report, sources, np.asarray(targets), np.stack(probs), out)
    write_json(out / "metrics.json", report.to_dict())
    report.outputs.insert(0, str(out / "metrics.json"))
    if skipped:
        info(f"Skipped {len(skipped)} unreadable images.")
    return report


def misclassified(sources: list[str], targets: np.ndarray, probs: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Every wrong top-1, the most confident mistakes first (what to look at, or relabel, first)."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != targets)
    rows = [{"file": sources[i], "true": labels[targets[i]], "predicted": labels[pred[i]],
             "score": round(float(probs[i, pred[i]]), 6), "true_score": round(float(probs[i, targets[i]]), 6)}
            for i in wrong]
    return sorted(rows, key=lambda r: -r["score"])


#: Images drawn in the mosaic and thumbnails in the HTML report (the JSON lists every mistake).
MOSAIC_IMAGES = 32
REPORT_THUMBNAILS = 200


def write_pictures(report: EvalReport, sources: list[str], targets: np.ndarray, probs: np.ndarray,
                   out: Path) -> list[str]:
    """``predictions.png`` (a mosaic: mistakes first, marked red) and ``report.html`` (figures, confusion matrix,
    the misclassified files with thumbnails and scores). Images are shown as decoded (before resizing)."""
    import html

    from edgecnn.fileio import write_text
    from edgecnn.imaging import decode_image
    from edgecnn.mosaic import Tile, pick, thumbnail_uri, write_mosaic

    labels = report.labels
    pred = probs.argmax(axis=1)
    written: list[str] = []

    def image(path: str) -> np.ndarray:
        try:
            return decode_image(path)
        except Exception:  # noqa: BLE001  (it decoded for the model a moment ago; a picture is never worth a failure)
            return np.zeros((8, 8, 3), np.uint8)

    true, said = [labels[t] for t in targets], [labels[p] for p in pred]
    scores = [float(probs[i, pred[i]]) for i in range(len(sources))]
    tiles = [Tile(image(sources[i]), true[i], said[i], scores[i])
             for i in pick(true, said, scores, limit=MOSAIC_IMAGES)]
    png = write_mosaic(tiles, out / "predictions.png",
                       title=f"{Path(report.model).name} on {Path(report.data).name}: accuracy {report.accuracy:.3f} "
                             f"({len(report.misclassified)} wrong of {report.count})")
    if png:
        written.append(str(png))
    rows = []
    for r in report.misclassified[:REPORT_THUMBNAILS]:
        rows.append(f'<tr><td><img src="{thumbnail_uri(image(r["file"]))}" alt=""></td>'
                    f"<td>{html.escape(r['file'])}</td><td>{html.escape(r['true'])}</td>"
                    f"<td class=bad>{html.escape(r['predicted'])}</td><td>{r['score']:.3f}</td>"
                    f"<td>{r['true_score']:.3f}</td></tr>")
    more = len(report.misclassified) - REPORT_THUMBNAILS
    confusion = out / "confusion_matrix.png"
    body = (
        f"<h1>{html.escape(Path(report.model).name)} on {html.escape(report.data)}</h1>"
        f"<p>accuracy {report.accuracy:.4f} · top-{report.topk} {report.topk_accuracy:.4f} · macro-F1 "
        f"{report.macro_f1:.4f} · {report.count} images, {len(report.misclassified)} misclassified, "
        f"{len(report.skipped)} skipped</p>"
        + (f'<img src="{confusion.name}" alt="confusion matrix" style="max-width:640px">' if confusion.exists() else "")
        + ('<h2>Predictions</h2><img src="predictions.png" alt="prediction mosaic" style="max-width:100%">' if png else "")
        + "<h2>Misclassified, most confident first</h2>"
        + ("<table><tr><th></th><th>file</th><th>true</th><th>predicted</th><th>score</th><th>true class score</th></tr>"
           + "".join(rows) + "</table>" if rows else "<p>None: every image was classified right.</p>")
        + (f"<p>{more} more in metrics.json.</p>" if more > 0 else "")
    )
    page = ("<!DOCTYPE html><html><head><meta charset=utf-8><title>edgecnn evaluate</title><style>"
            "body{font-family:sans-serif;max-width:1280px;margin:auto;padding:1em}table{border-collapse:collapse}"
            "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;word-break:break-all}"
            ".bad{color:#c81e1e;font-weight:bold}</style></head><body>" + body + "</body></html>\n")
    written.append(str(write_text(out / "report.html", page)))
    return written


@dataclass
class Comparison:
    """A parent model and its fine-tuned child on the same labelled folder (``evaluate CHILD --parent ...``)."""

    data: str
    parent: EvalReport
    child: EvalReport
    outputs: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, float | None, float | None]]:
        """(figure, parent, child): accuracy, top-k, macro-F1, then each class's recall."""
        out: list[tuple[str, float | None, float | None]] = [
            ("accuracy", self.parent.accuracy, self.child.accuracy),
            (f"top-{self.child.topk} accuracy", self.parent.topk_accuracy, self.child.topk_accuracy),
            ("macro-F1", self.parent.macro_f1, self.child.macro_f1),
        ]
        for lbl in dict.fromkeys([*self.child.labels, *self.parent.labels]):
            p, c = self.parent.per_class.get(lbl), self.child.per_class.get(lbl)
            out.append((f"recall {lbl}", p["recall"] if p else None, c["recall"] if c else None))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "parent": self.parent.model, "child": self.child.model,
                "rows": [{"figure": f, "parent": p, "child": c, "delta": None if p is None or c is None else c - p}
                         for f, p, c in self.rows()]}


def parent_of(model: str | os.PathLike[str]) -> Path:
    """The parent run a fine-tuned model's card names (``train --from``).

    Raises:
        ConfigError: the card names none, or that run is gone.
    """
    from edgecnn.modelcard import read

    card = read(model)
    parent = ((card.provenance or {}).get("parent") or {}) if card is not None else {}
    if not parent.get("run"):
        raise ConfigError(f"Expected a model fine-tuned with `train --from`; the card of {model} names no parent. "
                          "Give the parent's path: --parent PATH.")
    run = Path(parent["run"])
    if not (run / MODEL_FILENAME).is_file():
        raise ConfigError(f"The parent run {run} named in the card of {model} is gone; give --parent PATH.")
    return run


def compare(child: str | os.PathLike[str], parent: str | os.PathLike[str], data: str | os.PathLike[str] | None,
            out_dir: str | os.PathLike[str] | None = None, **options: Any) -> Comparison:
    """Evaluate ``parent`` and ``child`` on the same folder (``parent="auto"``: the one the child's card names).

    Writes ``OUT/parent/`` and ``OUT/child/`` (each ``evaluate``'s files) and ``OUT/comparison.json``.
    """
    parent_path = parent_of(child) if str(parent) == "auto" else Path(parent)
    if data is not None:
        from edgecnn.imaging import list_class_folders
        from edgecnn.modelcard import read

        card = read(parent_path)
        added = [c.name for c in list_class_folders(data) if card is not None and c.name not in card.labels]
        if added:
            raise DataError(f"The parent {parent_path} does not know the classes {added} of {data} (added by "
                            f"`train --from`); compare on a folder of the parent's classes {card.labels}.")
    out = Path(out_dir) if out_dir else next_run_dir(EVALUATE_PROJECT)
    child_report = evaluate(child, data=data, out_dir=out / "child", **options)
    parent_report = evaluate(parent_path, data=data, out_dir=out / "parent", **options)
    result = Comparison(child_report.data, parent_report, child_report)
    write_json(out / "comparison.json", result.to_dict())
    result.outputs = [str(out / "comparison.json"), *child_report.outputs, *parent_report.outputs]
    return result
