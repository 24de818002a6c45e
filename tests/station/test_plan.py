"""Resolve once: defaults < device profile < deploy profile < station file < flags, into one immutable plan."""

from __future__ import annotations

import dataclasses

import pytest

from edgecnn.errors import ConfigError
from edgecnn.station.plan import resolve

STATION = """
model = "m.tflite"
device = "rpi4"
[run]
threads = 3
top_k = 2
[[sources]]
name = "cam"
source = "synthetic:5:64x48"
"""


def test_layers_in_order(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STATION)
    plan = resolve({"station": path, "topk": 4}, given={"topk"})
    opts = plan.run_options()
    assert opts.threads == 3 and plan.origins["threads"] == "station file"  # the file beats the device profile
    assert opts.topk == 4 and plan.origins["topk"] == "flag"  # a flag beats the file
    assert opts.width == 640 and plan.origins["width"] == "device profile rpi4"  # the profile fills the rest
    assert plan.origins["batch"] == "device profile rpi4" and plan.origins["fps"] in ("default", "device profile rpi4")
    assert opts.resolved and plan.is_station and plan.sources[0].name == "cam"
    assert "threads = 3 (station file)" in plan.describe()


def test_the_plan_is_immutable_and_engines_get_copies(tmp_path):
    plan = resolve({"model": "m.tflite", "source": "x.png", "threads": 2})
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "y"  # type: ignore[misc]
    copy = plan.run_options()
    copy.threads = 9
    assert plan.run_options().threads == 2 and plan.origins["threads"] == "flag" and not plan.is_station


def test_a_station_with_a_source_flag_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STATION)
    with pytest.raises(ConfigError, match="received --source/--camera too"):
        resolve({"station": path, "source": "x.png"})


def test_a_folder_as_model_resolves_through_the_plan(tmp_path):
    """A MODEL that is a folder without a deploy profile picks its best artifact; the origin says so."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model-int8.tflite").write_bytes(b"x")
    plan = resolve({"model": folder, "source": "x.png"})
    assert plan.run_options().model == folder / "model-int8.tflite"
    assert plan.origins["model"] == "the best artifact of export"


def test_a_station_runs_locally(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STATION.replace("top_k = 2", 'top_k = 2\nengine = "ray"'))
    with pytest.raises(ConfigError, match=r"engine = \"local\" for a station.*'ray' \(station file\)"):
        resolve({"station": path})
    assert resolve({"model": "m.tflite", "source": "d/", "engine": "ray"}).engine == "ray"
