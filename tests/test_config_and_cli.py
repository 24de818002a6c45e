"""TOML configuration layers and the CLI frame (version, error handling)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from edgecnn import __version__
from edgecnn.cli import app
from edgecnn.config import build, check_keys, dumps, flatten, load_toml
from edgecnn.errors import ConfigError


@dataclass
class _Cfg:
    epochs: int = 10
    lr: float = 1e-3
    hflip: bool = False
    name: str = "exp"


def test_layers_merge_and_coerce(tmp_path):
    cfg = build(_Cfg, {"epochs": 3}, {"lr": "0.01", "hflip": "true"}, {"epochs": None})
    assert cfg == _Cfg(epochs=3, lr=0.01, hflip=True)


def test_unknown_key_suggests_closest(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        check_keys({"epoch": 3}, _Cfg, "config.toml")
    with pytest.raises(ConfigError, match="expects int"):
        build(_Cfg, {"epochs": "many"})


def test_toml_round_trip(tmp_path):
    data = {"epochs": 5, "lr": 0.5, "hflip": True, "name": "ﺏ run", "aug": {"rotation": 10.0}}
    (tmp_path / "c.toml").write_text(dumps(data), encoding="utf-8")
    back = load_toml(tmp_path / "c.toml")
    assert back == data
    assert flatten(back, ("aug",)) == {"epochs": 5, "lr": 0.5, "hflip": True, "name": "ﺏ run", "rotation": 10.0}


def test_bad_toml_is_one_line_error(tmp_path):
    (tmp_path / "bad.toml").write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="Cannot parse"):
        load_toml(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "missing.toml")


def test_cli_version_and_help():
    runner = CliRunner()
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0


def test_python_dash_m_works():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "edgecnn", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and __version__ in out.stdout


def test_library_warning_is_printed_once_without_logging_configured():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "from edgecnn.console import warn; warn('just once')"],
                         capture_output=True, text=True, timeout=60)
    assert out.stderr.count("just once") == 1, out.stderr
