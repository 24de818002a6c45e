"""``edgecnn export``: a trained Keras model → TFLite / ONNX / SavedModel artifacts that prove they match it.

The conversion itself lives in :mod:`converters` (which knows nothing of edgecnn); this module resolves the
source (run folder or ``.keras``), draws calibration images from the run's TRAIN split (never test data),
embeds the model card with provenance, writes ``golden.npz`` from held-out data, checks parity of every
artifact with its real runtime and writes ``export_report.json``/``.md``.

Example:
    >>> report = export("runs/train/exp", formats=["tflite", "onnx"], quantize=["none", "int8"])
    >>> report.raise_for_gates()   # ParityError when an artifact failed its gate
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn import __version__
from edgecnn.console import info, warn
from edgecnn.errors import ArtifactExistsError, ConfigError, DataError, ModelError, ParityError
from edgecnn.fileio import sha256_file, write_json, write_text
from edgecnn.imaging import LabelledFiles, scan_labelled_folder
from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing, load_card
from edgecnn.parity import (
    GOLDEN_FILENAME,
    GOLDEN_MAX,
    Gates,
    ParityResult,
    Reference,
    check_artifact,
    compare,
    evaluate_gates,
    failure_summary,
    fill_size_ratios,
    load_folder,
    load_images,
    markdown_table,
    save_golden,
)
from edgecnn.runs import heldout_split, load_split, resolve_run

REPORT_JSON = "export_report.json"
REPORT_MD = "export_report.md"
KERAS_SUFFIXES = (".keras", ".h5")
DEFAULT_CALIB_SAMPLES = 300


# ---------------------------------------------------------------------- planning (registry-driven)
def plan_targets(formats: list[str], quantize: list[str], io_dtype: str | None = None) -> list[tuple[str, str]]:
    """(format, precision) pairs to write, from ``--format``/``--quantize`` values, validated against the registry.

    ``all`` expands to every format / every precision that fits. A pair named explicitly that does not fit
    (``--format saved_model --quantize int8``) is an error; pairs produced by ``all`` that do not fit are skipped.

    Raises:
        ConfigError: unknown value, an explicit combination the registry does not allow, or ``io_dtype``
            without int8.
    """
    from converters.registry import FORMATS, IO_DTYPES, PRECISIONS, precision_name

    formats = [f.lower() for f in (formats or ["tflite"])]
    quantize = [q.lower() for q in (quantize or ["none"])]
    for f in formats:
        if f != "all" and f not in FORMATS:
            raise ConfigError(f"Unknown format {f!r}; expected all or one of {list(FORMATS)}.")
    precisions: list[str] = []
    for q in quantize:
        if q == "all":
            precisions += list(PRECISIONS)
            continue
        try:
            precisions.append(precision_name(q))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    precisions = list(dict.fromkeys(precisions))
    fmts = list(dict.fromkeys(FORMATS if "all" in formats else formats))
    explicit_f, explicit_q = "all" not in formats, "all" not in quantize
    pairs: list[tuple[str, str]] = []
    for f in fmts:
        for p in precisions:
            if p in FORMATS[f].precisions:
                pairs.append((f, p))
            elif explicit_f and explicit_q:
                raise ConfigError(
                    f"--format {f} cannot be written with --quantize {PRECISIONS[p].alias}; "
                    f"{f} supports {[PRECISIONS[x].alias for x in FORMATS[f].precisions]}."
                )
    if not pairs:
        raise ConfigError(f"Nothing to export: no precision in {quantize} fits formats {fmts}.")
    if io_dtype is not None:
        if io_dtype not in IO_DTYPES:
            raise ConfigError(f"--io-dtype must be one of {list(IO_DTYPES)}; received {io_dtype!r}.")
        if ("tflite", "int8") not in pairs:
            raise ConfigError("--io-dtype applies to full-int8 TFLite only; add --quantize int8 --format tflite or drop --io-dtype.")
    return pairs


# ---------------------------------------------------------------------- source
@dataclass
class Source:
    """The model being exported and where its data lives."""

    run_dir: Path
    model_path: Path
    model: Any
    card: ModelCard
    sha256: str
    card_synthesized: bool = False


def load_keras(path: Path, unsafe: bool = False) -> Any:
    """Load a Keras model with ``safe_mode`` on (Lambda layers refused unless ``unsafe``).

    Raises:
        ModelError: not a Keras model, a Lambda layer without ``unsafe``, or an unknown custom layer (named).
    """
    from edgecnn.errors import require

    require("tensorflow", "train", "to export Keras models")
    import zipfile

    import keras

    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise ModelError(f"{path.name} is not a loadable Keras model: a .keras file is a zip archive and this one "
                         f"is not ({path.stat().st_size} bytes; truncated or another format?).")

    try:
        return keras.models.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as exc:  # noqa: BLE001  (Keras raises ValueError, TypeError, OSError, zipfile errors...)
        msg = str(exc)
        first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
        if "safe_mode" in msg or "Lambda" in msg:
            raise ModelError(
                f"{path.name} contains a Lambda layer (arbitrary Python code); refusing to load it with safe_mode. "
                "Pass --unsafe only if you trust this file."
            ) from exc
        import re

        m = re.search(r"Could not (?:locate|deserialize) (?:class|function) '?([\w.]+)'?", msg)
        if m:
            raise ModelError(
                f"{path.name} uses layer class {m.group(1)!r}, which this Keras cannot build (custom layer not "
                "registered); export it from the code that defines it, or replace the layer."
            ) from exc
        raise ModelError(f"{path.name} is not a loadable Keras model: {first[:200]}") from exc


def resolve_source(source: str | os.PathLike[str], unsafe: bool = False) -> Source:
    """Run folder or ``.keras``/``.h5`` file → loaded model + its card (labels ``class_N`` and a warning when absent)."""
    run_dir, model_path = resolve_run(source)
    if model_path.suffix.lower() not in KERAS_SUFFIXES:
        raise ModelError(f"Expected a run folder or a Keras model ({'/'.join(KERAS_SUFFIXES)}); received {model_path.name}.")
    card = load_card(model_path)
    synthesized = card is None
    model = load_keras(model_path, unsafe=unsafe)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{model_path.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "edgecnn exports single-input, single-output image classifiers.")
    shape = tuple(model.inputs[0].shape)
    units = int(model.outputs[0].shape[-1])
    if len(shape) != 4 or shape[3] not in (1, 3) or not shape[1] or not shape[2]:
        raise ModelError(f"{model_path.name} takes input shape {shape}; expected (batch, height, width, 1|3).")
    if card is None:
        n = 2 if units == 1 else units
        from edgecnn.imaging import color_for_channels

        color = color_for_channels(int(shape[3]))
        warn(f"No modelcard.json beside {model_path.name}; using labels class_0..class_{n - 1} and "
             f"{'RGB' if color == 'rgb' else 'grayscale'}/area preprocessing.")

        card = ModelCard(
            labels=[f"class_{i}" for i in range(n)],
            input=InputSpec(height=int(shape[1]), width=int(shape[2]), channels=int(shape[3])),
            output=OutputSpec(activation="sigmoid" if units == 1 else "softmax", units=units),
            preprocessing=Preprocessing(color=color),
            name=model_path.stem,
        )
    expected_units = 1 if card.output.activation == "sigmoid" else card.num_classes
    if units != expected_units:
        raise ModelError(f"{model_path.name} outputs {units} units but its card lists {card.num_classes} labels.")
    if card.input_shape != tuple(int(v) for v in shape[1:]):
        raise ModelError(f"{model_path.name} takes {shape[1:]} but its card says {card.input_shape}.")
    return Source(run_dir=run_dir, model_path=model_path, model=model, card=card, sha256=sha256_file(model_path),
                  card_synthesized=synthesized)


# ---------------------------------------------------------------------- data
def stratified(files: LabelledFiles, limit: int, seed: int = 0) -> LabelledFiles:
    """At most ``limit`` files, balanced over classes (round-robin over shuffled per-class lists)."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(files.targets):
        by_class.setdefault(t, []).append(i)
    queues = [list(rng.permutation(ix)) for _, ix in sorted(by_class.items())]
    chosen: list[int] = []
    while len(chosen) < limit and any(queues):
        for q in queues:
            if q and len(chosen) < limit:
                chosen.append(int(q.pop()))
    chosen.sort()
    targets = [files.targets[i] for i in chosen]
    return LabelledFiles(labels=files.labels, files=[files.files[i] for i in chosen], targets=targets,
                         per_class={lbl: targets.count(k) for k, lbl in enumerate(files.labels)})


def calibration_set(src: Source, calib_data: str | os.PathLike[str] | None, samples: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Representative images for int8: ``calib_data`` if given, else the run's TRAIN split (never test data).

    Raises:
        DataError: folder missing/empty, a different number of classes than the model, or no train split.
    """
    if samples < 1:
        raise ConfigError(f"--calib-samples must be ≥ 1; received {samples}.")
    card = src.card
    if calib_data is not None:
        folder = Path(calib_data)
        if not folder.is_dir():
            raise DataError(f"Calibration folder not found: {folder}")
        found = scan_labelled_folder(folder)
        if not found.files:
            raise DataError(f"Calibration folder {folder} holds no images; expected class sub-folders with training images.")
        if len(found.labels) != card.num_classes:
            raise DataError(f"Calibration folder {folder} has {len(found.labels)} classes {found.labels}; the model has "
                            f"{card.num_classes} {card.labels}. Point --calib-data at the training data.")
        files = scan_labelled_folder(folder, card.labels) if set(found.labels) <= set(card.labels) else found
        origin = str(folder)
    else:
        files = load_split(src.run_dir, "train")
        if files is None:
            raise DataError(f"{src.model_path.name} has no training split (splits.json) to calibrate int8 on; "
                            "give --calib-data DIR (training images in class folders).")
        origin = f"{src.run_dir}/splits.json:train"
    picked = stratified(files, samples)
    x, _ = load_images(picked, card)
    return x, {"source": origin, "samples": int(len(x)), "per_class": picked.per_class}


def heldout_set(src: Source, check_data: str | os.PathLike[str] | None) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Held-out images for parity and golden.npz: ``check_data`` if given, else the run's test (else val) split."""
    if check_data is not None:
        if src.card_synthesized:  # numeric labels: class folders map to indices in sorted order, as training did
            folder = Path(check_data)
            if not folder.is_dir():
                raise DataError(f"--check-data {folder} is not a folder of class sub-folders.")
            files = scan_labelled_folder(folder)
            if len(files.labels) != src.card.num_classes:
                raise DataError(f"--check-data {folder} has {len(files.labels)} classes; the model has {src.card.num_classes}.")
            x, y = load_images(files, src.card)
        else:
            x, y = load_folder(check_data, src.card)
        return x, y, str(check_data)
    files = heldout_split(src.run_dir)
    if files is None:
        return None
    x, y = load_images(files, src.card)
    return x, y, f"{src.run_dir}/splits.json:{'test' if load_split(src.run_dir, 'test') else 'val'}"


def keras_probs(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Keras probabilities for uint8 NHWC inputs (sigmoid heads expanded to [1-p, p])."""
    outs = [np.asarray(model(x[i : i + batch].astype(np.float32), training=False)) for i in range(0, len(x), batch)]
    out = np.concatenate(outs).astype(np.float32).reshape(len(x), -1)
    if out.shape[1] == 1:
        out = np.concatenate([1.0 - out, out], axis=1)
    return out


# ---------------------------------------------------------------------- report
@dataclass
class ExportReport:
    """What :func:`export` wrote and how each artifact compared with the Keras model."""

    source: str
    out_dir: Path
    results: list[ParityResult]
    checked: bool
    golden: Path | None
    report_json: Path
    report_md: Path
    commands: list[str] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    check_data: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results if r.checked)

    def artifacts(self) -> dict[str, Path]:
        """``"<format>-<precision>"`` → artifact path."""
        return {f"{r.format}-{r.precision}": Path(r.path) for r in self.results}

    def raise_for_gates(self) -> None:
        """Raise :class:`ParityError` naming every artifact that failed its gate and by how much."""
        if self.checked and not self.passed:
            raise ParityError(f"{failure_summary(self.results)} (details: {self.report_md})")


def _next_commands(out_dir: Path, results: list[ParityResult], golden: Path | None) -> list[str]:
    order = {"int8": 0, "float16": 1, "dynamic": 2, "float32": 3}
    runnable = sorted((r for r in results if r.format in ("tflite", "onnx")), key=lambda r: order.get(r.precision, 9))
    cmds = []
    if runnable:
        best = Path(runnable[0].path)
        cmds.append(f"edgecnn run {best} --source path/to/images")
        cmds.append(f"edgecnn run {best} --camera 0")
        cmds.append(f"edgecnn info {best}")
    cmds.append(f"edgecnn bench {out_dir}")
    if golden is not None and runnable:
        cmds.append(f"edgecnn parity {' '.join(str(Path(r.path)) for r in runnable)} --golden {golden}")
    return cmds


def _write_reports(report: ExportReport, options: dict[str, Any], gates: Gates) -> None:
    data = {
        "edgecnn_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": report.source,
        "out_dir": str(report.out_dir),
        "options": options,
        "gates": gates.__dict__,
        "checked": report.checked,
        "passed": report.passed if report.checked else None,
        "golden": str(report.golden) if report.golden else None,
        "calibration": report.calibration,
        "check_data": report.check_data,
        "artifacts": [r.to_dict() for r in report.results],
        "commands": report.commands,
    }
    write_json(report.report_json, data)
    lines = [f"# Export report — {Path(report.source).name}", "",
             f"Source: `{report.source}`  ", f"edgecnn {__version__}, {data['created']}", ""]
    if report.check_data:
        lines.append(f"Parity data: {report.check_data['samples']} held-out images from `{report.check_data['source']}`  ")
    if report.calibration:
        lines.append(f"int8 calibration: {report.calibration['samples']} images from `{report.calibration['source']}`  ")
    lines += ["", markdown_table(report.results)]
    if not report.checked:
        lines.append("**Parity was not checked (--no-check).**\n")
    elif report.passed:
        lines.append("All artifacts passed their parity gates.\n")
    else:
        lines.append("## Failed gates\n")
        for r in report.results:
            if r.checked and not r.passed:
                lines.append(f"- **{r.artifact}** ({r.gate}): " + "; ".join(r.failures))
                if r.layer_errors:
                    lines.append("  - layers with the largest quantization error (RMSE / scale):")
                    lines += [f"    - `{e.get('layer') or e.get('tensor')}` ({e.get('op', '')}): {e['rmse_per_scale']:.2f}"
                              for e in r.layer_errors]
        lines.append("")
    lines += ["## Gates", ""] + [f"- {p}: {gates.describe(p)}" for p in ("float32", "float16", "int8")] + [""]
    lines += ["## Next", "", "```sh", *report.commands, "```", ""]
    write_text(report.report_md, "\n".join(lines))


# ---------------------------------------------------------------------- main entry
def export(
    source: str | os.PathLike[str],
    formats: list[str] | None = None,
    quantize: list[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    check: bool = True,
    check_data: str | os.PathLike[str] | None = None,
    calib_data: str | os.PathLike[str] | None = None,
    calib_samples: int = DEFAULT_CALIB_SAMPLES,
    io_dtype: str | None = None,
    opset: int = 17,
    dynamic_batch: bool = False,
    unsafe: bool = False,
    gates: Gates | None = None,
    golden_samples: int = GOLDEN_MAX,
    targets: list[tuple[str, str]] | None = None,
) -> ExportReport:
    """Export a run folder or ``.keras`` model to every requested (format, precision) and check parity.

    Everything that can be validated is validated before any conversion starts, so a bad option writes
    nothing. Gate failures do not raise here (the report and artifacts are written so a user can look);
    call :meth:`ExportReport.raise_for_gates` (the CLI does) to turn them into a :class:`ParityError`.

    Args:
        source: Run folder (``runs/train/exp``) or ``.keras``/``.h5`` file.
        formats: ``tflite``, ``onnx``, ``saved_model`` or ``all`` (default ``["tflite"]``).
        quantize: ``none``, ``fp16``, ``dynamic``, ``int8`` or ``all`` (default ``["none"]``).
        out: Output folder (default ``<run folder>/export``).
        force: Overwrite existing artifacts.
        check: Run the parity check (``--no-check`` skips it, and the report says so).
        check_data: Labelled class-folder for parity (default: the run's test split, else val).
        calib_data: Class-folder of training images for int8 calibration (default: the run's train split).
        calib_samples: Number of calibration images, stratified over classes.
        io_dtype: Input/output type of int8 TFLite: ``int8`` (default), ``uint8`` or ``float32``.
        opset: ONNX opset.
        dynamic_batch: ONNX with a symbolic batch dimension.
        unsafe: Allow Keras models with Lambda layers (``safe_mode`` off).
        gates: Parity thresholds.
        golden_samples: Inputs kept in ``golden.npz`` (≤ 64 by default).
        targets: Exact (format, precision) pairs to write, instead of the ``formats`` × ``quantize`` product
            (``edgecnn demo`` uses it for TFLite fp32/fp16/int8 + ONNX fp32/int8 in one report).
    """
    import converters
    from converters.registry import FORMATS, PRECISIONS, artifact_name

    gates = gates or Gates()
    if targets is None:
        pairs = plan_targets(list(formats or ["tflite"]), list(quantize or ["none"]), io_dtype)
    else:
        pairs = [pair for f, p in targets for pair in plan_targets([f], [p], None)]
    run_dir, model_path = resolve_run(source)
    out_dir = Path(out) if out is not None else run_dir / "export"
    planned = {pair: out_dir / artifact_name(*pair) for pair in pairs}
    existing = [p for p in planned.values() if p.exists()]
    if existing and not force:
        raise ArtifactExistsError(f"{len(existing)} artifact(s) exist in {out_dir} (first: {existing[0].name}); "
                                  "pass --force to overwrite or --out DIR.")
    src = resolve_source(source, unsafe=unsafe)
    needs_calib = any(PRECISIONS[p].calibration for _, p in pairs)
    calib, calib_info = calibration_set(src, calib_data, calib_samples) if needs_calib else (None, None)
    held = heldout_set(src, check_data)
    if held is None and check:
        raise DataError(f"{src.model_path.name} has no held-out split (splits.json test/val) to check parity on; "
                        "give --check-data DIR (labelled class folders) or --no-check.")
    if not check:
        warn("--no-check: parity of the exported artifacts is NOT verified.")

    ref: Reference | None = None
    if held is not None:
        x, y, origin = held
        ref = Reference(inputs=x, probs=keras_probs(src.model, x), targets=y, labels=src.card.labels, source=str(src.model_path))
    base = src.card.to_dict()
    base["provenance"] = {
        **(src.card.provenance or {}),
        "source": str(src.model_path.resolve()),
        "source_sha256": src.sha256,
        "edgecnn_version": __version__,
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    base["artifact"] = {}

    written = [*planned.values(), out_dir / GOLDEN_FILENAME, out_dir / REPORT_JSON, out_dir / REPORT_MD]
    with _undo_on_failure(out_dir, written):
        out_dir.mkdir(parents=True, exist_ok=True)
        results: list[ParityResult] = []
        for (fmt, precision), path in planned.items():
            info(f"Exporting {path.name} ...")
            # --io-dtype is the int8 TFLite model's I/O type; every other artifact keeps float32 I/O
            options = converters.ConvertOptions(io_dtype=io_dtype if (fmt, precision) == ("tflite", "int8") else None,
                                                opset=opset, dynamic_batch=dynamic_batch)
            try:
                done = converters.convert(src.model, fmt, precision, path, calibration=calib, metadata=base,
                                          labels=src.card.labels, options=options)
            except converters.ConversionError as exc:
                raise ModelError(f"{src.model_path.name} cannot be exported to {fmt} {precision}: {exc}") from exc
            except converters.CalibrationError as exc:
                raise DataError(str(exc)) from exc
            result = _check(done.path, fmt, precision, ref, gates, check)
            result.conversion_seconds = round(done.seconds, 3)
            result.size_bytes = done.size_bytes
            if check and not result.passed and fmt == "tflite" and precision == "int8" and calib is not None and ref is not None:
                result.layer_errors = _layer_errors(src.model, calib, ref.inputs, io_dtype)
                if result.layer_errors:
                    worst = result.layer_errors[0]
                    result.failures.append(f"largest quantization error in layer {worst.get('layer') or worst['tensor']!r} "
                                           f"({worst['op']}, RMSE {worst['rmse_per_scale']:.1f}× its quantization step)")
            results.append(result)
        fill_size_ratios(results)

        golden = None
        if ref is not None and golden_samples > 0:
            golden = save_golden(out_dir / GOLDEN_FILENAME, ref, limit=golden_samples)
        elif ref is None:
            warn("No held-out data: golden.npz not written (give --check-data DIR to write it).")
        report = ExportReport(
            source=str(src.model_path), out_dir=out_dir, results=results, checked=check and ref is not None,
            golden=golden, report_json=out_dir / REPORT_JSON, report_md=out_dir / REPORT_MD,
            calibration=calib_info,
            check_data={"source": held[2], "samples": int(len(held[0]))} if held is not None else None,
        )
        report.commands = _next_commands(out_dir, results, golden)
        opts = {"formats": sorted({f for f, _ in pairs}, key=list(FORMATS).index), "precisions": sorted({p for _, p in pairs}),
                "io_dtype": io_dtype, "opset": opset, "dynamic_batch": dynamic_batch, "calib_samples": calib_samples,
                "force": force, "check": check}
        _write_reports(report, opts, gates)
    return report


@contextlib.contextmanager
def _undo_on_failure(out_dir: Path, paths: list[Path]) -> Iterator[None]:
    """Remove what this export wrote if it fails or is interrupted half-way (Ctrl-C, a converter error).

    A partial export (some artifacts, no report or golden) would look complete to ``edgecnn run``/``bench`` and
    block the next attempt without ``--force``. Files that existed before and were not rewritten are kept.
    """
    def stamp(p: Path) -> tuple[int, int] | None:
        try:
            st = p.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    created_dir = not out_dir.exists()
    before = {p: stamp(p) for p in paths}
    try:
        yield
    except BaseException:
        for p in paths:
            now = stamp(p)
            if now is not None and now != before[p]:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        if created_dir:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise


def _check(path: Path, fmt: str, precision: str, ref: Reference | None, gates: Gates, check: bool) -> ParityResult:
    if not check or ref is None:
        return ParityResult(artifact=path.name, path=str(path), format=fmt, precision=precision, samples=0,
                            max_abs=float("nan"), mean_abs=float("nan"), agreement=float("nan"),
                            accuracy_reference=None, accuracy=None, accuracy_drop=None, passed=True,
                            gate=gates.describe(precision), checked=False)
    if fmt == "saved_model":
        return _check_saved_model(path, precision, ref, gates)
    return check_artifact(path, ref, gates, precision=precision, fmt=fmt)


def _check_saved_model(path: Path, precision: str, ref: Reference, gates: Gates) -> ParityResult:
    """SavedModels have no edge runtime backend: run their ``serve`` endpoint with TensorFlow."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    outs = [np.asarray(loaded.serve(tf.constant(ref.inputs[i : i + 64].astype(np.float32))))
            for i in range(0, len(ref.inputs), 64)]
    probs = np.concatenate(outs).reshape(len(ref.inputs), -1)
    if probs.shape[1] == 1:
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    figures = compare(ref.probs, probs, ref.targets)
    failures = evaluate_gates(figures, precision, gates)
    return ParityResult(artifact=path.name, path=str(path), format="saved_model", precision=precision,
                        samples=len(ref.inputs), passed=not failures, gate=gates.describe(precision), failures=failures,
                        runtime={"backend": "tensorflow", "runtime_version": tf.__version__}, **figures)  # type: ignore[arg-type]


def _layer_errors(model: Any, calib: np.ndarray, samples: np.ndarray, io_dtype: str | None) -> list[dict[str, Any]]:
    """Per-layer quantization error (TFLite QuantizationDebugger); empty with a warning if the debugger fails."""
    from converters.to_tflite import layer_errors

    t0 = time.perf_counter()
    try:
        rows = layer_errors(model, calib, samples[:32].astype(np.float32), io_dtype)
    except Exception as exc:  # noqa: BLE001  (a diagnostic must never hide the real failure)
        warn(f"Per-layer quantization debugging failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return []
    info(f"Per-layer quantization errors computed in {time.perf_counter() - t0:.1f}s.")
    return rows
