"""edgecnn.training.callbacks: the run tracker (early stopping state kept across --resume)."""

from __future__ import annotations


def test_resumed_early_stopped_run_is_reported_as_stopped(tmp_path):
    """--resume of a run that stopped early skips fit; its metrics must still say stopped_early."""
    from edgecnn.training.callbacks import RunTracker

    state = {"epoch": 5, "stopped_early": True, "best_epoch": 2, "best_val_loss": 0.5, "wait": 3, "history": []}
    tracker = RunTracker(tmp_path, patience=3, state=state)
    assert tracker.stopped_early is True and tracker.best_epoch == 2 and tracker.wait == 3
    assert RunTracker(tmp_path, patience=3, state={}).stopped_early is False
