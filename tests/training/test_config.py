"""Configuration layering (preset < --config < flags), presets, and validation errors."""

from __future__ import annotations

import pytest

from edgecnn.errors import ConfigError, DataError
from edgecnn.training import TrainConfig, build_config, load_preset, preset_names
from edgecnn.training.architectures import ARCHITECTURES

EXPECTED_PRESETS = {"mnist", "arabic-letters", "fan-aoi", "emotion-lenet", "digits"}


def test_all_presets_ship_and_resolve():
    assert EXPECTED_PRESETS <= set(preset_names())
    for name in preset_names():
        cfg = build_config(preset=name, overrides={"data": "somewhere"})
        assert cfg.preset == name
        assert cfg.arch in ARCHITECTURES


def test_presets_reproduce_their_classic_setups():
    mnist = build_config(preset="mnist", overrides={"data": "d"})
    assert (mnist.img_size, mnist.channels, mnist.arch, mnist.label_smoothing) == ("28", 1, "simple", 0.0)
    arabic = build_config(preset="arabic-letters", overrides={"data": "d"})
    assert (arabic.img_size, arabic.channels, arabic.arch) == ("32", 1, "blocks")
    assert arabic.rotation > 0 and arabic.width_shift > 0 and arabic.shear > 0 and arabic.zoom > 0
    assert arabic.lr_schedule != "constant" and arabic.patience > 0
    fan = build_config(preset="fan-aoi", overrides={"data": "d"})
    assert (fan.img_size, fan.channels, fan.head) == ("80", 3, "sigmoid")
    emo = build_config(preset="emotion-lenet", overrides={"data": "d"})
    assert (emo.img_size, emo.channels, emo.arch, emo.top_k) == ("48", 1, "lenet", 3)
    assert emo.l2 > 0 and emo.dropout > 0
    digits = build_config(preset="digits")
    assert digits.dataset == "digits" and digits.data is None


def test_layers_flags_override_file_override_preset(tmp_path):
    cfg_file = tmp_path / "train.toml"
    cfg_file.write_text('preset = "mnist"\n[train]\nepochs = 7\nbatch = 8\n[model]\ndropout = 0.1\n', encoding="utf-8")
    cfg = build_config(config_file=cfg_file, overrides={"data": "d", "batch": 4, "epochs": None})
    assert cfg.preset == "mnist" and cfg.img_size == "28"  # from the preset named in the file
    assert cfg.epochs == 7 and cfg.dropout == 0.1  # file beats preset
    assert cfg.batch == 4  # flag beats file; None means "not given"


def test_data_flag_replaces_preset_dataset():
    cfg = build_config(preset="digits", overrides={"data": "mine"})
    assert cfg.data == "mine" and cfg.dataset is None


def test_resolved_config_round_trips(tmp_path):
    cfg = build_config(preset="arabic-letters", overrides={"data": "d", "img_size": "24x32"})
    assert cfg.img_size == "24x32" and cfg.size == (24, 32)
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    again = build_config(config_file=path)
    assert again == cfg


def test_unknown_key_in_file_suggests_closest(tmp_path):
    cfg_file = tmp_path / "bad.toml"
    cfg_file.write_text("[augment]\nrotaton = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rotaton.*Did you mean 'rotation'"):
        build_config(config_file=cfg_file, overrides={"data": "d"})


@pytest.mark.parametrize(
    ("overrides", "err", "pattern"),
    [
        ({"img_size": "0"}, DataError, "positive --img-size"),
        ({"img_size": "abc"}, DataError, "N or HxW"),
        ({"channels": 2}, DataError, "channels 1 or 3"),
        ({"arch": "lenett"}, ConfigError, "Did you mean 'lenet'"),
        ({"lr_schedule": "cosin"}, ConfigError, "Did you mean 'cosine'"),
        ({"interpolation": "cubic"}, ConfigError, "interpolation"),
        ({"val_split": 0.0}, ConfigError, "val_split"),
        ({"epochs": 0}, ConfigError, "epochs >= 1"),
        ({"dropout": 1.5}, ConfigError, "dropout"),
        ({"epochs": "many"}, ConfigError, "expects int"),
        ({"dataset": "digts"}, DataError, "Did you mean 'digits'"),
        ({"name": "a/b"}, ConfigError, "plain folder name"),
    ],
)
def test_invalid_values(overrides, err, pattern):
    layer = {"data": "d", **overrides}
    if "dataset" in overrides:
        layer.pop("data")
    with pytest.raises(err, match=pattern):
        build_config(overrides=layer)


def test_no_data_source_is_an_error():
    with pytest.raises(ConfigError, match="--data DIR"):
        build_config()


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'mnist'"):
        load_preset("mnst")


def test_defaults_match_documented_contract():
    cfg = TrainConfig()
    assert (cfg.val_split, cfg.interpolation, cfg.project, cfg.lr_schedule) == (0.2, "area", "runs/train", "constant")


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
