"""Run-folder lifecycle of ``train``: where a run goes, what it owns, and what a failed or killed run leaves.

A folder that a killed or disk-full training left before its first checkpoint is an abandoned start
(:func:`abandoned_start`) and is reused; an interrupted run with a checkpoint stays resumable (:func:`after_failure`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgecnn.console import warn
from edgecnn.errors import ArtifactExistsError, ConfigError
from edgecnn.runs import (
    BEST_FILENAME,
    LAST_FILENAME,
    MODEL_FILENAME,
    SPLITS_FILENAME,
    WEIGHTS_DIR,
    latest_run,
    next_run_dir,
)
from edgecnn.training.config import TrainConfig

METRICS_FILENAME = "metrics.json"
CONFIG_FILENAME = "config.toml"
PLOT_FILES = {
    "curves": "curves.png",
    "confusion": "confusion_matrix.png",
    "samples": "augmented_samples.png",
    "summary": "model_summary.png",
    "predictions": "val_predictions.png",
}


#: What ``train`` writes before its first checkpoint: a folder holding only these is an abandoned start.
_START_FILES = frozenset({SPLITS_FILENAME, "labels.txt", CONFIG_FILENAME, "augmented_samples.png", "model_summary.png",
                          "history.csv"})


def abandoned_start(run_dir: Path) -> bool:
    """A run folder of a training killed (or out of disk) before its first checkpoint: nothing in it is worth keeping.

    It holds only what ``train`` writes before epoch 1 ends (splits, labels, config, sample plots), and no model
    and no ``weights/last.keras``; the same command may reuse it without ``--exist-ok``.
    """
    if not run_dir.is_dir():
        return False
    names = {p.name for p in run_dir.iterdir()}
    weights = run_dir / WEIGHTS_DIR
    if WEIGHTS_DIR in names:
        if weights.is_dir() and not any((weights / n).exists() for n in (LAST_FILENAME, BEST_FILENAME)):
            names.discard(WEIGHTS_DIR)
    return bool(names) and names <= _START_FILES and SPLITS_FILENAME in names or not names


def resolve_run_dir(cfg: TrainConfig) -> Path:
    """Where the run goes; raises when it exists and neither ``exist_ok`` nor ``resume`` is set.

    Leftovers of a training killed while staging an ``--exist-ok`` run are cleaned up first, and a folder that a
    killed or disk-full training left before its first checkpoint is reused (see :func:`abandoned_start`).
    """
    from edgecnn.fileio import recover_dir

    project = Path(cfg.project)
    if cfg.name:
        recover_dir(project / cfg.name)
    if cfg.resume:
        run_dir = project / cfg.name if cfg.name else latest_run(project)
        if run_dir is None or not (run_dir / WEIGHTS_DIR / LAST_FILENAME).exists():
            where = run_dir if run_dir is not None else project
            raise ConfigError(f"Nothing to resume in {where}: expected weights/last.keras from an earlier run.")
        return run_dir
    if cfg.name is None:
        return next_run_dir(project)
    run_dir = project / cfg.name
    if run_dir.exists() and not run_dir.is_dir():
        raise ArtifactExistsError(f"{run_dir} is a file, not a run folder; choose another --name or --project.")
    if run_dir.exists() and not cfg.exist_ok and not abandoned_start(run_dir):
        if not (run_dir / MODEL_FILENAME).exists() and (run_dir / "weights" / "last.keras").exists():
            raise ArtifactExistsError(
                f"Run folder {run_dir} holds an unfinished training (weights/last.keras, no model.keras); continue it "
                f"with --resume --name {run_dir.name}, start over with --exist-ok, or choose another --name.")
        raise ArtifactExistsError(
            f"Run folder {run_dir} already exists; pass --exist-ok to overwrite it, --resume to continue it, "
            "or choose another --name."
        )
    return run_dir


def after_failure(cfg: TrainConfig, run_dir: Path, final_dir: Path, staged: bool, created: bool,
                   exc: BaseException) -> None:
    """Leave a failed or interrupted training resumable (a checkpoint exists) or cleanly reusable (none does)."""
    if staged:
        shutil.rmtree(run_dir, ignore_errors=True)
        warn(f"Training did not finish; the previous run in {final_dir} is kept unchanged.")
        return
    has_checkpoint = (run_dir / WEIGHTS_DIR / LAST_FILENAME).exists()
    if cfg.resume or has_checkpoint:
        if not isinstance(exc, KeyboardInterrupt) and has_checkpoint:  # KeyboardInterrupt words its own hint
            warn(f"Training stopped; its last checkpoint is kept. Continue with: edgecnn train --resume --name "
                 f"{final_dir.name} --project {cfg.project}")
        return
    if created or abandoned_start(run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing to resume: the same command can start again


#: What a run folder holds that edgecnn wrote (``--exist-ok`` replaces these; anything else in the folder is kept).
OWNED = frozenset({"weights", "export", MODEL_FILENAME, "modelcard.json", METRICS_FILENAME, "history.csv",
                    *PLOT_FILES.values(), SPLITS_FILENAME, "labels.txt", CONFIG_FILENAME})


def clear_run(run_dir: Path) -> None:
    """Remove what an earlier run wrote in ``run_dir`` (``--exist-ok``): its model, card, metrics, plots, checkpoints
    and exports would otherwise sit beside the new run's splits and config (or survive an interrupted new run)."""
    from edgecnn.training.callbacks import HISTORY_FILENAME

    for sub in (WEIGHTS_DIR, "export"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)
    for name in (MODEL_FILENAME, "modelcard.json", METRICS_FILENAME, HISTORY_FILENAME, *PLOT_FILES.values()):
        (run_dir / name).unlink(missing_ok=True)
