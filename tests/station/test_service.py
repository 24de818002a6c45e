"""``edgecnn devices service --station FILE``: the unit runs the station; secrets stay in the environment file."""

from __future__ import annotations

from typer.testing import CliRunner

from edgecnn.cli import app


def test_the_unit_runs_the_station_and_names_its_secrets(tmp_path, int8_model):
    station = tmp_path / "line 1.toml"
    station.write_text(f'name = "line1"\nmodel = "{int8_model}"\n[run]\nsave_jsonl = "rows/rows.jsonl"\n'
                       '[[sources]]\nname = "cam"\nsource = "rtsp://op:{CAM_PASSWORD}@10.0.0.5/s"\n')
    out = tmp_path / "edgecnn-line1.service"
    res = CliRunner().invoke(app, ["devices", "service", "--station", str(station), "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert 'station run "' in text and str(station) in text and "Description=edgecnn station line1" in text
    assert "EnvironmentFile=/etc/edgecnn/line1.env" in text and "CAM_PASSWORD" in text
    assert "op:" not in text and "set-at-boot" not in text
    assert f"-{tmp_path}/rows" in text and f"-{tmp_path}/line1.state" in text  # rows and state are writable
    res = CliRunner().invoke(app, ["devices", "service", str(int8_model), "--station", str(station)])
    assert res.exit_code == 2 and "received them as options too" in res.output
