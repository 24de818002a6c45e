"""edgecnn.training.callbacks: the run tracker (early stopping state kept across --resume)."""

from __future__ import annotations


def test_resumed_early_stopped_run_is_reported_as_stopped(tmp_path):
    """--resume of a run that stopped early skips fit; its metrics must still say stopped_early."""
    from edgecnn.training.callbacks import RunTracker

    state = {"epoch": 5, "stopped_early": True, "best_epoch": 2, "best_val_loss": 0.5, "wait": 3, "history": []}
    tracker = RunTracker(tmp_path, patience=3, state=state)
    assert tracker.stopped_early is True and tracker.best_epoch == 2 and tracker.wait == 3
    assert RunTracker(tmp_path, patience=3, state={}).stopped_early is False


def test_early_stopping_counts_only_after_start_from_epoch(tmp_path):
    """A backbone from scratch sits at chance on validation for its first epochs; with ``start_from_epoch`` those
    epochs never stop training, while the best weights are still tracked; after them, patience counts as usual."""
    import keras

    from edgecnn.training.callbacks import RunTracker

    def fit_losses(tracker: RunTracker, losses: list[float]) -> int:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        tracker.set_model(model)
        model.stop_training = False
        for epoch, loss in enumerate(losses):
            tracker.on_epoch_begin(epoch)
            tracker.on_epoch_end(epoch, {"loss": loss, "val_loss": loss})
            if model.stop_training:
                return epoch + 1
        return len(losses)

    rising = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 0.9, 1.0, 1.1, 1.2]
    plain = RunTracker(tmp_path / "a", patience=2)
    assert fit_losses(plain, rising) == 3 and plain.stopped_early and plain.best_epoch == 1
    warm = RunTracker(tmp_path / "b", patience=2, start_from_epoch=6)
    assert fit_losses(warm, rising) == 9  # epochs 1-6 never count; 7 improves; 8 and 9 do not: stop at 9
    assert warm.stopped_early and warm.best_epoch == 7 and warm.wait == 2


def test_a_backbone_from_scratch_records_its_early_stopping_warmup():
    from edgecnn.training.architectures import SCRATCH_WARMUP_EPOCHS
    from edgecnn.training.config import TrainConfig
    from edgecnn.training.trainer import _scratch_warmup

    assert _scratch_warmup(TrainConfig(arch="mobilenet-v2")) == SCRATCH_WARMUP_EPOCHS > 0
    assert _scratch_warmup(TrainConfig(arch="mobilenet-v2", weights="imagenet")) == 0
    assert _scratch_warmup(TrainConfig(arch="simple")) == 0
