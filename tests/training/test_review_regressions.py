"""Regression tests for correctness bugs found in a code review of the training package."""

from __future__ import annotations

from edgecnn.training import TrainConfig, build_config


def test_config_toml_never_carries_resume_or_exist_ok(tmp_path):
    """A run's config.toml loaded again with --config must start a NEW run: a saved ``resume = true`` turned it
    into a resume of the old run, and a saved ``exist_ok = true`` wiped the old run folder."""
    cfg = TrainConfig(data="d", name="r", exist_ok=True, resume=True)
    text = cfg.to_toml()
    assert "resume" not in text and "exist_ok" not in text
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    again = build_config(config_file=path, overrides={"epochs": 7})
    assert again.resume is False and again.exist_ok is False
    assert again.data == "d" and again.name == "r" and again.epochs == 7


def test_resumed_early_stopped_run_is_reported_as_stopped(tmp_path):
    """--resume of a run that stopped early skips fit; its metrics must still say stopped_early."""
    from edgecnn.training.callbacks import RunTracker

    state = {"epoch": 5, "stopped_early": True, "best_epoch": 2, "best_val_loss": 0.5, "wait": 3, "history": []}
    tracker = RunTracker(tmp_path, patience=3, state=state)
    assert tracker.stopped_early is True and tracker.best_epoch == 2 and tracker.wait == 3
    assert RunTracker(tmp_path, patience=3, state={}).stopped_early is False
