"""``train(cfg)``: a folder of class sub-folders (or a built-in dataset) to a complete run folder.

Run folder ``{project}/{name}/`` (every file written atomically)::

    model.keras  modelcard.json  labels.txt  config.toml  splits.json  history.csv  metrics.json
    plots: curves.png  confusion_matrix.png  augmented_samples.png  model_summary.png
    weights/best.keras  weights/last.keras  weights/state.json      (checkpoints; --resume reads them)

Any Keras backend trains (``cfg.backend``: tensorflow, jax or torch; see :mod:`edgecnn.training.backend`).
Keras is imported inside :func:`train` only, after the backend is chosen, so importing this module stays light;
with jax or torch no TensorFlow is imported at all. When this process already imported Keras with another
backend, the run is trained in a child process (:mod:`edgecnn.training.child`) and its result read back.

The run folder's lifecycle (where it goes, what a failed run leaves) is :mod:`edgecnn.training.rundir`; the
metrics and model card written at the end are :mod:`edgecnn.training.results`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import info, is_quiet, set_quiet, warn
from edgecnn.errors import EdgeCNNError
from edgecnn.fileio import atomic_path, fault_point, write_json, write_text
from edgecnn.modelcard import ModelCard, write_labels_txt
from edgecnn.runs import (
    BEST_FILENAME,
    LAST_FILENAME,
    MODEL_FILENAME,
    SPLITS_FILENAME,
    WEIGHTS_DIR,
    latest_run,
    next_run_dir,
)
from edgecnn.training.architectures import ArchKnobs, build_model, resolve_head
from edgecnn.training.backend import activate, parse_devices
from edgecnn.training.config import TrainConfig, validate
from edgecnn.training.results import evaluate_splits, run_card, train_throughput
from edgecnn.training.rundir import (
    CONFIG_FILENAME,
    METRICS_FILENAME,
    OWNED,
    PLOT_FILES,
    abandoned_start,
    after_failure,
    clear_run,
    resolve_run_dir,
)

__all__ = ["TrainResult", "abandoned_start", "latest_run", "next_run_dir", "resolve_run_dir", "train"]


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    run_dir: Path
    model_path: Path
    metrics: dict[str, Any]
    card: ModelCard | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

# ---------------------------------------------------------------------------- training
def train(cfg: TrainConfig) -> TrainResult:
    """Train a classifier as ``cfg`` describes and write a complete run folder.

    Raises:
        DataError: unusable data (missing folder, < 2 classes, a class without readable images, ...).
        ConfigError: invalid option values.
        ArtifactExistsError: the run folder exists without ``exist_ok``/``resume``.
    """
    from edgecnn.outputs import check_outputs

    cfg = validate(cfg)
    check_outputs({"--project": cfg.project}, {"--data": cfg.data, "--test-data": cfg.test_data}, folders={"--project"})
    if not activate(cfg.backend, parse_devices(cfg.devices)):  # type: ignore[arg-type]
        return _train_in_child(cfg)
    was_quiet = is_quiet()
    set_quiet(cfg.quiet or was_quiet)
    try:
        return _train(cfg)
    finally:
        set_quiet(was_quiet)

def _train_in_child(cfg: TrainConfig) -> TrainResult:
    """Train in a fresh Python process with ``KERAS_BACKEND=cfg.backend`` (Keras here already has another one)."""
    from edgecnn.training.backend import imported_backend

    info(f"Keras is already imported here with the {imported_backend()} backend; training on {cfg.backend} "
         "in a child process.")
    with tempfile.TemporaryDirectory(prefix="edgecnn-train-") as tmp:
        request, answer = Path(tmp) / "config.json", Path(tmp) / "result.json"
        request.write_text(json.dumps(cfg.to_dict()), encoding="utf-8")
        env = dict(os.environ, KERAS_BACKEND=str(cfg.backend))
        if is_quiet() or cfg.quiet:
            env["EDGECNN_QUIET"] = "1"
        proc = subprocess.run([sys.executable, "-m", "edgecnn.training.child", str(request), str(answer)], env=env)
        if not answer.exists():
            raise EdgeCNNError(f"Training on {cfg.backend} in a child process failed (exit code {proc.returncode}); "
                               "its error is printed above.")
        result = json.loads(answer.read_text(encoding="utf-8"))
    if "error" in result:
        from edgecnn import errors

        kind = getattr(errors, str(result.get("kind")), EdgeCNNError)
        raise (kind if isinstance(kind, type) and issubclass(kind, EdgeCNNError) else EdgeCNNError)(result["error"])
    run_dir = Path(result["run_dir"])
    card_path = run_dir / "modelcard.json"
    return TrainResult(
        run_dir=run_dir,
        model_path=Path(result["model_path"]),
        metrics=json.loads((run_dir / METRICS_FILENAME).read_text(encoding="utf-8")),
        card=ModelCard.from_json(card_path.read_bytes()) if card_path.exists() else None,
        history=result["history"],
    )

def _train(cfg: TrainConfig) -> TrainResult:
    from edgecnn.training import datasets as ds
    from edgecnn.training import weights as wts
    from edgecnn.training.builtin import materialize_builtin

    run_dir = resolve_run_dir(cfg)
    cfg.name = run_dir.name
    h, w = cfg.size
    t_start = time.perf_counter()
    if not cfg.resume:
        wts.resolve(cfg.arch, cfg.weights, min(h, w))  # a missing weights file fails before any decoding

    # ---- data (before anything is written: a data error leaves no run folder behind)
    if cfg.from_run and not cfg.resume:
        info(f"Fine-tuning from {cfg.from_run}")
    if cfg.resume:
        info(f"Resuming {run_dir}")
        data = ds.load_from_splits(run_dir / SPLITS_FILENAME, (h, w), cfg.color, cfg.interpolation, cfg.workers,
                                   cfg.resize_variants)
    else:
        root = cfg.data if cfg.data else materialize_builtin(cfg.dataset)  # type: ignore[arg-type]
        resize = (f"resize drawn from {cfg.interpolation}, {', '.join(cfg.resize_variants)} in training"
                  if cfg.resize_variants else f"{cfg.interpolation} resize")
        info(f"Loading {root} at {h}x{w}x{cfg.channels} ({resize})")
        data = ds.load_training_data(
            root, (h, w), cfg.color, cfg.interpolation, cfg.val_split, cfg.test_split, cfg.test_data, cfg.seed,
            cfg.strict, cfg.workers, cfg.resize_variants,
        )
    labels = data.labels
    head = resolve_head(cfg.head, len(labels))
    t_data = time.perf_counter() - t_start
    info(
        f"{len(labels)} classes, {len(data.train)} train / {len(data.val)} val / "
        f"{len(data.test) if data.test is not None else 0} test images (decoded in {t_data:.1f}s)"
    )
    if len(data.train) < cfg.batch:
        warn(f"Only {len(data.train)} training images, fewer than one batch of {cfg.batch}; training anyway.")

    # ---- Keras on the chosen backend, its devices and their distribution
    from edgecnn.training import distribution
    from edgecnn.training.backend import detect, keep_tensorflow_out

    requested = parse_devices(cfg.devices)
    distribution.prepare(str(cfg.backend), requested)
    import keras

    keep_tensorflow_out(str(cfg.backend))
    keras.utils.set_random_seed(cfg.seed)
    acc = detect(str(cfg.backend))
    mixed = bool(cfg.mixed_precision and acc.on_gpu)
    if cfg.mixed_precision and not acc.on_gpu:
        warn(f"--mixed-precision needs a GPU; {cfg.backend} sees none, so training in float32 on CPU instead.")
    plan = distribution.plan(acc, requested, cfg.batch)
    info(f"Training with {acc.describe()}"
         + (f"; data-parallel on {plan.devices} devices ({plan.strategy}), global batch {plan.global_batch} = "
            f"{plan.devices} × {plan.per_device_batch}, learning rate not scaled" if plan.parallel else "")
         + ("; mixed precision (float16 compute, float32 output)" if mixed else ""))
    try:
        return _train_on(cfg, run_dir, data, labels, head, h, w, t_start, acc, plan, mixed)
    finally:
        distribution.release(plan)
        if mixed:
            keras.mixed_precision.set_global_policy("float32")

def _train_on(cfg: TrainConfig, run_dir: Path, data: Any, labels: list[str], head: str, h: int, w: int,
              t_start: float, acc: Any, plan: Any, mixed: bool) -> TrainResult:
    if mixed:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")

    # ---- run folder. --exist-ok over an earlier run: the new run is built in a hidden staging folder beside it
    # and swapped in once it has a model, so a failed or killed training keeps the old run (and its export/).
    final_dir = run_dir
    staged = not cfg.resume and run_dir.exists() and not abandoned_start(run_dir)
    created = not run_dir.exists()
    if staged:
        from edgecnn.fileio import staging_dir

        run_dir = staging_dir(final_dir)
        info(f"--exist-ok: training in {run_dir.name}; {final_dir} is replaced only when the new model is saved.")
    elif not cfg.resume and run_dir.exists():  # an abandoned start: nothing in it is worth keeping
        clear_run(run_dir)
    try:
        return _train_in(cfg, run_dir, final_dir, data, labels, head, h, w, t_start, staged, acc, plan, mixed)
    except BaseException as exc:
        after_failure(cfg, run_dir, final_dir, staged, created, exc)
        raise

def _train_in(cfg: TrainConfig, run_dir: Path, final_dir: Path, data: Any, labels: list[str], head: str, h: int,
              w: int, t_start: float, staged: bool, acc: Any, plan: Any, mixed: bool) -> TrainResult:
    import keras

    from edgecnn.training import callbacks as cb
    from edgecnn.training import datasets as ds
    from edgecnn.training import distribution
    from edgecnn.training.augmentation import AugmentSpec, augment
    from edgecnn.training.loader import ArrayBatches, default_workers

    run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        ds.write_splits(run_dir, data)
    write_labels_txt(run_dir / "labels.txt", labels)
    write_text(run_dir / CONFIG_FILENAME, cfg.to_toml())
    fault_point("train:start")

    try:
        knobs = ArchKnobs.from_config(cfg)
        state: dict[str, Any] = {}
        with plan.scope():
            if cfg.resume:
                state = cb.load_state(run_dir)
                model = cb.load_checkpoint(run_dir / WEIGHTS_DIR / LAST_FILENAME, run_dir)
                # the checkpoint carries the jit choice of the backend that wrote it; resolve it for this one
                # (jit_compile=True from jax would mean torch.compile on torch: minutes of recompiling)
                model._jit_compile = None
            else:
                model, loaded = _build_start(cfg, (h, w, cfg.channels), len(labels), head, knobs)
                if cfg.from_run:
                    from edgecnn.training.finetune import load_parent_weights

                    load_parent_weights(model, cfg.from_run, labels, head)
                _compile(model, cfg, head, len(labels))
        initial_epoch = int(state.get("epoch", 0))
        phases = _phases(cfg, model if not cfg.resume else None, state)

        one_hot = head == "softmax" and cfg.label_smoothing > 0
        spec = AugmentSpec.from_config(cfg)
        class_weight = _class_weights(data.train.y, len(labels)) if cfg.class_weights else None
        kw = dict(num_classes=len(labels), one_hot=one_hot, binary=head == "sigmoid", multiple_of=plan.devices,
                  workers=default_workers(), shard=(plan.process_index, plan.processes))
        train_ds = ArrayBatches(data.train.x, data.train.y, cfg.batch, training=True, seed=cfg.seed, spec=spec,
                                class_weight=class_weight, variants=data.train.variants, **kw)
        val_ds = ArrayBatches(data.val.x, data.val.y, cfg.batch, training=False, **kw)

        if cfg.plots:
            from edgecnn.training import plots

            sample_x = augment(data.train.x[:16], spec, np.random.default_rng(cfg.seed))
            plots.plot_samples(sample_x, data.train.y[:16], labels, run_dir / PLOT_FILES["samples"],
                               "Augmented training samples" if spec.active else "Training samples")
            plots.plot_model_summary(model, run_dir / PLOT_FILES["summary"])

        warmup = _scratch_warmup(cfg)
        tracker = cb.RunTracker(run_dir, cfg.patience, state, start_from_epoch=warmup)
        if warmup and cfg.patience and cfg.epochs > warmup:
            phases[0]["early_stopping_from_epoch"] = warmup + 1
            info(f"Early stopping counts from epoch {warmup + 1}: a backbone trained from scratch stays at chance on "
                 "validation while its batch-norm statistics settle")
        total_epochs = phases[-1]["end"]
        progress = cb.Progress(total_epochs, tracker)
        params = model.count_params()
        info(f"Model {cfg.arch} ({head} head, {params:,} parameters), {cfg.epochs} epoch{'' if cfg.epochs == 1 else 's'}, "
             f"batch {cfg.batch}, lr {cfg.lr} {cfg.lr_schedule}{', augmentation on' if spec.active else ''}"
             + (f"; weights: {cfg.weights}" if cfg.weights else ""))
        t_fit = time.perf_counter()
        for phase in phases:
            if initial_epoch >= phase["end"]:
                continue
            if phase["name"] == "finetune":
                if initial_epoch <= phase["start"]:  # continue from the frozen phase's best weights
                    if tracker.best_weights is not None:
                        model.set_weights(tracker.best_weights)
                    tracker.wait, tracker.stopped_early = 0, False
                    state.pop("stopped_early", None)
                _prepare_phase(model, cfg, phase)
                _compile(model, cfg, head, len(labels), lr=phase["lr"])
                info(f"Fine-tuning: top {cfg.unfreeze_blocks} block(s) of the backbone trainable "
                     f"({phase['trainable_params']:,} parameters), lr {phase['lr']:g}, {cfg.finetune_epochs} epochs")
            elif phase["name"] == "frozen":
                _prepare_phase(model, cfg, phase)
                _compile(model, cfg, head, len(labels))
                info(f"Backbone frozen: training the head ({phase['trainable_params']:,} parameters)")
            tracker.phase = phase["name"] if len(phases) > 1 or phase["name"] != "full" else None
            callbacks = [
                cb.LRSchedule(phase["lr"], cfg.lr_schedule if phase["name"] != "finetune" else "constant",
                              cfg.epochs, cfg.lr_step, cfg.lr_gamma),
                tracker,
                progress,
            ]
            if tracker.stopped_early or state.get("stopped_early"):
                continue
            try:
                model.fit(train_ds, validation_data=val_ds, epochs=phase["end"],
                          initial_epoch=max(initial_epoch, phase["start"]), shuffle=False, callbacks=callbacks,
                          verbose=0)
            except KeyboardInterrupt:
                saved = int(cb.load_state(run_dir).get("epoch", 0))  # what --resume will start from
                if saved and not staged:
                    warn(f"Interrupted; epoch {saved} is saved. Continue with: edgecnn train "
                         f"--resume --name {final_dir.name} --project {cfg.project}")
                raise
            phase["epochs_run"] = sum(1 for row in tracker.history if row.get("phase", "full") == phase["name"])
            model.stop_training = False
        fit_s = time.perf_counter() - t_fit

        # ---- restore the best weights (from memory, else from the best-only checkpoint of an earlier session)
        best_path = run_dir / WEIGHTS_DIR / BEST_FILENAME
        if tracker.best_weights is not None:
            model.set_weights(tracker.best_weights)
        elif best_path.exists():
            model.set_weights(cb.load_checkpoint(best_path, run_dir).get_weights())
        distribution.release(plan)
        if plan.processes > 1:  # weights live in arrays spanning processes: evaluate and save a local copy
            local = build_model(cfg.arch, (h, w, cfg.channels), len(labels), head, knobs)
            _compile(local, cfg, head, len(labels))
            local.set_weights(model.get_weights())
            model = local
        if mixed:  # the saved model computes in float32 (exporters and CPUs want that)
            keras.mixed_precision.set_global_policy("float32")
            fp32 = build_model(cfg.arch, (h, w, cfg.channels), len(labels), head, knobs)
            fp32.set_weights(model.get_weights())
            model = fp32

        t_eval = time.perf_counter()
        held = len(data.val) + (len(data.test) if data.test is not None else 0)
        info(f"Evaluating the best weights on {held} held-out images ...")
        metrics = evaluate_splits(model, data, cfg, head, tracker, fit_s, time.perf_counter() - t_start)
        metrics["training"] = {
            "backend": acc.backend,
            "backend_version": acc.backend_version,
            "accelerator": acc.kind,
            "device_name": acc.names[0] if acc.names else None,
            "device_count": acc.count,
            "devices_used": plan.devices,
            "device_names": plan.device_names,
            "mixed_precision": mixed,
            "distribution": plan.to_dict(),
            "train_images_per_second": train_throughput(tracker.history, len(data.train)),
            "weights": getattr(model, "_edgecnn_weights", {"weights": cfg.weights or "random"}),
            "phases": [{k: v for k, v in p.items() if k != "unfreeze"} for p in phases],
        }
        history = tracker.history
        model_path = run_dir / MODEL_FILENAME
        with atomic_path(model_path) as tmp:
            model.save(tmp)
        card = run_card(cfg, model, data, head, metrics, model_path)
        card.save(run_dir / "modelcard.json")
        write_json(run_dir / METRICS_FILENAME, metrics)
        cb.write_history_csv(run_dir / cb.HISTORY_FILENAME, history)
        if cfg.plots:
            from edgecnn.training import plots

            info(f"Evaluated in {time.perf_counter() - t_eval:.1f}s; drawing the plots ...")
            if history:
                plots.plot_history(history, run_dir / PLOT_FILES["curves"])
            cm_split = "test" if data.test is not None else "val"
            plots.plot_confusion(np.asarray(metrics[cm_split]["confusion_matrix"]), labels,
                                 run_dir / PLOT_FILES["confusion"], f"Confusion matrix ({cm_split})")
            _prediction_mosaic(model, data.val, labels, run_dir / PLOT_FILES["predictions"])
    finally:
        distribution.release(plan)
        if mixed:
            keras.mixed_precision.set_global_policy("float32")
    if staged:  # the new run is complete: swap it in, the old one goes (files edgecnn did not write stay)
        from edgecnn.fileio import link_tree, publish_dir

        for entry in final_dir.iterdir():
            if entry.name not in OWNED and not (run_dir / entry.name).exists():
                link_tree(entry, run_dir / entry.name)
        publish_dir(run_dir, final_dir)
        run_dir, model_path = final_dir, final_dir / MODEL_FILENAME
    return TrainResult(run_dir=run_dir, model_path=model_path, metrics=metrics, card=card, history=history)

def _prediction_mosaic(model: Any, images: Any, labels: list[str], path: Path, limit: int = 32) -> None:
    """Validation images with their true and predicted labels, wrong ones first and marked (as Ultralytics'
    ``val_batch_pred``): one batched predict of the validation split, then a Pillow mosaic."""
    from edgecnn.mosaic import Tile, pick
    from edgecnn.training.evaluation import predict_probs

    if not len(images):
        return
    probs = predict_probs(model, images.x)
    if probs.shape[1] == 1:  # a one-unit sigmoid head: [1 - p, p]
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    pred = probs.argmax(axis=1)
    true = [labels[int(t)] for t in images.y]
    said = [labels[int(p)] for p in pred]
    scores = [float(probs[i, pred[i]]) for i in range(len(pred))]
    from edgecnn.mosaic import write_mosaic

    tiles = [Tile(images.x[i], true[i], said[i], scores[i]) for i in pick(true, said, scores, limit)]
    wrong = sum(a != b for a, b in zip(true, said))
    write_mosaic(tiles, path, title=f"validation: {len(true) - wrong} of {len(true)} right (wrong ones first, marked)")


def _build_start(cfg: TrainConfig, shape: tuple[int, int, int], num_classes: int, head: str,
                 knobs: ArchKnobs) -> tuple[Any, dict[str, Any]]:
    """The model a new run starts from: built, with its ``--weights`` loaded (recorded on the model)."""
    from edgecnn.training import weights as wts

    plan = wts.resolve(cfg.arch, cfg.weights, min(shape[:2]))
    if plan.backbone_file:
        model = wts.load_backbone_file(
            lambda: build_model(cfg.arch, shape, num_classes, head, knobs, backbone_weights=plan.backbone_file),
            plan.backbone_file, cfg.arch)
    else:
        model = build_model(cfg.arch, shape, num_classes, head, knobs)
    loaded = wts.apply(model, plan, cfg.arch)
    model._edgecnn_weights = loaded
    return model, loaded


def _phases(cfg: TrainConfig, model: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The training phases: ``full`` (one phase), or ``frozen`` then ``finetune`` for a pretrained backbone.

    Each is recorded in ``metrics.json`` and the card (``provenance.training.phases``) and each epoch's history row
    names its phase.
    """
    from edgecnn.training.architectures import ARCHITECTURES

    spec = ARCHITECTURES[cfg.arch].backbone
    if spec is None or not cfg.weights:
        return [{"name": "full", "start": 0, "end": cfg.epochs, "lr": cfg.lr}]
    phases = [{"name": "frozen", "start": 0, "end": cfg.epochs, "lr": cfg.lr, "unfreeze": 0}]
    if cfg.finetune_epochs:
        phases.append({"name": "finetune", "start": cfg.epochs, "end": cfg.epochs + cfg.finetune_epochs,
                       "lr": cfg.finetune_lr or cfg.lr / 10, "unfreeze": cfg.unfreeze_blocks,
                       "unfrozen_blocks": cfg.unfreeze_blocks})
    return phases


def _scratch_warmup(cfg: TrainConfig) -> int:
    """Epochs before early stopping counts: :data:`SCRATCH_WARMUP_EPOCHS` for a Keras Applications backbone
    trained from scratch (no ``--weights``), else 0."""
    from edgecnn.training.architectures import ARCHITECTURES, SCRATCH_WARMUP_EPOCHS

    return SCRATCH_WARMUP_EPOCHS if ARCHITECTURES[cfg.arch].backbone is not None and not cfg.weights else 0


def _prepare_phase(model: Any, cfg: TrainConfig, phase: dict[str, Any]) -> None:
    """Freeze the backbone, or unfreeze its top blocks, for ``phase``; records the trainable parameters."""
    from edgecnn.training.architectures import ARCHITECTURES, set_trainable

    spec = ARCHITECTURES[cfg.arch].backbone
    if spec is None:
        return
    set_trainable(model, spec, phase.get("unfreeze") or None)
    phase["trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def _compile(model: Any, cfg: TrainConfig, head: str, num_classes: int, lr: float | None = None) -> None:
    import keras

    k = cfg.top_k
    if head == "sigmoid":
        loss = keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing)
        metrics: list[Any] = [keras.metrics.BinaryAccuracy(name="accuracy")]
    elif cfg.label_smoothing > 0:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if k < num_classes:
            metrics.append(keras.metrics.TopKCategoricalAccuracy(k=k, name=f"top{k}_accuracy"))
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if k < num_classes:
            metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=k, name=f"top{k}_accuracy"))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr or cfg.lr), loss=loss, metrics=metrics)

def _class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced weights ``n / (classes * count)``; classes absent from the training split get 1."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    n = counts.sum()
    return {i: float(n / (num_classes * c)) if c else 1.0 for i, c in enumerate(counts)}

