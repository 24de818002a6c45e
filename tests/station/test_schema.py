"""The station file: every problem one line (file, field path, expected, received, did-you-mean); secrets from the
environment; run options generated from the run table; the JSON Schema describes what the checker accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecnn.station.fields import Secret
from edgecnn.station.params import CLI_ONLY, RUN_PARAMS
from edgecnn.station.schema import RUN_FIELDS, StationFileError, load_station, station_schema

GOOD = """
name = "line3"
model = "model.tflite"
[run]
threads = 2
top_k = 3
[[sources]]
name = "cam1"
source = "rtsp://op:{CAM_PASSWORD}@10.0.0.5/stream"
width = 640
height = 480
[[sources.regions]]
name = "left"
box = [0, 0, 320, 480]
[[sources.regions]]
name = "right"
box = [0.5, 0.0, 1.0, 1.0]
[[sources]]
name = "cam2"
camera = 0
[rules]
votes = 2
window = 3
reject = ["ng"]
thresholds = { ng = 0.6 }
[serve]
port = 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, environ: dict | None = None) -> list[str]:
    with pytest.raises(StationFileError) as info:
        load_station(write(tmp_path, text), environ if environ is not None else {"CAM_PASSWORD": "pw"})
    return info.value.problems


def test_a_good_file(tmp_path):
    st = load_station(write(tmp_path, GOOD), {"CAM_PASSWORD": "s3cret"})
    assert st.name == "line3" and st.model == tmp_path / "model.tflite" and st.state_dir == tmp_path / "line3.state"
    assert st.run == {"threads": 2, "topk": 3}
    assert [s.name for s in st.sources] == ["cam1", "cam2"] and st.sources[1].camera == 0
    assert st.sources[0].source == "rtsp://op:s3cret@10.0.0.5/stream" and st.sources[0].secret
    assert [r.resolve(640, 480) for r in st.sources[0].regions] == [(0, 0, 320, 480), (320, 0, 640, 480)]
    assert st.rules.threshold_of("ng") == 0.6 and st.rules.threshold_of("ok") == 0.0
    assert st.sections["serve"].port == 0 and st.secret_names == ("CAM_PASSWORD",)


@pytest.mark.parametrize(("change", "expected"), [
    (("top_k = 3", "top_kk = 3"), "run.top_kk: unknown field. Did you mean 'top_k'?"),
    (("top_k = 3", "show = true"), "run.show: unknown field"),
    (("threads = 2", "threads = 0"), "run.threads: expected a number >= 1; received 0."),
    (('name = "cam2"', 'name = "cam1"'), "sources[1].name: expected a name no other source has; received 'cam1'"),
    (("box = [0, 0, 320, 480]", "box = [0, 0, 700, 480]"),
     "sources[0].regions[0].box: expected a box inside the 640x480 frame the source sets; received [0, 0, 700, 480]."),
    (("box = [0.5, 0.0, 1.0, 1.0]", "box = [0.5, 0.0, 0.4, 1.0]"), "sources[0].regions[1].box: expected [x0, y0, x1, y1]"),
    (('name = "right"', 'name = "left"'), "sources[0].regions[1].name: expected a name no other region"),
    (("camera = 0", "camera = -1"), "sources[1].camera: expected an integer >= 0; received -1."),
    (("window = 3", "window = 1"), "rules.votes: expected at most rules.window (1) agreeing frames; received 2."),
    (("votes = 2", "votes = 2\nverdict = 'anyy'"), "rules.verdict: expected one of ['any', 'all', 'at_least']; "
                                                   "received 'anyy'. Did you mean 'any'?"),
    (("port = 0", "prot = 0"), "serve.prot: unknown field. Did you mean 'port'?"),
    (("port = 0", "port = 70000"), "serve.port: expected an integer between 0 and 65535; received 70000."),
    (('name = "line3"', 'name = "line3"\nsorces = []'), "sorces: unknown field. Did you mean 'sources'?"),
    (('name = "line3"', 'name = "line 3"'), "name: expected a name of letters"),
    (("[[sources.regions]]\nname = \"left\"", "[[sources.regions]]\nname = \"left\"\nrect = 1"),
     "sources[0].regions[0].rect: unknown field"),
])
def test_each_problem_is_one_line(tmp_path, change, expected):
    old, new = change
    assert old in GOOD
    lines = problems(tmp_path, GOOD.replace(old, new, 1))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{tmp_path / 'station.toml'}: ") and expected in lines[0], lines[0]


def test_every_problem_is_listed_at_once(tmp_path):
    text = GOOD.replace("threads = 2", "threads = 0").replace("port = 0", "prot = 0").replace("camera = 0",
                                                                                             "camera = 'x'")
    assert len(problems(tmp_path, text)) == 3


def test_the_cli_prints_every_problem_on_its_own_line(tmp_path, monkeypatch):
    """`edgecnn station run FILE` with three problems: three "Error:" lines, exit 2 (was one line with literal
    \\n between the problems)."""
    from typer.testing import CliRunner

    from edgecnn.cli import app

    text = GOOD.replace("threads = 2", "threads = 0").replace("port = 0", "prot = 0").replace("camera = 0",
                                                                                             "camera = 'x'")
    monkeypatch.setenv("CAM_PASSWORD", "pw")
    res = CliRunner().invoke(app, ["station", "run", str(write(tmp_path, text))])
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 3 and all("station.toml: " in ln and "\\n" not in ln for ln in errors), res.output


def test_a_missing_environment_variable_and_a_literal_secret(tmp_path):
    lines = problems(tmp_path, GOOD, environ={})
    assert len(lines) == 1 and "CAM_PASSWORD" in lines[0] and "expected environment variable" in lines[0]
    lines = problems(tmp_path, GOOD + 'token = "hunter2"\n')
    assert len(lines) == 1 and "serve.token" in lines[0] and "hunter2" not in lines[0]
    st = load_station(write(tmp_path, GOOD + 'token = "{TOKEN}"\n'), {"CAM_PASSWORD": "pw", "TOKEN": "hunter2"})
    assert st.sections["serve"].token == "hunter2" and isinstance(st.sections["serve"].token, Secret)
    assert "hunter2" not in repr(st.sections["serve"]) and repr(Secret("x")) == "'***'"


def test_no_source_and_no_model(tmp_path):
    lines = problems(tmp_path, 'name = "x"\n')
    assert any(line.endswith("model: expected a model file (model = \"model_int8.tflite\") or a deploy profile "
                              "(profile = \"deploy.json\"); received neither.") for line in lines)
    assert any("sources: expected at least one [[sources]]" in line for line in lines)


def test_run_fields_come_from_the_run_table():
    assert set(RUN_FIELDS.values()) == {p for p in RUN_PARAMS if p.name not in CLI_ONLY}
    assert "top_k" in RUN_FIELDS and "save_jsonl" in RUN_FIELDS and "show" not in RUN_FIELDS


def test_the_json_schema_accepts_the_example_and_refuses_a_misspelling(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from edgecnn.config import parse_toml
    from edgecnn.station.example import example_text

    schema = station_schema()
    json.dumps(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(parse_toml(GOOD), schema)
    jsonschema.validate(parse_toml(example_text("model_int8.tflite")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(parse_toml(GOOD.replace("top_k", "top_kk")), schema)


def test_the_example_is_a_valid_station_file(tmp_path):
    from edgecnn.station.example import example_text

    st = load_station(write(tmp_path, example_text("model_int8.tflite")), {})
    assert st.sources and st.rules.reject


def test_the_readme_station_file_is_valid():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = text[text.index("## Stations: one file"):].split("```toml\n", 1)[1].split("```", 1)[0]
    st = check_station_from_text(block)
    assert [s.name for s in st.sources] == ["cam1"] and set(st.sections) == {"serve", "monitor", "capture"}


def check_station_from_text(text: str):
    from edgecnn.config import parse_toml
    from edgecnn.station.schema import check_station

    return check_station(parse_toml(text), Path("README.md"), {"CAM1_PASSWORD": "x", "MQTT_PASSWORD": "y"})
