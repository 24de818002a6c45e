"""``edgecnn export``: a trained Keras model → TFLite / ONNX / SavedModel artifacts that prove they match it.

This module runs an export: it validates the plan (:mod:`.plan`), loads the source (:mod:`.source`), draws
calibration and held-out data (:mod:`.data`), converts each target with :mod:`converters` (which knows nothing of
edgecnn), checks parity of every artifact with its real runtime, writes ``golden.npz`` and the report
(:mod:`.report`). Everything is built in a hidden staging folder and published in one step after the gates, so a
failure, Ctrl-C or SIGKILL at any moment leaves the output folder as it was or the finished, checked export.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from converters.registry import IO_DTYPE_TARGET, PRECISIONS
from edgecnn import __version__
from edgecnn.console import info, warn
from edgecnn.errors import ArtifactExistsError, ConfigError, DataError, ModelError
from edgecnn.export.data import DEFAULT_CALIB_SAMPLES, calibration_set, heldout_files, heldout_set
from edgecnn.export.plan import plan_targets
from edgecnn.export.repair import DEFAULT_MAX_LAYERS
from edgecnn.export.report import REPORT_JSON, REPORT_MD, ExportReport, next_commands, write_reports
from edgecnn.export.source import resolve_source
from edgecnn.metrics import class_probs
from edgecnn.parity import (
    GOLDEN_FILENAME,
    GOLDEN_MAX,
    Gates,
    ParityResult,
    Reference,
    check_artifact,
    compare,
    evaluate_gates,
    fill_size_ratios,
    golden_spec,
    save_golden,
)
from edgecnn.runs import resolve_run
from edgecnn.runtime.backends import BACKENDS
from edgecnn.runtime.keras_model import keras_probs


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
    repair: bool = True,
    repair_layers: int = DEFAULT_MAX_LAYERS,
    target: str | None = None,
    qat_epochs: int = 0,
    qat_lr: float = 1e-4,
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
        io_dtype: Input/output type of int8 TFLite: ``uint8`` (default, :data:`converters.registry.DEFAULT_INT8_IO_DTYPE`), ``int8`` or ``float32``.
        opset: ONNX opset.
        dynamic_batch: ONNX with a symbolic batch dimension.
        unsafe: Allow Keras models with Lambda layers (``safe_mode`` off).
        gates: Parity thresholds.
        golden_samples: Inputs kept in ``golden.npz`` (≤ 64 by default).
        targets: Exact (format, precision) pairs to write, instead of the ``formats`` × ``quantize`` product
            (``edgecnn demo`` uses it for TFLite fp32/fp16/int8 + ONNX fp32/int8 in one report).
        target: A consumer preset (:data:`converters.registry.CONSUMERS`: ``opencv``): the artifacts that consumer
            runs (narrowed to ``formats`` when given), written the way it reads them, into ``<run>/export-<target>``
            unless ``out`` is given.
        repair: When a full-int8 artifact fails its gate, keep the layers with the largest quantization error in
            float until it passes (:mod:`.repair`); ``False`` (``--no-repair``) reports the failure as is.
        repair_layers: Most layers a repair may keep in float.
        qat_epochs: Fine-tune a quantization-aware twin for this many epochs on the run's training split and write
            ``model-qat.keras`` and its fully int8 ``model-qat-int8.tflite`` (:mod:`.qat`), compared in the report
            with post-training int8. Needs ``tflite`` ``int8`` among the targets and held-out data.
        qat_lr: Learning rate of that fine-tune (Adam).
    """
    import converters
    from converters.registry import FORMATS, artifact_name
    from edgecnn.fileio import fault_point, recover_dir
    from edgecnn.outputs import check_outputs

    gates = gates or Gates()
    if repair_layers < 1:
        raise ConfigError(f"--repair-layers must be ≥ 1; received {repair_layers}.")
    consumer = None
    if target is not None:
        from converters.registry import CONSUMERS

        if target not in CONSUMERS:
            raise ConfigError(f"Expected --target {' or '.join(CONSUMERS)}; received {target!r}.")
        consumer = CONSUMERS[target]
        if targets is None:  # the preset's artifacts, narrowed to the formats asked for when any was
            asked = set(formats or [f for f, _ in consumer.targets])
            targets = [t for t in consumer.targets if t[0] in asked or "all" in asked]
        if out is None:
            out = resolve_run(source)[0] / f"export-{target}"
    if targets is None:
        pairs = plan_targets(list(formats or ["tflite"]), list(quantize or ["none"]), io_dtype)
    else:
        pairs = [pair for f, p in targets for pair in plan_targets([f], [p], None)]
    from edgecnn.export import qat as qat_step

    qat_step.check_options(qat_epochs, qat_lr, pairs)
    run_dir, model_path = resolve_run(source)
    out_dir = Path(out) if out is not None else run_dir / "export"
    check_outputs({"--out": out_dir}, {"SOURCE": model_path, "--check-data": check_data, "--calib-data": calib_data},
                  folders={"--out"})
    for leftover in recover_dir(out_dir):  # a killed export's staging folder: never published, never checked
        info(f"Removed {leftover.name}, left by an export that was stopped before it finished.")
    planned = {pair: out_dir / artifact_name(*pair) for pair in pairs}
    qat_files = [out_dir / n for n in qat_step.qat_files(pairs)] if qat_epochs else []
    existing = [p for p in [*planned.values(), *qat_files] if p.exists() or (out_dir / REJECTED_DIR / p.name).exists()]
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
    train_set = None
    if qat_epochs:
        if held is None or not check:
            raise DataError("--qat-epochs checks the QAT artifact and compares it with post-training int8 on held-out "
                            "images; give --check-data DIR (or export a run with a test/val split), without --no-check.")
        train_set = qat_step.training_images(src, src.card)

    ref: Reference | None = None
    consumer_imgs, keras_top1 = None, None
    if held is not None:
        x, y, origin = held
        ref = Reference(inputs=x, probs=keras_probs(src.model, x), targets=y, labels=src.card.labels,
                        source=str(src.model_path), source_sha256=src.sha256, spec=golden_spec(src.card))
        if check:
            from edgecnn.export.consumers import consumer_images

            consumer_imgs = consumer_images(heldout_files(src, check_data), src.card)
            if not consumer_imgs.empty:
                keras_top1 = np.argmax(class_probs(keras_probs(src.model, consumer_imgs.batches["edgecnn"])), axis=1)
    base = portable_card(src.card.to_dict(), src.model_path, src.sha256)

    rewritten = {p.name for p in [*planned.values(), *qat_files]} | {GOLDEN_FILENAME, REPORT_JSON, REPORT_MD}
    with _Staging(out_dir, rewritten) as stage:
        results: list[ParityResult] = []
        for step, ((fmt, precision), final) in enumerate(planned.items(), 1):
            path = stage.dir / final.name
            info(f"[{step}/{len(planned)}] Exporting {final.name} ...")
            # --io-dtype is the int8 TFLite model's I/O type; every other artifact keeps float32 I/O
            options = converters.ConvertOptions(io_dtype=io_dtype if (fmt, precision) == IO_DTYPE_TARGET else None,
                                                opset=opset, dynamic_batch=dynamic_batch,
                                                onnx_int8_weights=consumer.onnx_int8_weights if consumer else "int8",
                                                target=target)
            def write(opts: Any = options, fmt: str = fmt, precision: str = precision, path: Path = path) -> Any:
                try:
                    return converters.convert(src.model, fmt, precision, path, calibration=calib, metadata=base,
                                              labels=src.card.labels, options=opts)
                except converters.ConversionError as exc:
                    raise ModelError(f"{src.model_path.name} cannot be exported to {fmt} {precision}: {exc}") from exc
                except converters.CalibrationError as exc:
                    raise DataError(str(exc)) from exc

            done = write()
            fault_point("export:converted")
            if check and ref is not None:
                info(f"      converted in {done.seconds:.1f}s ({done.size_bytes / 1e6:.2f} MB); checking parity on "
                     f"{len(ref.inputs)} held-out images ...")
            result = _check(done.path, fmt, precision, ref, gates, check)
            if result.checked:
                info(f"      {'PASS' if result.passed else 'FAIL'}: top-1 agreement {100 * (result.agreement or 0):.1f}%, "
                     f"max |Δp| {result.max_abs:.2e}")
            result.conversion_seconds = round(done.seconds, 3)
            result.size_bytes = done.size_bytes
            result.quantization = (done.metadata.get("artifact") or {}).get("int8")
            if (repair and check and not result.passed and PRECISIONS[precision].calibration and fmt in BACKENDS
                    and calib is not None and ref is not None):
                result = _repair(_as_converted(src), fmt, precision, path, calib, ref, gates, options, write, done, result,
                                 repair_layers)
            if check and not result.passed and fmt == "tflite" and precision == "int8" and calib is not None and ref is not None:
                result.layer_errors = _layer_errors(_as_converted(src), calib, ref.inputs, io_dtype)
                if result.layer_errors:
                    worst = result.layer_errors[0]
                    result.failures.append(f"largest quantization error in layer {worst.get('layer') or worst['tensor']!r} "
                                           f"({worst['op']}, RMSE {worst['rmse_per_scale']:.1f}× its quantization step)")
            if consumer_imgs is not None and result.checked and fmt in BACKENDS:
                from edgecnn.export.consumers import measure

                result.consumers = measure(path, consumer_imgs, keras_top1, gates.consumer_agreement)
                if result.consumers["failures"]:
                    result.failures += result.consumers["failures"]
                    result.passed = False
                    info(f"      FAIL under a consumer's resize: {'; '.join(result.consumers['failures'])}")
            # only what passed its gate is published beside the report; a failed artifact goes to rejected/
            if result.checked and not result.passed:
                stage.reject(path)
                result.path = str(out_dir / REJECTED_DIR / final.name)
                result.failures.append(f"not published: kept in {REJECTED_DIR}/ for inspection only")
            else:
                result.path = str(final)
            fault_point("export:checked")
            results.append(result)
        qat_section = None
        if qat_epochs and train_set is not None and ref is not None and calib is not None:
            qat_results, qat_section = _qat(src, calib, ref, train_set, qat_epochs, qat_lr, stage, out_dir, base,
                                            io_dtype, gates, results, pairs, opset, dynamic_batch)
            results += qat_results
        fill_size_ratios(results)

        golden = None
        if ref is not None and golden_samples > 0:
            save_golden(stage.dir / GOLDEN_FILENAME, ref, limit=golden_samples)
            golden = out_dir / GOLDEN_FILENAME
        elif ref is None:
            warn("No held-out data: golden.npz not written (give --check-data DIR to write it).")
        fault_point("export:golden")
        report = ExportReport(
            source=str(src.model_path), out_dir=out_dir, results=results, checked=check and ref is not None,
            golden=golden, report_json=out_dir / REPORT_JSON, report_md=out_dir / REPORT_MD,
            calibration=calib_info,
            check_data={"source": held[2], "samples": int(len(held[0]))} if held is not None else None,
            qat=qat_section,
        )
        report.commands = next_commands(out_dir, results, golden)
        opts = {"formats": sorted({f for f, _ in pairs}, key=list(FORMATS).index), "precisions": sorted({p for _, p in pairs}),
                "io_dtype": io_dtype, "opset": opset, "dynamic_batch": dynamic_batch, "calib_samples": calib_samples,
                "force": force, "check": check}
        staged_report = ExportReport(**{**report.__dict__, "report_json": stage.dir / REPORT_JSON,
                                        "report_md": stage.dir / REPORT_MD})
        write_reports(staged_report, opts, gates)
        fault_point("export:reported")
        stage.publish()
    return report


#: Sub-folder of an export folder holding artifacts that failed their parity gate (never beside the report).
REJECTED_DIR = "rejected"


class _Staging:
    """An export built in a hidden folder beside ``out_dir`` and published whole, or not at all.

    The staging folder starts as hard links of what ``out_dir`` holds that this export does not rewrite (earlier
    artifacts, files of the user); :meth:`publish` swaps it in atomically (:func:`edgecnn.fileio.publish_dir`).
    A failure or Ctrl-C removes it; a SIGKILL leaves it hidden and the next export removes it. So ``out_dir`` is at
    every moment either as it was or the finished, checked export: never artifacts without their report.
    When ``out_dir`` holds the working directory, files are moved in one by one instead (report last).
    """

    def __init__(self, out_dir: Path, rewritten: set[str]) -> None:
        self.out_dir = out_dir
        self.rewritten = rewritten
        self.dir = Path()
        self.rejected: list[Path] = []

    def __enter__(self) -> _Staging:
        from edgecnn.fileio import link_tree, staging_dir

        target = Path(os.path.realpath(self.out_dir))
        self.target = target
        self.dir = staging_dir(target)
        self.whole = not _holds_cwd(target)
        if self.whole and target.is_dir():
            for entry in target.iterdir():
                if entry.name in self.rewritten:
                    continue
                if entry.name == REJECTED_DIR and entry.is_dir():
                    keep = [e for e in entry.iterdir() if e.name not in self.rewritten]
                    if keep:
                        (self.dir / REJECTED_DIR).mkdir(exist_ok=True)
                        for e in keep:
                            link_tree(e, self.dir / REJECTED_DIR / e.name)
                    continue
                link_tree(entry, self.dir / entry.name)
        return self

    def reject(self, path: Path) -> None:
        dest = self.dir / REJECTED_DIR
        dest.mkdir(exist_ok=True)
        os.replace(path, dest / path.name)
        self.rejected.append(dest / path.name)

    def publish(self) -> None:
        from edgecnn.fileio import publish_dir

        if self.whole:
            publish_dir(self.dir, self.target)
            return
        self.target.mkdir(parents=True, exist_ok=True)
        for name in (REPORT_JSON, REPORT_MD):  # the old report goes first: never a report over other artifacts
            (self.target / name).unlink(missing_ok=True)
        last = [self.dir / REPORT_MD, self.dir / REPORT_JSON]
        for entry in [*sorted(p for p in self.dir.iterdir() if p not in last), *last]:
            if not entry.exists():
                continue
            dest = self.target / entry.name
            if entry.is_dir() and dest.is_dir():
                if entry.name == REJECTED_DIR:
                    for e in entry.iterdir():
                        os.replace(e, dest / e.name) if not e.is_dir() else _replace_dir(e, dest / e.name)
                    continue
                shutil.rmtree(dest)
            os.replace(entry, dest)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None or self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)


#: Card fields that name folders on the training machine: an embedded card keeps only their last part.
_LOCAL_PATHS = (("dataset", "root"), ("dataset", "test_root"), ("config", "data"), ("config", "test_data"),
                ("config", "project"))


def portable_card(card: dict[str, Any], model_path: Path, sha256: str) -> dict[str, Any]:
    """The card an artifact embeds: no local paths, the source named by file name and full SHA-256.

    The training machine's platform is dropped (it is a fact of the training run, kept in its modelcard.json,
    not of the artifact, which runs anywhere its runtime does).
    """
    card = {k: (dict(v) if isinstance(v, dict) else v) for k, v in card.items()}
    for section, key in _LOCAL_PATHS:
        value = (card.get(section) or {}).get(key)
        if isinstance(value, str) and value:
            card[section][key] = Path(value).name
    provenance = {k: v for k, v in (card.get("provenance") or {}).items() if k != "platform"}
    card["provenance"] = {
        **provenance,
        "source": model_path.name,
        "source_sha256": sha256,
        "edgecnn_version": __version__,
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    card["artifact"] = {}
    return card


def _replace_dir(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(src, dest)


def _holds_cwd(folder: Path) -> bool:
    try:
        cwd = Path(os.getcwd()).resolve()
    except OSError:
        return False
    return cwd == folder or folder in cwd.parents


def _qat(src: Any, calib: np.ndarray, ref: Reference, train_set: tuple[np.ndarray, np.ndarray, str], epochs: int,
         lr: float, stage: _Staging, out_dir: Path, base: dict[str, Any], io_dtype: str | None, gates: Gates,
         results: list[ParityResult], pairs: list[tuple[str, str]], opset: int,
         dynamic_batch: bool) -> tuple[list[ParityResult], dict[str, Any]]:
    """Fine-tune the QAT twin, save it, write its fully int8 TFLite (and ONNX when int8 ONNX is asked for), check
    each against the twin, and compare with post-training int8 (:mod:`.qat`)."""
    import converters
    from converters.registry import QAT_TARGET, artifact_name
    from edgecnn.export import qat as qat_step

    x, y, origin = train_set
    info(f"[QAT] Fine-tuning a quantization-aware twin for {epochs} epoch(s) on {origin} ...")
    twin, history = qat_step.finetune(src.model, src.card, calib, (x, y), epochs, lr)
    twin.save(stage.dir / qat_step.QAT_MODEL)
    twin_ref = Reference(inputs=ref.inputs, probs=keras_probs(twin, ref.inputs), targets=ref.targets,
                         labels=ref.labels, source=str(out_dir / qat_step.QAT_MODEL), spec=ref.spec)
    card = {**base, "quantization_aware_training": {"epochs": epochs, "learning_rate": lr, "train": origin}}
    out: list[ParityResult] = []
    for fmt, precision in [t for t in pairs if t[1] == QAT_TARGET[1]]:
        path = stage.dir / qat_step.qat_name(artifact_name(fmt, precision))
        info(f"[QAT] Exporting {path.name} (every layer int8) ...")
        options = converters.ConvertOptions(io_dtype=io_dtype if (fmt, precision) == QAT_TARGET else None,
                                            opset=opset, dynamic_batch=dynamic_batch)
        try:
            done = converters.convert(twin, fmt, precision, path, metadata=card, labels=src.card.labels,
                                      options=options)
        except converters.ConversionError as exc:
            raise ModelError(f"The QAT model of {src.model_path.name} cannot be exported to {fmt} {precision}: "
                             f"{exc}") from exc
        result = _check(path, fmt, precision, twin_ref, gates, True)
        result.conversion_seconds = round(done.seconds, 3)
        result.size_bytes = done.size_bytes
        result.quantization = (done.metadata.get("artifact") or {}).get("int8")
        info(f"      {'PASS' if result.passed else 'FAIL'} against {qat_step.QAT_MODEL}: top-1 agreement "
             f"{100 * (result.agreement or 0):.1f}%, max |Δp| {result.max_abs:.2e}")
        out.append(result)
    tflite = next(r for r in out if (r.format, r.precision) == QAT_TARGET)
    ptq = next((r for r in results if (r.format, r.precision) == QAT_TARGET), None)
    ptq_path = None
    if ptq is not None:  # not yet published: in the staging folder, or its rejected/ when it failed its gate
        ptq_path = next((p for p in (stage.dir / Path(ptq.path).name, stage.dir / REJECTED_DIR / Path(ptq.path).name)
                         if p.is_file()), None)
    info("[QAT] Comparing float, post-training int8 and QAT int8 on the held-out images ...")
    figures = qat_step.comparison(src.model, calib, ref, ptq, ptq_path, tflite, Path(tflite.path), base,
                                  src.card.labels, io_dtype)
    for result in out:
        path = Path(result.path)
        if not result.passed:
            stage.reject(path)
            result.path = str(out_dir / REJECTED_DIR / path.name)
            result.failures.append(f"not published: kept in {REJECTED_DIR}/ for inspection only")
        else:
            result.path = str(out_dir / path.name)
    section = {"epochs": epochs, "learning_rate": lr, "train": origin, "history": history,
               "model": str(out_dir / qat_step.QAT_MODEL), "artifacts": [r.path for r in out], "comparison": figures}
    return out, section


def _check(path: Path, fmt: str, precision: str, ref: Reference | None, gates: Gates, check: bool) -> ParityResult:
    if not check or ref is None:
        return ParityResult(artifact=path.name, path=str(path), format=fmt, precision=precision, samples=0,
                            max_abs=float("nan"), mean_abs=float("nan"), agreement=float("nan"),
                            accuracy_reference=None, accuracy=None, accuracy_drop=None, passed=True,
                            gate=gates.describe(precision), checked=False)
    if fmt not in BACKENDS:  # no edge runtime runs it (a SavedModel): TensorFlow does
        return _check_saved_model(path, fmt, precision, ref, gates)
    return check_artifact(path, ref, gates, precision=precision, fmt=fmt)


def _check_saved_model(path: Path, fmt: str, precision: str, ref: Reference, gates: Gates) -> ParityResult:
    """SavedModels have no edge runtime backend: run their ``serve`` endpoint with TensorFlow."""
    from converters.to_saved_model import predict

    raw, version = predict(path, ref.inputs)
    probs = class_probs(raw)
    figures = compare(ref.probs, probs, ref.targets)
    failures = evaluate_gates(figures, precision, gates)
    return ParityResult(artifact=path.name, path=str(path), format=fmt, precision=precision,
                        samples=len(ref.inputs), passed=not failures, gate=gates.describe(precision), failures=failures,
                        runtime={"backend": "tensorflow", "runtime_version": version}, **figures)  # type: ignore[arg-type]


def _as_converted(src: Any) -> Any:
    """The model as the converters convert it: a sigmoid head wrapped to ``[1 - p, p]``
    (:func:`converters.heads.two_class`), so the per-layer error names the repair passes back are the converted
    graph's op names (the bare model's names lack the wrapper's scope, and the converter refused every one)."""
    from converters.heads import is_sigmoid_binary, two_class

    if is_sigmoid_binary(src.model, src.card.to_dict(), src.card.labels):
        cached = getattr(src, "_two_class", None)
        if cached is None:
            cached = two_class(src.model)
            src._two_class = cached  # noqa: SLF001
        return cached
    return src.model


def _repair(model: Any, fmt: str, precision: str, path: Path, calib: np.ndarray, ref: Reference, gates: Gates,
            options: Any, write: Any, done: Any, failed: ParityResult, max_layers: int) -> ParityResult:
    """Run :func:`edgecnn.export.repair.repair` on a failed int8 artifact; the result carries the repair record."""
    from dataclasses import replace

    from edgecnn.export.repair import repair

    info(f"{path.name} failed its gate; keeping the layers with the largest quantization error in float ...")
    auto = list((done.metadata.get("artifact", {}).get("int8") or {}).get("float_nodes") or [])
    result, rec = repair(fmt, model, path, calib, ref.inputs,
                         convert=lambda nodes: write(replace(options, float_nodes=tuple(nodes))),
                         check=lambda p: _check(p, fmt, precision, ref, gates, True),
                         first=failed, max_layers=max_layers, already_float=auto)
    result.conversion_seconds = failed.conversion_seconds
    result.quantization = failed.quantization
    result.repair = rec.to_dict()
    if not rec.passed:
        result.failures.append(f"int8 repair kept {len(rec.float_layers)} layer(s) in float and still failed: {rec.reason}")
    return result


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
