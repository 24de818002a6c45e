"""The outputs as a station file declares them: checked by the station's checker (every problem one line, secrets
from the environment), described by its JSON Schema, and built into outputs by each kind's ``create()``."""

from __future__ import annotations

import pytest

from edgecnn.station.outputs import KINDS, module
from edgecnn.station.schema import OUTPUTS, StationFileError, load_station, station_schema

FILE = """
name = "line1"
model = "model.tflite"
[[sources]]
name = "cam"
camera = 0
[[outputs]]
kind = "mqtt"
host = "127.0.0.1"
username = "plc"
password = "{MQTT_PASSWORD}"
qos = 1
[[outputs]]
kind = "opcua"
port = 4841
[[outputs]]
kind = "modbus"
port = 5021
[[outputs]]
kind = "gpio"
backend = "record"
mode = "level"
[[outputs]]
kind = "webhook"
name = "mes"
url = "http://127.0.0.1:9/hook"
token = "{MES_TOKEN}"
follow = "*"
"""


def test_every_kind_is_registered_with_the_station_file():
    assert sorted(OUTPUTS) == sorted(KINDS)


def test_a_station_file_with_every_output(tmp_path):
    path = tmp_path / "station.toml"
    path.write_text(FILE)
    cfg = load_station(path, {"MQTT_PASSWORD": "pw-from-env", "MES_TOKEN": "tok-from-env"})
    by_name = {o.name: o for o in cfg.outputs}
    assert sorted(by_name) == ["gpio", "mes", "modbus", "mqtt", "opcua"]
    mqtt = by_name["mqtt"].config
    assert mqtt.password == "pw-from-env" and "pw-from-env" not in repr(mqtt)
    assert by_name["mes"].config.follow == "*" and by_name["gpio"].config.follow == "station"
    for out in cfg.outputs:
        made = module(out.kind).create(out.config, station=cfg.name, labels=["ok", "ng"], model_sha256="",
                                       state_dir=tmp_path / "state", name=out.name)
        assert made.name == out.name and made.kind == out.kind


@pytest.mark.parametrize("change, expected", [
    ('qos = 1', "outputs[0].qos: expected one of [0, 1]; received 2"),
    ('port = 4841', "outputs[1].prot"),
    ('mode = "level"', "outputs[3].mode: expected one of ['pulse', 'level']; received 'blinking'"),
    ('password = "{MQTT_PASSWORD}"', "outputs[0].password: expected an environment placeholder"),
    ('qos = 1\n[[outputs]]', "outputs[0]: topic: expected a topic with placeholders among"),
    ('url = "http://127.0.0.1:9/hook"', "outputs[4].url: expected a text; received nothing (the field is required)"),
])
def test_output_problems_are_one_line_each(tmp_path, change, expected):
    bad = {"qos = 1": "qos = 2", "port = 4841": "prot = 4841", 'mode = "level"': 'mode = "blinking"',
           'password = "{MQTT_PASSWORD}"': 'password = "literal-pw"',
           'qos = 1\n[[outputs]]': 'qos = 1\ntopic = "x/{camera}"\n[[outputs]]', 'url = "http://127.0.0.1:9/hook"': ''}[change]
    path = tmp_path / "station.toml"
    path.write_text(FILE.replace(change, bad, 1))
    with pytest.raises(StationFileError) as info:
        load_station(path, {"MQTT_PASSWORD": "x", "MES_TOKEN": "y"})
    assert any(expected in line for line in info.value.problems), info.value.problems
    assert "literal-pw" not in "\n".join(info.value.problems)


def test_the_json_schema_describes_each_kind():
    schema = station_schema()
    kinds = schema["properties"]["outputs"]["items"]["oneOf"]
    by_kind = {k["properties"]["kind"]["const"]: k for k in kinds}
    assert sorted(by_kind) == sorted(KINDS)
    assert by_kind["mqtt"]["properties"]["qos"]["enum"] == [0, 1]
    assert "default" not in by_kind["mqtt"]["properties"]["password"]
    assert by_kind["modbus"]["properties"]["port"]["maximum"] == 65535
