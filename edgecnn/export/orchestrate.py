"""``edgecnn export``: a trained Keras model → TFLite / ONNX / SavedModel artifacts that prove they match it.

This module runs an export: it validates the plan (:mod:`.plan`), loads the source (:mod:`.source`), draws
calibration and held-out data (:mod:`.data`), converts each target with :mod:`converters` (which knows nothing of
edgecnn), checks parity of every artifact with its real runtime, writes ``golden.npz`` and the report
(:mod:`.report`). Everything is built in a hidden staging folder and published in one step after the gates, so a
failure, Ctrl-C or SIGKILL at any moment leaves the output folder as it was or the finished, checked export.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from converters.registry import IO_DTYPE_TARGET, PRECISIONS
from edgecnn.console import info, warn
from edgecnn.errors import ArtifactExistsError, ConfigError, DataError, ModelError
from edgecnn.export import qat as qat_step
from edgecnn.export.checks import as_converted, layer_errors, repair_artifact, verify
from edgecnn.export.data import DEFAULT_CALIB_SAMPLES, calibration_set, heldout_files, heldout_set
from edgecnn.export.plan import plan_targets
from edgecnn.export.repair import DEFAULT_MAX_LAYERS
from edgecnn.export.report import REPORT_JSON, REPORT_MD, ExportReport, next_commands, write_reports
from edgecnn.export.source import portable_card, resolve_source
from edgecnn.export.staging import REJECTED_DIR, Staging
from edgecnn.metrics import class_probs
from edgecnn.parity import (
    GOLDEN_FILENAME,
    GOLDEN_MAX,
    Gates,
    ParityResult,
    Reference,
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
    with Staging(out_dir, rewritten) as stage:
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
            result = verify(done.path, fmt, precision, ref, gates, check)
            if result.checked:
                info(f"      {'PASS' if result.passed else 'FAIL'}: top-1 agreement {100 * (result.agreement or 0):.1f}%, "
                     f"max |Δp| {result.max_abs:.2e}")
            result.conversion_seconds = round(done.seconds, 3)
            result.size_bytes = done.size_bytes
            result.quantization = (done.metadata.get("artifact") or {}).get("int8")
            if (repair and check and not result.passed and PRECISIONS[precision].calibration and fmt in BACKENDS
                    and calib is not None and ref is not None):
                result = repair_artifact(as_converted(src), fmt, precision, path, calib, ref, gates, options, write, done, result,
                                 repair_layers)
            if check and not result.passed and fmt == "tflite" and precision == "int8" and calib is not None and ref is not None:
                result.layer_errors = layer_errors(as_converted(src), calib, ref.inputs, io_dtype)
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
            qat_results, qat_section = qat_step.run_qat(src, calib, ref, train_set, qat_epochs, qat_lr, stage,
                                                        out_dir, base, io_dtype, gates, results, pairs, opset,
                                                        dynamic_batch)
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

