"""Parity: does an exported artifact give the reference (Keras) model's answers?

Each candidate is run with the real runtime (:func:`edgecnn.runtime.backends.load_backend`: LiteRT,
onnxruntime) on the same uint8 NHWC inputs as the reference, and compared: max/mean absolute difference
of probabilities, top-1 agreement, accuracy of both on the labelled data. Gates per precision decide
pass/fail.

TF-free at module level (rule 2): with a ``golden.npz`` (written by ``edgecnn export``) an edge box checks
its copy of a model without TensorFlow. Only a ``.keras`` reference imports Keras, lazily, through the
Keras backend.

The results table and failure summary live in :mod:`edgecnn.parity_report` (re-exported here).

Size (~420 lines): the gates and the comparison of every candidate kind (artifact, golden, .keras); the
report lives apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters.registry import FULL_PRECISION, PRECISIONS
from edgecnn.errors import ConfigError, DataError, ModelError
from edgecnn.fileio import path_size
from edgecnn.imaging import LabelledFiles, UnreadableImageError, load_image, scan_labelled_folder
from edgecnn.modelcard import ModelCard
from edgecnn.parity_report import (  # noqa: F401  (re-exported: the tables and the result lived here)
    COLUMNS,
    ParityResult,
    failure_summary,
    markdown_table,
    print_table,
    raise_for_failures,
    rich_table,
    table_rows,
)

GOLDEN_FILENAME = "golden.npz"
GOLDEN_MAX = 64


# ---------------------------------------------------------------------- gates
@dataclass
class Gates:
    """Pass/fail thresholds per precision (configurable from the CLI).

    Attributes:
        fp32_max_abs: float32 artifacts: largest allowed absolute difference of any probability.
        fp32_agreement: float32 artifacts: minimum top-1 agreement (fraction).
        fp16_max_abs: float16 artifacts: largest allowed absolute difference.
        fp16_agreement: float16 artifacts: minimum top-1 agreement.
        quant_agreement: dynamic/int8 artifacts: minimum top-1 agreement.
        quant_acc_drop: dynamic/int8 artifacts: largest allowed accuracy drop (fraction; 0.01 = 1 point).
        consumer_agreement: every artifact: minimum top-1 agreement under each common consumer's resize on
            held-out images of another size than the model's (:mod:`edgecnn.export.consumers`).
    """

    fp32_max_abs: float = 1e-4
    fp32_agreement: float = 1.0
    fp16_max_abs: float = 1e-2
    fp16_agreement: float = 0.995
    quant_agreement: float = 0.98
    quant_acc_drop: float = 0.01
    consumer_agreement: float = 0.99

    def __post_init__(self) -> None:
        """Refuse thresholds no artifact could meet or that let anything pass (agreement 1.01, drop -1, max |Δp| 2)."""
        import math

        for key, (lo, hi) in _GATE_RANGES.items():
            value = getattr(self, key)
            if not isinstance(value, int | float) or math.isnan(value) or not lo <= value <= hi:
                raise ConfigError(f"Expected {_GATE_OPTIONS.get(key, key)} between {lo:g} and {hi:g} "
                                  f"({_GATE_MEANING[key]}); received {value!r}.")

    def checks(self, precision: str) -> list[tuple[str, str, float]]:
        """(metric, ``<=``/``>=``, threshold) that an artifact of ``precision`` must meet.

        Raises:
            ModelError: ``precision`` is not in the registry (an unknown precision is never gated as int8).
        """
        spec = PRECISIONS.get(precision)
        if spec is None:
            raise ModelError(f"Unknown precision {precision!r} in a model card; expected one of {list(PRECISIONS)}. "
                             "Re-export the model with `edgecnn export`.")
        if spec.gate == "exact":
            return [("max_abs", "<=", self.fp32_max_abs), ("agreement", ">=", self.fp32_agreement)]
        if spec.gate == "half":
            return [("max_abs", "<=", self.fp16_max_abs), ("agreement", ">=", self.fp16_agreement)]
        return [("agreement", ">=", self.quant_agreement), ("accuracy_drop", "<=", self.quant_acc_drop)]

    def describe(self, precision: str) -> str:
        return ", ".join(f"{_METRIC_NAMES[m]} {op} {_fmt_metric(m, t)}" for m, op, t in self.checks(precision))


#: Valid range of each gate: probabilities differ by 0..1, agreement and accuracy drop are fractions.
_GATE_RANGES = {"fp32_max_abs": (0.0, 1.0), "fp32_agreement": (0.0, 1.0), "fp16_max_abs": (0.0, 1.0),
                "fp16_agreement": (0.0, 1.0), "quant_agreement": (0.0, 1.0), "quant_acc_drop": (0.0, 1.0),
                "consumer_agreement": (0.0, 1.0)}
_GATE_OPTIONS = {"fp32_max_abs": "--gate-fp32-max-abs", "fp16_max_abs": "--gate-fp16-max-abs",
                 "fp16_agreement": "--gate-fp16-agreement", "quant_agreement": "--gate-int8-agreement",
                 "quant_acc_drop": "--gate-int8-acc-drop", "consumer_agreement": "--gate-consumer"}
_GATE_MEANING = {"fp32_max_abs": "a probability difference", "fp16_max_abs": "a probability difference",
                 "fp32_agreement": "a fraction: 0.98 = 98 %", "fp16_agreement": "a fraction: 0.98 = 98 %",
                 "quant_agreement": "a fraction: 0.98 = 98 %", "quant_acc_drop": "a fraction: 0.01 = 1 point",
                 "consumer_agreement": "a fraction: 0.99 = 99 %"}
_METRIC_NAMES = {"max_abs": "max |Δp|", "agreement": "top-1 agreement", "accuracy_drop": "accuracy drop"}


def _fmt_metric(metric: str, value: float) -> str:
    if metric == "max_abs":
        return f"{value:.2e}"
    if metric == "agreement":
        return f"{100 * value:.1f}%"
    return f"{100 * value:.2f} pts"


# ---------------------------------------------------------------------- reference data
@dataclass
class Reference:
    """Inputs and the reference model's outputs for them.

    Attributes:
        inputs: uint8 NHWC pixels, preprocessed with the card's spec (:func:`edgecnn.imaging.preprocess`).
        probs: Reference probabilities (N, num_classes).
        targets: True class indices, or None for unlabelled data.
        labels: Class labels.
        source: Where the reference came from (model file or golden file).
    """

    inputs: np.ndarray
    probs: np.ndarray
    targets: np.ndarray | None
    labels: list[str]
    source: str = ""
    source_sha256: str | None = None  # SHA-256 of the model the outputs came from (golden files record it)
    spec: dict[str, Any] | None = None  # that model's input spec and preprocessing (golden files record it)


def load_images(files: LabelledFiles, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """Decode and preprocess labelled files as the model expects: (uint8 NHWC, targets). Unreadable files are skipped."""
    spec, pre = card.input, card.preprocessing
    xs, ys = [], []
    for f, t in zip(files.files, files.targets):
        try:
            xs.append(load_image(f, spec.height, spec.width, pre.color, pre.resize, pre.resize_mode))
        except UnreadableImageError:
            continue
        ys.append(t)
    if not xs:
        raise DataError("No readable images in the data given for parity.")
    return np.stack(xs).astype(np.uint8), np.asarray(ys, dtype=np.int64)


def load_folder(folder: str | os.PathLike[str], card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """A class-folder dataset (classes must be the model's labels) as (uint8 NHWC, targets)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Expected a folder of class sub-folders for parity data; {folder} is not a folder.")
    files = scan_labelled_folder(folder, labels=card.labels)
    if not files.files:
        raise DataError(f"Parity data folder {folder} holds no images.")
    return load_images(files, card)


def save_golden(path: str | os.PathLike[str], ref: Reference, limit: int = GOLDEN_MAX) -> Path:
    """Write ``golden.npz``: up to ``limit`` inputs spread over the data, the reference outputs, targets and labels."""
    from edgecnn.fileio import atomic_path

    n = len(ref.inputs)
    idx = np.unique(np.linspace(0, n - 1, num=min(n, limit)).round().astype(int)) if n else np.arange(0)
    arrays = {
        "inputs": ref.inputs[idx].astype(np.uint8),
        "outputs": ref.probs[idx].astype(np.float32),
        "labels": np.asarray(ref.labels, dtype=str),
    }
    if ref.targets is not None:
        arrays["targets"] = ref.targets[idx].astype(np.int64)
    if ref.source_sha256:
        arrays["source_sha256"] = np.asarray(ref.source_sha256, dtype=str)
    if ref.spec:
        import json

        arrays["input_spec"] = np.asarray(json.dumps(ref.spec, sort_keys=True), dtype=str)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)


def load_golden(path: str | os.PathLike[str]) -> Reference:
    """Read a ``golden.npz`` written by ``edgecnn export``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Golden file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            inputs, outputs = z["inputs"], z["outputs"]
            targets = z["targets"] if "targets" in z.files else None
            labels = [str(s) for s in z["labels"]] if "labels" in z.files else []
            sha = str(z["source_sha256"]) if "source_sha256" in z.files else None
            spec = _json_spec(str(z["input_spec"])) if "input_spec" in z.files else None
    except Exception as exc:  # noqa: BLE001  (truncated zip: BadZipFile/EOFError/zlib.error; a bare .npy: AttributeError)
        raise DataError(f"{path.name} is not an edgecnn golden file (expected an .npz with inputs/outputs arrays; "
                        f"truncated or another file?): {exc}") from exc
    if inputs.ndim != 4 or inputs.dtype != np.uint8 or len(inputs) != len(outputs):
        raise DataError(f"{path.name}: expected uint8 NHWC inputs and one output row per input; "
                        f"received inputs {inputs.dtype}{inputs.shape}, outputs {outputs.shape}.")
    return Reference(inputs=inputs, probs=outputs.astype(np.float32), targets=targets, labels=labels, source=str(path),
                     source_sha256=sha, spec=spec)


def _json_spec(text: str) -> dict[str, Any] | None:
    import json

    data = json.loads(text)
    return data if isinstance(data, dict) else None


def golden_spec(card: ModelCard) -> dict[str, Any]:
    """What a golden file records of its model's input: size, channels, colour, resize."""
    return {"height": card.input.height, "width": card.input.width, "channels": card.input.channels,
            "color": card.preprocessing.color, "resize": card.preprocessing.resize}


def check_golden_matches(path: Path, card: ModelCard, ref: Reference) -> None:
    """Refuse to compare an artifact with a golden file made from another model (named as such, not as a failed gate).

    Raises:
        DataError: the artifact's recorded source model (``provenance.source_sha256``) or input spec differs from the
            golden file's.
    """
    if not ref.source_sha256 and not ref.spec:
        return
    where = Path(ref.source).name or GOLDEN_FILENAME
    theirs = (card.provenance or {}).get("source_sha256")
    if ref.source_sha256 and theirs and theirs != ref.source_sha256:
        raise DataError(
            f"{where} was made from another model than {path.name} (source SHA-256 {ref.source_sha256[:12]}… vs "
            f"{str(theirs)[:12]}…): a golden/model mismatch, not a quantization failure. Check {path.name} against "
            f"the {GOLDEN_FILENAME} exported with it.")
    if ref.spec:
        mine = golden_spec(card)
        diff = [f"{k} {ref.spec.get(k)!r} vs {mine[k]!r}" for k in mine if k in ref.spec and ref.spec[k] != mine[k]]
        if diff:
            raise DataError(f"{where} was made for other inputs than {path.name} ({', '.join(diff)}): a golden/model "
                            f"mismatch. Check {path.name} against the {GOLDEN_FILENAME} exported with it.")


def reference_from_model(model: str | os.PathLike[str], inputs: np.ndarray, targets: np.ndarray | None,
                         unsafe: bool = False, conventions: Any = None) -> Reference:
    """Run a reference model (usually the ``.keras``) on ``inputs`` through its backend."""
    from edgecnn.runtime.backends import load_backend

    with load_backend(model, unsafe=unsafe, conventions=conventions) as backend:
        probs = backend.predict(inputs)
        labels = backend.labels
    return Reference(inputs=inputs, probs=probs, targets=targets, labels=list(labels), source=str(model))


# ---------------------------------------------------------------------- comparison
def compare(ref: np.ndarray, cand: np.ndarray, targets: np.ndarray | None = None) -> dict[str, float | None]:
    """Parity figures of candidate probabilities against reference probabilities."""
    ref = np.asarray(ref, dtype=np.float32)
    cand = np.asarray(cand, dtype=np.float32)
    if ref.shape != cand.shape:
        raise ModelError(f"Candidate outputs have shape {cand.shape}; the reference has {ref.shape}.")
    diff = np.abs(ref - cand)
    top_ref, top_cand = ref.argmax(1), cand.argmax(1)
    out: dict[str, float | None] = {
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "agreement": float((top_ref == top_cand).mean()) if len(ref) else 1.0,
        "accuracy_reference": None,
        "accuracy": None,
        "accuracy_drop": None,
    }
    if targets is not None and len(targets):
        acc_ref = float((top_ref == targets).mean())
        acc = float((top_cand == targets).mean())
        out |= {"accuracy_reference": acc_ref, "accuracy": acc, "accuracy_drop": acc_ref - acc}
    return out


def evaluate_gates(figures: dict[str, float | None], precision: str, gates: Gates) -> list[str]:
    """Failure messages (empty when every gate passes), each saying by how much."""
    failures = []
    for metric, op, threshold in gates.checks(precision):
        value = figures.get(metric)
        if value is None:
            continue
        bad = value > threshold if op == "<=" else value < threshold
        if bad:
            if metric == "max_abs":
                by = f"{value / threshold:.1f}× the limit" if threshold else "limit 0"
            else:
                by = f"off by {100 * abs(value - threshold):.2f} pts"
            failures.append(f"{_METRIC_NAMES[metric]} {_fmt_metric(metric, value)} (gate {op} {_fmt_metric(metric, threshold)}, {by})")
    return failures


def check_artifact(path: str | os.PathLike[str], ref: Reference, gates: Gates | None = None,
                   precision: str | None = None, fmt: str | None = None, **backend_kwargs: Any) -> ParityResult:
    """Run ``path`` with its real runtime on the reference inputs and gate the figures."""
    from edgecnn.runtime.backends import load_backend

    gates = gates or Gates()
    path = Path(path)
    with load_backend(path, **backend_kwargs) as backend:
        card = backend.card
        check_golden_matches(path, card, ref)
        if ref.labels and card.labels and len(card.labels) != len(ref.labels):
            raise ModelError(f"{path.name} has {len(card.labels)} classes; the reference has {len(ref.labels)}.")
        spec = card.input
        if tuple(ref.inputs.shape[1:]) != (spec.height, spec.width, spec.channels):
            raise ModelError(f"{path.name} takes {spec.height}×{spec.width}×{spec.channels} inputs; the reference data is "
                             f"{'×'.join(map(str, ref.inputs.shape[1:]))}.")
        probs = backend.predict(ref.inputs)
        runtime = backend.info()
    precision = precision or str(card.artifact.get("precision") or FULL_PRECISION)
    fmt = fmt or str(card.artifact.get("format") or path.suffix.lstrip("."))
    figures = compare(ref.probs, probs, ref.targets)
    failures = evaluate_gates(figures, precision, gates)
    return ParityResult(
        artifact=path.name, path=str(path), format=fmt, precision=precision, samples=len(ref.inputs),
        passed=not failures, gate=gates.describe(precision), failures=failures, runtime=runtime,
        size_bytes=path_size(path), **figures,  # type: ignore[arg-type]
    )


def fill_size_ratios(results: list[ParityResult]) -> None:
    """Set ``size_ratio`` of each result to its size over the float32 artifact of the same format."""
    base = {r.format: r.size_bytes for r in results if r.precision == FULL_PRECISION and r.size_bytes}
    for r in results:
        if r.size_bytes and base.get(r.format):
            r.size_ratio = r.size_bytes / base[r.format]


# ---------------------------------------------------------------------- on demand
def parity(
    candidates: list[str | os.PathLike[str]],
    reference: str | os.PathLike[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    golden: str | os.PathLike[str] | None = None,
    gates: Gates | None = None,
    unsafe: bool = False,
    conventions: Any = None,
) -> list[ParityResult]:
    """Compare artifacts with a reference model on a labelled folder, or with a golden file (TF-free).

    Args:
        candidates: ``.tflite``/``.onnx`` files (or anything :func:`load_backend` runs).
        reference: The reference model (a ``.keras``); needed with ``data``.
        data: A class-folder dataset; the classes must be the model's labels.
        golden: A ``golden.npz`` from ``edgecnn export`` (no TensorFlow needed).
        gates: Thresholds; defaults to :class:`Gates`.
        unsafe: Allow a reference ``.keras`` with Lambda layers.
        conventions: Input conventions (:class:`edgecnn.conventions.Conventions`) of a reference and candidates
            made elsewhere; with ``data``, a reference that carries no card is read from its graph and metadata.

    Raises:
        ConfigError: neither or both of ``data`` and ``golden``; ``data`` without ``reference``.
    """
    if not candidates:
        raise ConfigError("Expected at least one model to check; received none.")
    for c in candidates:
        if not Path(c).exists():
            raise ModelError(f"Model not found: {c}")
    if golden is not None and data is not None:
        raise ConfigError("Give either --data DIR or --golden FILE, not both.")
    if golden is None and data is None:
        beside = Path(candidates[0]).parent / GOLDEN_FILENAME
        if not beside.exists():
            raise ConfigError(f"Expected --golden FILE or --data DIR (with --reference); no {GOLDEN_FILENAME} beside {candidates[0]}.")
        golden = beside
    if golden is not None:
        ref = load_golden(golden)
        if reference is not None:  # re-run the reference on the golden inputs instead of trusting stored outputs
            ref = reference_from_model(reference, ref.inputs, ref.targets, unsafe=unsafe, conventions=conventions)
    else:
        if reference is None:
            raise ConfigError("--data needs --reference MODEL (the .keras to compare with); or use --golden FILE.")
        from edgecnn.modelcard import load_card

        card = None if conventions is not None else load_card(reference) or load_card(candidates[0])
        if card is None:  # a model made elsewhere: the card its backend builds (graph, metadata, conventions)
            from edgecnn.runtime.backends import load_backend

            with load_backend(reference, unsafe=unsafe, conventions=conventions) as backend:
                card = backend.card
        x, y = load_folder(data, card)
        ref = reference_from_model(reference, x, y, unsafe=unsafe, conventions=conventions)
    results = [check_artifact(c, ref, gates, conventions=conventions) for c in candidates]
    fill_size_ratios(results)
    return results
