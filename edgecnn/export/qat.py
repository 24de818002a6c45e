"""``export --qat-epochs N``: fine-tune a quantization-aware twin of the model and export it fully int8.

The twin (:func:`converters.qat.quantize_model`: batch norm folded, per-channel weights, per-tensor activations)
starts from post-training calibration on the calibration images, fine-tunes N epochs on the run's training split,
and is saved beside the artifacts as ``model-qat.keras``. Its int8 TFLite, ``model-qat-int8.tflite``, has no float
layer at all (the stem included: what an Edge TPU or NPU needs) and is parity-checked against the QAT Keras model.

The report then compares, on the held-out images, the float model, post-training full int8 (every layer int8,
as an accelerator needs it), edgecnn's default int8 (its float stem, and the layers the repair kept in float, named)
and QAT full int8: accuracy, p50 latency on LiteRT (one thread), size and float layers.

ONNX (``--format onnx``): ``model-qat-int8.onnx``, QDQ with the QAT ranges and the weights written back as int8
(:func:`converters.qat.onnx_qdq_weights`), checked against the QAT Keras model too.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import info
from edgecnn.errors import ConfigError, DataError, ModelError
from edgecnn.export.checks import verify
from edgecnn.export.staging import REJECTED_DIR, Staging
from edgecnn.parity import Gates, ParityResult, Reference
from edgecnn.runtime.keras_model import keras_probs

#: Most training images the fine-tune decodes (stratified over classes); QAT needs a few epochs, not the whole set.
MAX_QAT_SAMPLES = 10_000
#: The QAT Keras model, beside the other artifacts (the parity reference of the QAT artifacts).
QAT_MODEL = "model-qat.keras"
ONNX_NOTE = ("model-qat-int8.onnx (with --format onnx): tf2onnx writes the activation ranges as Q/DQ pairs and folds "
             "the fake-quantized weights into float constants; edgecnn writes those back as int8 with a "
             "DequantizeLinear (exact: they lie on the int8 grid), so onnxruntime fuses QLinearConv and QGemm; the "
             "input's Rescaling stays a float Mul between the input's Q/DQ pair")


def qat_name(artifact: str) -> str:
    """``model-int8.tflite`` → ``model-qat-int8.tflite``: the QAT artifact of a format."""
    return artifact.replace("model-", "model-qat-", 1)


def qat_files(pairs: list[tuple[str, str]]) -> list[str]:
    """The files ``--qat-epochs`` writes for the targets asked for: the QAT model and one artifact per int8 format."""
    from converters.registry import QAT_TARGET, artifact_name

    return [QAT_MODEL, *(qat_name(artifact_name(f, p)) for f, p in pairs if p == QAT_TARGET[1])]


def finetune(model: Any, card: Any, calib: np.ndarray, train: tuple[np.ndarray, np.ndarray], epochs: int,
             learning_rate: float, batch_size: int = 32, seed: int = 0) -> tuple[Any, list[dict[str, float]]]:
    """The QAT twin of ``model``, calibrated on ``calib`` and fine-tuned ``epochs`` epochs on ``train``.

    Returns:
        (the QAT Keras model, one history row per epoch: loss and accuracy).

    Raises:
        ModelError: a layer QAT cannot quantize (named).
    """
    import keras

    from converters.errors import ConversionError
    from converters.qat import calibrate, quantize_model

    try:
        twin = quantize_model(model)
    except ConversionError as exc:
        raise ModelError(f"--qat-epochs: {exc}") from exc
    calibrate(twin, calib)
    sigmoid = card.output.activation == "sigmoid"
    if card.output.activation not in ("softmax", "sigmoid"):
        raise ModelError(f"--qat-epochs fine-tunes softmax or sigmoid classifiers; this model's output is "
                         f"{card.output.activation}.")
    loss = keras.losses.BinaryCrossentropy() if sigmoid else keras.losses.SparseCategoricalCrossentropy()
    metric = keras.metrics.BinaryAccuracy(name="accuracy") if sigmoid else \
        keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    twin.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=[metric])
    x, y = train
    y = y.astype(np.float32).reshape(-1, 1) if sigmoid else y.astype(np.int64)
    keras.utils.set_random_seed(seed)
    rows: list[dict[str, float]] = []

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            rows.append({"epoch": epoch + 1, "loss": round(float(logs.get("loss", float("nan"))), 4),
                         "accuracy": round(float(logs.get("accuracy", float("nan"))), 4)})
            info(f"      QAT epoch {epoch + 1}/{epochs}: loss {rows[-1]['loss']:.4f}, "
                 f"accuracy {rows[-1]['accuracy']:.4f}")

    twin.fit(x.astype(np.float32), y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
             callbacks=[Progress()])
    return twin, rows


def training_images(src: Any, card: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """The run's training split, decoded at the model's input (at most :data:`MAX_QAT_SAMPLES`, stratified).

    Raises:
        DataError: the run has no training split.
    """
    from edgecnn.export.data import stratified
    from edgecnn.parity import load_images
    from edgecnn.runs import load_split

    files = load_split(src.run_dir, "train")
    if files is None or not files.files:
        raise DataError(f"--qat-epochs fine-tunes on the run's training split; {src.model_path.name} has none "
                        "(splits.json). Export from the run folder train wrote.")
    picked = stratified(files, MAX_QAT_SAMPLES) if len(files.files) > MAX_QAT_SAMPLES else files
    x, y = load_images(picked, card)
    return x, y, f"{src.run_dir}/splits.json:train ({len(x)} images)"


def check_options(epochs: int, learning_rate: float, pairs: list[tuple[str, str]]) -> None:
    """Refuse QAT options that cannot work, before anything is converted.

    Raises:
        ConfigError: a negative epoch count, a learning rate that is not positive, or no int8 TFLite asked for.
    """
    if epochs < 0:
        raise ConfigError(f"Expected --qat-epochs ≥ 0; received {epochs}.")
    if epochs and not learning_rate > 0:
        raise ConfigError(f"Expected --qat-lr > 0; received {learning_rate}.")
    from converters.registry import QAT_TARGET

    if epochs and QAT_TARGET not in pairs:
        raise ConfigError("--qat-epochs writes a fully int8 TFLite; ask for it with --format tflite --quantize int8.")


def _timed(path: Path, inputs: np.ndarray, rounds: int = 30) -> tuple[np.ndarray, float]:
    """Class probabilities of ``inputs`` with the artifact's runtime, and its p50 milliseconds for one image on one
    thread (after 3 warm-up calls)."""
    from edgecnn.runtime.backends import load_backend

    with load_backend(path, threads=1) as backend:
        probs = backend.predict(inputs)
        one = inputs[:1]
        for _ in range(3):
            backend.predict(one)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            backend.predict(one)
            times.append((time.perf_counter() - t0) * 1000)
    return probs, round(float(np.median(times)), 4)


def comparison(model: Any, calib: np.ndarray, ref: Any, ptq: Any, ptq_path: Path | None, qat_result: Any, qat_path: Path,
               metadata: dict[str, Any], labels: list[str], io_dtype: str | None) -> dict[str, Any]:
    """Float, post-training full int8, edgecnn's int8 (float stem, repair) and QAT full int8 on the held-out set:
    accuracy, p50 latency on LiteRT (one thread), size and float layers."""
    import converters
    from edgecnn.parity import compare

    def accuracy(probs: np.ndarray) -> float | None:
        return compare(ref.probs, probs, ref.targets).get("accuracy")

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=".edgecnn-qat-") as tmp:
        fp32 = Path(tmp) / "model-float32.tflite"
        converters.convert(model, "tflite", "float32", fp32, metadata=metadata, labels=labels)
        probs, ms = _timed(fp32, ref.inputs)
        rows.append({"model": "float", "accuracy": accuracy(probs), "latency_ms": ms,
                     "size_bytes": fp32.stat().st_size, "float_layers": "all"})
        full = Path(tmp) / "model-ptq-full-int8.tflite"
        converters.convert(model, "tflite", "int8", full, calibration=calib, metadata=metadata, labels=labels,
                           options=converters.ConvertOptions(io_dtype=io_dtype, float_stem=False))
        probs, ms = _timed(full, ref.inputs)
        rows.append({"model": "PTQ full int8", "accuracy": accuracy(probs), "latency_ms": ms,
                     "size_bytes": full.stat().st_size, "float_layers": "none"})
    if ptq is not None and ptq_path is not None and ptq.checked:
        quant = ptq.quantization or {}
        repaired = [f["layer"] for f in ((ptq.repair or {}).get("float_layers") or [])]
        named = list(dict.fromkeys([*(["stem conv + pool"] if quant.get("float_stem") else []), *repaired]))
        _, ms = _timed(ptq_path, ref.inputs[:1])
        rows.append({"model": "PTQ int8, float stem" + (" + repair" if repaired else ""), "accuracy": ptq.accuracy,
                     "latency_ms": ms, "size_bytes": ptq.size_bytes, "float_layers": ", ".join(named) or "none"})
    _, ms = _timed(qat_path, ref.inputs[:1])
    rows.append({"model": "QAT full int8", "accuracy": qat_result.accuracy, "latency_ms": ms,
                 "size_bytes": qat_result.size_bytes, "float_layers": "none"})
    return {"rows": rows, "samples": int(len(ref.inputs)), "latency": "p50 ms of one image, LiteRT, 1 thread",
            "qat_keras_accuracy": qat_result.accuracy_reference, "onnx": ONNX_NOTE}


def print_comparison(section: dict[str, Any]) -> None:
    """The comparison as a terminal table (fitted to the terminal; every column in a pipe)."""
    from edgecnn.fileio import human_size
    from edgecnn.tables import KEEP, Col, print_fitted

    cols = [Col("model", priority=KEEP), Col("accuracy", "acc", right=True, priority=KEEP),
            Col("p50 ms", right=True, priority=60), Col("size", right=True, priority=40),
            Col("float layers", "float", text=True, priority=30, max_chars=40)]
    rows = [{"model": r["model"], "accuracy": f"{100 * r['accuracy']:.2f}%" if r["accuracy"] is not None else "—",
             "p50 ms": f"{r['latency_ms']:.3f}", "size": human_size(r["size_bytes"]),
             "float layers": r["float_layers"]} for r in section["comparison"]["rows"]]
    print_fitted(cols, rows, title=f"Post-training vs quantization-aware int8 ({section['comparison']['samples']} "
                                   f"held-out images; p50 of one image, LiteRT, 1 thread)")


def run_qat(src: Any, calib: np.ndarray, ref: Reference, train_set: tuple[np.ndarray, np.ndarray, str], epochs: int,
         lr: float, stage: Staging, out_dir: Path, base: dict[str, Any], io_dtype: str | None, gates: Gates,
         results: list[ParityResult], pairs: list[tuple[str, str]], opset: int,
         dynamic_batch: bool) -> tuple[list[ParityResult], dict[str, Any]]:
    """Fine-tune the QAT twin, save it, write its fully int8 TFLite (and ONNX when int8 ONNX is asked for), check
    each against the twin, and compare with post-training int8 (:mod:`.qat`)."""
    import converters
    from converters.registry import QAT_TARGET, artifact_name

    x, y, origin = train_set
    info(f"[QAT] Fine-tuning a quantization-aware twin for {epochs} epoch(s) on {origin} ...")
    twin, history = finetune(src.model, src.card, calib, (x, y), epochs, lr)
    twin.save(stage.dir / QAT_MODEL)
    twin_ref = Reference(inputs=ref.inputs, probs=keras_probs(twin, ref.inputs), targets=ref.targets,
                         labels=ref.labels, source=str(out_dir / QAT_MODEL), spec=ref.spec)
    card = {**base, "quantization_aware_training": {"epochs": epochs, "learning_rate": lr, "train": origin}}
    out: list[ParityResult] = []
    for fmt, precision in [t for t in pairs if t[1] == QAT_TARGET[1]]:
        path = stage.dir / qat_name(artifact_name(fmt, precision))
        info(f"[QAT] Exporting {path.name} (every layer int8) ...")
        options = converters.ConvertOptions(io_dtype=io_dtype if (fmt, precision) == QAT_TARGET else None,
                                            opset=opset, dynamic_batch=dynamic_batch)
        try:
            done = converters.convert(twin, fmt, precision, path, metadata=card, labels=src.card.labels,
                                      options=options)
        except converters.ConversionError as exc:
            raise ModelError(f"The QAT model of {src.model_path.name} cannot be exported to {fmt} {precision}: "
                             f"{exc}") from exc
        result = verify(path, fmt, precision, twin_ref, gates, True)
        result.conversion_seconds = round(done.seconds, 3)
        result.size_bytes = done.size_bytes
        result.quantization = (done.metadata.get("artifact") or {}).get("int8")
        info(f"      {'PASS' if result.passed else 'FAIL'} against {QAT_MODEL}: top-1 agreement "
             f"{100 * (result.agreement or 0):.1f}%, max |Δp| {result.max_abs:.2e}")
        out.append(result)
    tflite = next(r for r in out if (r.format, r.precision) == QAT_TARGET)
    ptq = next((r for r in results if (r.format, r.precision) == QAT_TARGET), None)
    ptq_path = None
    if ptq is not None:  # not yet published: in the staging folder, or its rejected/ when it failed its gate
        ptq_path = next((p for p in (stage.dir / Path(ptq.path).name, stage.dir / REJECTED_DIR / Path(ptq.path).name)
                         if p.is_file()), None)
    info("[QAT] Comparing float, post-training int8 and QAT int8 on the held-out images ...")
    figures = comparison(src.model, calib, ref, ptq, ptq_path, tflite, Path(tflite.path), base,
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
               "model": str(out_dir / QAT_MODEL), "artifacts": [r.path for r in out], "comparison": figures}
    return out, section


__all__ = ["MAX_QAT_SAMPLES", "ONNX_NOTE", "QAT_MODEL", "check_options", "comparison", "finetune",
           "print_comparison", "qat_files", "qat_name", "run_qat", "training_images"]
