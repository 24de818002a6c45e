"""Keras callbacks of a training run: run-state tracking (history, best-only and last checkpoints, early
stopping, resume state), the learning-rate schedule, and the progress display.

Imports Keras at module level: import it only from the trainer.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import keras

from edgecnn.console import info
from edgecnn.fileio import atomic_path, fault_point, write_json, write_text
from edgecnn.runs import BEST_FILENAME, LAST_FILENAME, STATE_FILENAME, WEIGHTS_DIR

__all__ = ["BEST_FILENAME", "HISTORY_FILENAME", "LAST_FILENAME", "STATE_FILENAME", "WEIGHTS_DIR", "LRSchedule",
           "Progress", "RunTracker", "load_state", "lr_at", "write_history_csv"]
HISTORY_FILENAME = "history.csv"


def lr_at(epoch: int, lr: float, schedule: str, epochs: int, step: int = 10, gamma: float = 0.5) -> float:
    """Learning rate of (0-based) ``epoch``: ``constant``, ``step`` (×gamma every ``step`` epochs) or ``cosine``
    (from ``lr`` down to ``lr/100`` at the last epoch)."""
    if schedule == "step":
        return lr * gamma ** (epoch // step)
    if schedule == "cosine":
        floor = lr * 0.01
        return floor + 0.5 * (lr - floor) * (1.0 + math.cos(math.pi * min(epoch, epochs - 1) / max(1, epochs - 1)))
    return lr


class LRSchedule(keras.callbacks.Callback):
    """Sets the optimizer's learning rate at the start of every epoch (epoch-indexed, so resume-safe)."""

    def __init__(self, lr: float, schedule: str, epochs: int, step: int, gamma: float) -> None:
        super().__init__()
        self.args = (lr, schedule, epochs, step, gamma)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        lr, schedule, epochs, step, gamma = self.args
        self.model.optimizer.learning_rate.assign(lr_at(epoch, lr, schedule, epochs, step, gamma))


def write_history_csv(path: Path, history: list[dict[str, Any]]) -> Path:
    """History rows (one per epoch) as CSV, columns in first-seen order."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return write_text(path, buf.getvalue())


class RunTracker(keras.callbacks.Callback):
    """History, best-only checkpoint (val loss), last checkpoint + resume state, and early stopping.

    After each epoch it atomically writes ``weights/best.keras`` (when val loss improved),
    ``weights/last.keras``, ``weights/state.json`` and ``history.csv``. With ``patience > 0`` training stops
    after ``patience`` epochs without improvement, counted from epoch ``start_from_epoch + 1`` (Keras'
    ``EarlyStopping`` name: the epochs before it never stop training, while the best weights are still kept). The
    best weights are kept in memory for restoring.
    """

    def __init__(self, run_dir: Path, patience: int, state: dict[str, Any] | None = None,
                 start_from_epoch: int = 0) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.weights_dir = run_dir / WEIGHTS_DIR
        self.patience = patience
        self.start_from_epoch = start_from_epoch
        state = state or {}
        self.history: list[dict[str, Any]] = list(state.get("history", []))
        self.best = float(state.get("best_val_loss", math.inf))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.wait = int(state.get("wait", 0))
        self.best_weights: list[Any] | None = None
        self.stopped_early = bool(state.get("stopped_early", False))  # a resumed early-stopped run stays stopped
        self._t0 = 0.0
        self._train_s: float | None = None
        self.phase: str | None = None  # the training phase (``frozen``/``finetune``), a history column when set

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.perf_counter()
        self._train_s = None

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._train_s is None:  # validation starts: the epoch's training steps are done
            self._train_s = time.perf_counter() - self._t0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        row: dict[str, Any] = {"epoch": epoch + 1}
        if self.phase:
            row["phase"] = self.phase
        row.update({k: float(v) for k, v in logs.items() if k != "learning_rate"})
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["time_s"] = time.perf_counter() - self._t0
        row["train_s"] = self._train_s if self._train_s is not None else row["time_s"]
        self.history.append(row)
        val_loss = float(logs.get("val_loss", logs.get("loss", math.inf)))
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        if val_loss < self.best:
            self.best, self.best_epoch, self.wait = val_loss, epoch + 1, 0
            self.best_weights = self.model.get_weights()
            with atomic_path(self.weights_dir / BEST_FILENAME) as tmp:
                self.model.save(tmp)
        elif epoch + 1 > self.start_from_epoch:
            self.wait += 1
            if self.patience and self.wait >= self.patience:
                self.model.stop_training = True
                self.stopped_early = True
        with atomic_path(self.weights_dir / LAST_FILENAME) as tmp:
            self.model.save(tmp)
        write_json(self.weights_dir / STATE_FILENAME, self.state())
        write_history_csv(self.run_dir / HISTORY_FILENAME, self.history)
        fault_point("train:checkpoint")

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.history[-1]["epoch"] if self.history else 0,
            "best_val_loss": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_early": self.stopped_early,
            "history": self.history,
        }


def load_state(run_dir: Path) -> dict[str, Any]:
    """The resume state of a run (``weights/state.json``); {} when there is none.

    Raises:
        ConfigError: the file is damaged (names it and the ways out).
    """
    from edgecnn.errors import ConfigError

    path = run_dir / WEIGHTS_DIR / STATE_FILENAME
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError(f"expected a JSON object, found {type(state).__name__}")
        int(state.get("epoch", 0))
        float(state.get("best_val_loss", math.inf))
        if not isinstance(state.get("history", []), list):
            raise ValueError("'history' is not a list")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is damaged ({str(exc).splitlines()[0][:120]}); --resume cannot continue from it. Delete it to "
            f"resume from {LAST_FILENAME} at epoch 0, or start over with --exist-ok --name {run_dir.name}.") from exc
    return state


def load_checkpoint(path: Path, run_dir: Path) -> Any:
    """Load a checkpoint (``last.keras``/``best.keras``) of a run, naming the file and the way out when damaged.

    Raises:
        ModelError: the file is missing, truncated or not a Keras archive.
    """
    import zipfile

    from edgecnn.errors import ModelError

    way_out = (f"start over with --exist-ok --name {run_dir.name}" + (
        f", or copy {BEST_FILENAME} over it to resume from the best epoch" if path.name != BEST_FILENAME
        and (path.parent / BEST_FILENAME).exists() else ""))
    if not path.is_file():
        raise ModelError(f"Checkpoint {path} is missing; {way_out}.")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"Checkpoint {path} is damaged (truncated or not a .keras archive, "
                         f"{path.stat().st_size} bytes); {way_out}.")
    try:
        return keras.models.load_model(path)
    except Exception as exc:  # noqa: BLE001  (Keras raises ValueError, OSError, zipfile and h5 errors alike)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"Checkpoint {path} cannot be loaded ({first}); {way_out}.") from exc


#: Without a terminal (CI, a log file, systemd) the in-epoch progress is a plain line at most this often.
PLAIN_PROGRESS_EVERY_S = 15.0


class Progress(keras.callbacks.Callback):
    """Training progress on stderr, silenced by ``--quiet``: a bar through each epoch's batches on a terminal (Rich,
    transient) or a plain line every :data:`PLAIN_PROGRESS_EVERY_S` seconds without one (never carriage returns
    in a log), then one aligned row per epoch under a header printed once: metrics, learning rate, time, ETA.
    The row fits 80 columns."""

    def __init__(self, epochs: int, tracker: RunTracker) -> None:
        super().__init__()
        self.epochs = epochs
        self.tracker = tracker
        self.times: list[float] = []
        self._t0 = 0.0
        self._last_plain = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._header_done = False

    def _steps(self) -> int | None:
        steps = (self.params or {}).get("steps")
        return int(steps) if steps else None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from edgecnn.console import interactive, is_quiet

        self._t0 = self._last_plain = time.perf_counter()
        self._epoch = epoch
        if is_quiet() or not interactive():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from edgecnn.console import err_console

        self._bar = Progress(TextColumn(f"epoch {epoch + 1}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=getattr(err_console, "rich", err_console), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("batches", total=self._steps())

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=batch + 1)
            return
        from edgecnn.console import is_quiet

        now = time.perf_counter()
        if is_quiet() or now - self._last_plain < PLAIN_PROGRESS_EVERY_S:
            return
        self._last_plain = now
        steps = self._steps()
        done = batch + 1
        left = f", about {_fmt_time((now - self._t0) / done * (steps - done))} left in it" if steps else ""
        info(f"epoch {self._epoch + 1}/{self.epochs}: batch {done}{f'/{steps}' if steps else ''}{left}")

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._stop_bar()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._stop_bar()
        logs = logs or {}
        dt = time.perf_counter() - self._t0
        self.times.append(dt)
        recent = self.times[-5:]
        eta = sum(recent) / len(recent) * (self.epochs - epoch - 1)
        topk = next((k for k in logs if k.startswith("val_top")), None)
        columns = [("loss", "loss"), ("accuracy", "acc"), ("val_loss", "v_loss"), ("val_accuracy", "v_acc")]
        if topk:
            columns.append((topk, "v_" + topk[4:].replace("_accuracy", "")))
        width = len(str(self.epochs)) * 2 + 1
        if not self._header_done:
            self._header_done = True
            info(f"{'epoch':>{max(5, width)}} " + " ".join(f"{short:>7}" for key, short in columns if key in logs)
                 + f" {'lr':>8} {'time':>6} {'ETA':>6}")
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = f"{f'{epoch + 1}/{self.epochs}':>{max(5, width)}} "
        row += " ".join(f"{float(logs[key]):7.4f}" for key, _ in columns if key in logs)
        row += f" {lr:8.1e} {_fmt_time(dt, tenths=True):>6} {_fmt_time(eta):>6}"
        if self.tracker.best_epoch == epoch + 1:
            row += " *best"
        info(row)
        if self.tracker.stopped_early and self.tracker.best_epoch != epoch + 1:
            info(f"Early stop: no better val_loss since epoch {self.tracker.best_epoch} (its weights are kept).")


def _fmt_time(seconds: float, tenths: bool = False) -> str:
    if tenths and seconds < 60:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
