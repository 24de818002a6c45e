"""The public Python API: every CLI command is one of these calls, and the CLI only parses, calls, prints.

>>> import edgecnn
>>> run = edgecnn.train("data/", epochs=10, img_size=64)                      # TrainResult
>>> rep = edgecnn.export(run.run_dir, formats=["tflite", "onnx"], quantize="all")  # ExportReport
>>> ev = edgecnn.evaluate(rep.artifacts()["tflite-int8"], data="data_test/")  # EvalReport
>>> b = edgecnn.bench(rep.out_dir, threads=[1, 4], runs=100)                  # BenchReport
>>> clf = edgecnn.load(rep.artifacts()["tflite-int8"]); clf.predict(frame).label

Each function is quiet unless asked, as the CLI is (:class:`~edgecnn.console.quiet_library`): nothing on stdout
or stderr but edgecnn's own warnings; ``verbose=True`` shows the progress lines and the libraries' own output, and
``logging.basicConfig(level=logging.INFO)`` shows the progress lines as log records. Each function returns a
dataclass (paths, metrics, rows) and raises an
:class:`~edgecnn.errors.EdgeCNNError` subclass for a user mistake, with one line saying what was expected,
what was received and the fix. Importing this module is light: TensorFlow, the runtimes, OpenCV and rich
are imported by the call that needs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.classifier import Classifier, Prediction, PredictionStream, load
from edgecnn.console import quiet_library

if TYPE_CHECKING:  # pragma: no cover
    from edgecnn.bench.measure import BenchSettings
    from edgecnn.bench.schema import BenchReport, BenchResult
    from edgecnn.evaluate import EvalReport
    from edgecnn.export import ExportReport
    from edgecnn.training import TrainConfig, TrainResult

def _plain(value: Any) -> Any:
    """CLI values as library values: enums by value, paths as strings (config layers compare strings)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    """``"tflite"`` or ``["tflite", "onnx"]`` (or enums of them) → a list of names."""
    if value is None:
        return None
    if isinstance(value, (str, Enum)):
        return [_plain(value)]
    return [_plain(v) for v in value]


# ---------------------------------------------------------------------------------------------- train
@quiet_library()
def train(data: str | os.PathLike[str] | None = None, *, preset: str | None = None,
          config: str | os.PathLike[str] | TrainConfig | None = None, **options: Any) -> TrainResult:
    """Train a classifier on a folder of class sub-folders and write a run folder (``edgecnn train``).

    Options resolve as in the CLI: defaults < ``preset`` < ``config`` TOML < keyword options.

    Args:
        data: Folder with one sub-folder per class (or pass ``dataset="digits"``).
        preset: A preset name (``edgecnn train --help`` lists them).
        config: A TOML file of options, or a ready :class:`~edgecnn.training.TrainConfig` (then ``preset`` and
            the keyword options are applied on top of it).
        **options: Any ``edgecnn train`` option by its Python name: ``epochs=10``, ``img_size="48x64"``,
            ``channels=1``, ``arch="dsconv"``, ``project="runs/train"``, ``name="exp"``, ``exist_ok=True``, ...
            ``None`` means "not given".

    Returns:
        :class:`~edgecnn.training.TrainResult`: ``run_dir``, ``model_path``, ``metrics`` (``test_accuracy``,
        ``val_accuracy``, per-class figures), ``card`` and the per-epoch ``history``.

    Raises:
        ConfigError: an unknown option (the closest is suggested) or a bad value.
        DataError: an unusable data folder.
        ArtifactExistsError: the run folder exists without ``exist_ok``/``resume``.
        MissingDependencyError: TensorFlow/Keras is not installed (``pip install 'edgecnn[train]'``).
    """
    import importlib.util

    from edgecnn.errors import require
    from edgecnn.training import TrainConfig, build_config
    from edgecnn.training import train as train_run

    if importlib.util.find_spec("keras") is None:  # look, don't import: the trainer picks the Keras backend first
        require("keras", "train", "to train")
    overrides = {k: _plain(v) for k, v in options.items()}
    if data is not None:
        overrides["data"] = _plain(data)
    if isinstance(config, TrainConfig):
        import dataclasses

        base = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
        cfg = build_config(preset=preset, overrides={**base, **{k: v for k, v in overrides.items() if v is not None}})
    else:
        cfg = build_config(preset=preset, config_file=config, overrides=overrides)
    return train_run(cfg)


# ---------------------------------------------------------------------------------------------- export
@quiet_library()
def export(source: str | os.PathLike[str], formats: str | Sequence[str] | None = None,
           quantize: str | Sequence[str] | None = None, **options: Any) -> ExportReport:
    """Export a run folder or ``.keras`` model to TFLite / ONNX / SavedModel and check parity (``edgecnn export``).

    Args:
        source: A run folder (``runs/train/exp``) or a ``.keras``/``.h5`` file.
        formats: ``"tflite"`` (default), ``"onnx"``, ``"saved_model"``, ``"all"`` or a list of them.
        quantize: ``"none"`` (default), ``"fp16"``, ``"dynamic"``, ``"int8"``, ``"all"`` or a list of them.
        **options: The other ``edgecnn export`` options by Python name: ``out``, ``force``, ``check``,
            ``check_data``, ``calib_data``, ``calib_samples``, ``io_dtype``, ``opset``, ``dynamic_batch``,
            ``unsafe``, ``gates`` (a :class:`~edgecnn.parity.Gates`).

    Returns:
        :class:`~edgecnn.export.ExportReport`: ``out_dir``, ``results`` (one parity row per artifact),
        ``artifacts()`` (``"tflite-int8"`` → path), ``golden``, ``report_json``/``report_md``, ``passed``.
        A failed parity gate does not raise here: check ``report.passed`` or call ``report.raise_for_gates()``
        (the CLI does, and exits 1).

    Raises:
        ConfigError / DataError / ModelError / ArtifactExistsError: bad options, data or model, before any
            file is written.
        MissingDependencyError: TensorFlow (and tf2onnx for ONNX) is not installed (``edgecnn[train]``).
    """
    from edgecnn.export import export as export_run

    kwargs = {k: _plain(v) for k, v in options.items()}
    return export_run(source, formats=_names(formats), quantize=_names(quantize), **kwargs)


# ---------------------------------------------------------------------------------------------- evaluate
@quiet_library()
def evaluate(model: str | os.PathLike[str], data: str | os.PathLike[str] | None = None, **options: Any) -> EvalReport:
    """Accuracy, top-k, per-class precision/recall/F1 and a confusion matrix (``edgecnn evaluate``).

    Runs the same pipeline as ``edgecnn run`` (TensorFlow-free for ``.tflite``/``.onnx``).

    Args:
        model: A model file or a run folder.
        data: A labelled folder (one sub-folder per class); or pass ``run=RUN_FOLDER, split="test"``.
        **options: ``run``, ``split``, ``out_dir`` (default ``runs/evaluate/<model>``), ``backend``,
            ``threads``, ``providers``, ``delegate``, ``batch``, ``topk``, ``workers``.

    Returns:
        :class:`~edgecnn.evaluate.EvalReport`: ``accuracy``, ``topk_accuracy``, ``macro_f1``, ``per_class``,
        ``confusion``, ``skipped`` and the written ``outputs`` (metrics.json, confusion_matrix.png).
    """
    from edgecnn.evaluate import evaluate as evaluate_model

    kwargs = {k: _plain(v) for k, v in options.items()}
    if isinstance(kwargs.get("providers"), str):
        kwargs["providers"] = [p.strip() for p in kwargs["providers"].split(",") if p.strip()]
    return evaluate_model(model, data=_plain(data), **kwargs)


# ---------------------------------------------------------------------------------------------- bench
@quiet_library()
def bench(models: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
          reports: Sequence[str | os.PathLike[str]] = (), settings: BenchSettings | None = None,
          runs: int | None = None, min_seconds: float | None = None, max_seconds: float | None = None,
          warmup: int | None = None, warmup_seconds: float | None = None,
          on_row: Callable[[BenchResult], None] | None = None, pick: str | os.PathLike[str] | None = None,
          max_drop: float = 0.01, **options: Any) -> BenchReport:
    """Benchmark artifacts like TFLite's ``benchmark_model`` (``edgecnn bench``); with ``pick``, choose the fastest
    that passes the accuracy gate and write it as a deploy profile (``edgecnn bench --pick``).

    Args:
        models: Model files and/or run or export folders (every artifact in a folder is measured).
        reports: Files to write, by suffix: ``.json`` (for ``bench compare``), ``.md``, ``.html``.
        settings: Loop bounds as a :class:`~edgecnn.bench.BenchSettings`; or give them one by one:
        runs, min_seconds, max_seconds, warmup, warmup_seconds: Timed-loop and warm-up bounds.
        on_row: Called with each row as soon as it is measured (progress).
        pick: A ``.json`` path: measure every artifact × threads × batch (``data`` is required), pick the fastest
            row whose accuracy is within ``max_drop`` of the reference, and write it there as a deploy profile for
            ``edgecnn.load``/``edgecnn run --profile``/``devices service --profile``.
        max_drop: The pick's accuracy gate: the largest drop from the reference accuracy (0.01 = 1 point).
        **options: ``threads`` (``"1,2,4"`` or ``[1, 4]``), ``batches``, ``backend``, ``delegate``,
            ``delegate_options``, ``providers``, ``device`` (a profile), ``cpus``, ``data`` (labelled folder:
            adds accuracy and preprocessing time), ``max_images``, ``include_keras``, ``label``, and the gates
            ``fail_above_ms``, ``min_accuracy``, ``gate_metric``.

    Returns:
        :class:`~edgecnn.bench.BenchReport`: ``results`` (one row per artifact × threads × batch with latency
        p50/p90/p99, FPS, init and first-inference time, RSS, accuracy), ``system``, ``gate_failures`` and
        ``files`` (the reports written); with ``pick``, also ``pick`` (the chosen row, the reference and every
        rejected candidate) and ``profile`` (the file written). Gates are evaluated, not raised: the CLI exits
        non-zero on ``gate_failures`` (see :func:`edgecnn.bench.enforce_gates`).

    Raises:
        ConfigError: ``pick`` without ``data``, or not a ``.json`` path.
        GateError: with ``pick``, when no measured row passes the accuracy gate (the reports are written first).
    """
    from edgecnn.bench.api import bench as bench_models
    from edgecnn.bench.measure import BenchSettings

    given = {"runs": runs, "min_seconds": min_seconds, "max_seconds": max_seconds, "warmup": warmup,
             "warmup_seconds": warmup_seconds}
    given = {k: v for k, v in given.items() if v is not None}
    if settings is None:
        settings = BenchSettings(**given)
    elif given:
        import dataclasses

        settings = dataclasses.replace(settings, **given)
    paths = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    kwargs = {k: _plain(v) for k, v in options.items()}
    if pick is not None:
        from edgecnn.bench.api import bench_pick

        report, written, choice, profile = bench_pick(paths, pick, reports=list(reports), max_drop=max_drop,
                                                      settings=settings, on_row=on_row, **kwargs)
        report.pick, report.profile = choice, profile
    else:
        report, written = bench_models(paths, reports=list(reports), settings=settings, on_row=on_row, **kwargs)
    report.files = [Path(p) for p in written]
    return report


__all__ = ["Classifier", "Prediction", "PredictionStream", "bench", "evaluate", "export", "load", "train"]
