"""The station file (``station.toml``): what it may hold, how it is checked, and its JSON Schema.

A station file describes a whole station::

    name = "line3"                      # used in topics and unit names
    model = "model_int8.tflite"         # an artifact, or: profile = "deploy.json" (bench --pick)
    device = "rpi5"                     # optional device profile
    [run]                               # any `edgecnn run` option (generated from the same table as the flags)
    threads = 2
    [[sources]]                         # one or more named sources, each on its own reader
    name = "cam1"
    source = "rtsp://{CAM1_USER}:{CAM1_PASSWORD}@10.0.0.5/stream"
    [[sources.regions]]                 # optional regions: [x0, y0, x1, y1] in pixels (integers) or fractions
    name = "left"
    box = [0.0, 0.0, 0.5, 1.0]
    [rules]                             # thresholds, N-of-M debounce, station verdict, latch and hold
    [[outputs]]                         # kind = mqtt | opcua | modbus | gpio | webhook, and that kind's fields
    [serve] [capture] [monitor]         # optional sections of the HTTP server and the monitors

It is checked as Frigate checks its config, but every problem is listed at once, each one line: the file, the
field path, what was expected and what was received, and the closest known key for a misspelt one. Secrets are
``{ENV_NAME}`` placeholders filled from the environment (:mod:`edgecnn.station.fields`). Paths are relative to the
station file's folder.

Sections and output kinds that other parts own are found through :data:`SECTIONS` and :data:`OUTPUTS`
("module:attribute", imported on use): each is a frozen dataclass whose field metadata gives help, bounds, choices
and secrets, so this module validates them and writes their schema without knowing them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError
from edgecnn.station.config import (  # noqa: F401  (the station file's dataclasses: schema's API, as before)
    OutputConfig,
    RegionConfig,
    RulesConfig,
    SourceConfig,
    StationConfig,
    StationFileError,
)
from edgecnn.station.fields import Problems, build, convert, fill, json_schema, received
from edgecnn.station.outputs import KINDS
from edgecnn.station.params import CLI_ONLY, RUN_PARAMS, Param, check_value, flag, param

#: Optional sections owned by other parts: name -> "module:dataclass" (imported on use).
SECTIONS: dict[str, str] = {
    "serve": "edgecnn.serve.config:ServeConfig",
    "monitor": "edgecnn.monitor.drift:MonitorConfig",
    "capture": "edgecnn.monitor.capture:CaptureConfig",
}
#: Sections whose part watches every frame: name -> "module:factory" giving an
#: :class:`~edgecnn.station.events.Observer` (``create(config, *, station, labels, model_sha256, state_dir,
#: raise_alarm)``); a config with ``enabled = false`` makes none.
OBSERVERS: dict[str, str] = {
    "monitor": "edgecnn.monitor.drift:create",
    "capture": "edgecnn.monitor.capture:create",
}
#: Sections whose fields are also ``edgecnn run`` flags (``--capture``, ``--capture-below 0.5``, ``--monitor``...).
FLAG_SECTIONS = ("capture", "monitor")
#: Output kinds: kind -> the module that exposes ``CONFIG`` (its dataclass), ``create(...)`` and ``check(...)``
#: (the kinds of :data:`edgecnn.station.outputs.KINDS`).
OUTPUTS: dict[str, str] = {kind: f"edgecnn.station.outputs.{module}" for kind, module in KINDS.items()}

#: Names of sources, regions, outputs and the station: they appear in MQTT topics, OPC UA nodes and file names.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME_EXPECTED = "a name of letters, digits, '_', '.', '-' (at most 64, starting with a letter or digit)"


# ------------------------------------------------------------------------------------------ the run table's fields
def run_field(p: Param) -> str:
    """A ``run`` option's key in the station file: its flag spelled with underscores (``--top-k`` -> ``top_k``)."""
    return flag(p).lstrip("-").replace("-", "_")


#: ``[run]`` keys -> the table's rows (every ``edgecnn run`` option a station file may set).
RUN_FIELDS: dict[str, Param] = {run_field(p): p for p in RUN_PARAMS if p.name not in CLI_ONLY}
_SOURCE_KEYS = ("name", "source", "camera", "width", "height", "fps", "regions")
_TOP_KEYS = ("name", "model", "profile", "device", "state_dir", "run", "sources", "rules", "outputs")


def load_target(target: str) -> Any:
    import importlib

    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def section_params() -> tuple[Param, ...]:
    """The ``edgecnn run`` options generated from :data:`FLAG_SECTIONS`' dataclasses (named ``SECTION_FIELD``)."""
    from edgecnn.station.fields import flag_params

    return tuple(p for name in FLAG_SECTIONS for p in flag_params(name, section_class(name)))


def section_flag_values(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Parsed ``edgecnn run`` values of section flags, per section (only those given: not None)."""
    out: dict[str, dict[str, Any]] = {}
    for name in FLAG_SECTIONS:
        prefix = f"{name}_"
        given = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix) and v not in (None, [], ())}
        if given:
            out[name] = given
    return out


def section_class(name: str) -> type:
    """The dataclass of an optional section (``serve``, ``capture``, ``monitor``)."""
    return load_target(SECTIONS[name])


def output_module(kind: str) -> Any:
    """The module of an output kind (``CONFIG``, ``create``, ``check``)."""
    return load_target(OUTPUTS[kind])


# ------------------------------------------------------------------------------------------------- the checker
def load_station(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> StationConfig:
    """Read and check a station file.

    Raises:
        StationFileError: every problem, each one line (``FILE: FIELD: expected ...; received ...``).
        ConfigError: the file is missing or not TOML.
    """
    from edgecnn.config import load_toml

    file = Path(path)
    data = load_toml(file)
    return check_station(data, file, os.environ if environ is None else environ)


def check_station(data: Mapping[str, Any], file: Path, environ: Mapping[str, str]) -> StationConfig:
    """:func:`load_station` on parsed TOML."""
    problems = Problems(str(file))
    names: set[str] = set()
    base = file.resolve().parent
    for key in data:
        if key not in _TOP_KEYS and key not in SECTIONS:
            problems.unknown("", key, [*_TOP_KEYS, *SECTIONS])
    name = _name(data.get("name", file.stem.replace(" ", "_") or "station"), "name", problems)
    paths: dict[str, Path | None] = {}
    for key in ("model", "profile", "state_dir"):
        value = data.get(key)
        if value is None:
            paths[key] = None
        elif not isinstance(value, str) or not value.strip():
            problems.add(key, f"expected a path; received {received(value)}.")
            paths[key] = None
        else:
            text = fill(value, environ, key, problems, names)
            p = Path(text).expanduser()
            paths[key] = p if p.is_absolute() else base / p
    if paths["model"] is None and paths["profile"] is None and "model" not in data and "profile" not in data:
        problems.add("model", "expected a model file (model = \"model_int8.tflite\") or a deploy profile "
                              "(profile = \"deploy.json\"); received neither.")
    device = data.get("device")
    if device is not None and (not isinstance(device, str) or not device.strip()):
        problems.add("device", f"expected a device profile name (edgecnn devices list); received {received(device)}.")
        device = None
    run = _run_table(data.get("run", {}), problems, environ, names, base)
    sources = _sources(data.get("sources"), problems, environ, names)
    rules = RulesConfig()
    if "rules" in data:
        if not isinstance(data["rules"], dict):
            problems.add("rules", f"expected a table; received {received(data['rules'])}.")
        else:
            built = build(RulesConfig, data["rules"], "rules", problems, environ, names)
            rules = rules if built is dataclasses.MISSING else built
    outputs = _outputs(data.get("outputs", []), problems, environ, names)
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        if section in data:
            if not isinstance(data[section], dict):
                problems.add(section, f"expected a table; received {received(data[section])}.")
                continue
            built = build(section_class(section), data[section], section, problems, environ, names)
            if built is not dataclasses.MISSING:
                sections[section] = built
    if problems:
        raise StationFileError(problems.lines)
    state = paths["state_dir"] or base / f"{name}.state"
    return StationConfig(path=file, name=name, model=paths["model"], profile=paths["profile"],
                         device=device.strip() if isinstance(device, str) else None, state_dir=state, run=run,
                         sources=tuple(sources), rules=rules, outputs=tuple(outputs), sections=sections,
                         secret_names=tuple(sorted(names)))


def _name(value: Any, path: str, problems: Problems) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        problems.add(path, f"expected {_NAME_EXPECTED}; received {received(value)}.")
        return "invalid"
    return value


def _run_table(table: Any, problems: Problems, environ: Mapping[str, str], names: set[str], base: Path
               ) -> dict[str, Any]:
    if not isinstance(table, dict):
        problems.add("run", f"expected a table; received {received(table)}.")
        return {}
    out: dict[str, Any] = {}
    for key, value in table.items():
        p = RUN_FIELDS.get(key)
        if p is None:
            hint = ""
            cli = {run_field(q): q for q in RUN_PARAMS if q.name in CLI_ONLY}
            if key in cli:
                hint = (" (set it at the top of the file)" if key in ("model", "profile", "device") else
                        " (a source belongs in [[sources]])" if key in ("source", "camera") else
                        " (a command-line option only)")
            problems.unknown("run", key, list(RUN_FIELDS))
            if hint:
                problems.lines[-1] = problems.lines[-1].rstrip(".") + hint + "."
            continue
        if isinstance(value, str):
            value = fill(value, environ, f"run.{key}", problems, names)
        try:
            value = check_value(p, value, f"{problems.file}: run.{key}")
        except ConfigError as exc:
            problems.lines.append(str(exc))
            continue
        if p.type is Path and not value.is_absolute():
            value = base / value
        out[p.name] = value
    return out


def _sources(items: Any, problems: Problems, environ: Mapping[str, str], names: set[str]) -> list[SourceConfig]:
    if items is None:
        problems.add("sources", "expected at least one [[sources]] table (name and source or camera); received "
                                "none.")
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        problems.add("sources", f"expected an array of tables ([[sources]]); received {received(items)}.")
        return []
    if not items:
        problems.add("sources", "expected at least one source; received an empty array.")
    out = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"sources[{i}]"
        for key in item:
            if key not in _SOURCE_KEYS:
                problems.unknown(path, key, list(_SOURCE_KEYS))
        if "name" not in item:
            problems.add(f"{path}.name", f"expected {_NAME_EXPECTED}; received nothing (every source is named).")
            name = f"source{i}"
        else:
            name = _name(item["name"], f"{path}.name", problems)
        if name in seen:
            problems.add(f"{path}.name", f"expected a name no other source has; received {name!r}, the name of "
                                         f"sources[{seen[name]}].")
        seen.setdefault(name, i)
        src, camera = item.get("source"), item.get("camera")
        secret = False
        if src is not None:
            if not isinstance(src, str) or not src.strip():
                problems.add(f"{path}.source", "expected an image, folder, video, stream URL, pipeline or "
                                               f"synthetic[:FPS[:WxH]]; received {received(src)}.")
                src = None
            else:
                from edgecnn.station.fields import PLACEHOLDER

                secret = bool(PLACEHOLDER.search(src))
                src = fill(src, environ, f"{path}.source", problems, names)
        if camera is not None:
            camera = convert(int, camera, {"min": 0}, f"{path}.camera", problems, environ, names)
        if src is not None and camera is not None:
            problems.add(path, "expected source or camera, not both; received both.")
        if src is None and camera is None and "source" not in item:
            problems.add(path, "expected source = \"...\" or camera = N; received neither.")
        dims = {}
        for key, tp, meta in (("width", int, {"min": 1}), ("height", int, {"min": 1}), ("fps", float, {"min": 0.1})):
            if key in item:
                v = convert(tp, item[key], meta, f"{path}.{key}", problems, environ, names)
                dims[key] = None if v is dataclasses.MISSING else v
        regions = _regions(item.get("regions", []), path, dims.get("width"), dims.get("height"), problems)
        out.append(SourceConfig(name=name, source=src, camera=None if camera is dataclasses.MISSING else camera,
                                regions=tuple(regions), secret=secret, **dims))
    return out


def _regions(items: Any, path: str, width: int | None, height: int | None, problems: Problems) -> list[RegionConfig]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        problems.add(f"{path}.regions", f"expected an array of tables ([[sources.regions]]); received "
                                        f"{received(items)}.")
        return []
    out = []
    seen: set[str] = set()
    for j, item in enumerate(items):
        where = f"{path}.regions[{j}]"
        for key in item:
            if key not in ("name", "box"):
                problems.unknown(where, key, ["name", "box"])
        name = _name(item.get("name"), f"{where}.name", problems) if "name" in item else None
        if name is None:
            problems.add(f"{where}.name", f"expected {_NAME_EXPECTED}; received nothing.")
        elif name in seen or name in ("frame", "station"):
            problems.add(f"{where}.name", f"expected a name no other region of this source has (and not 'frame' or "
                                          f"'station'); received {name!r}.")
        seen.add(name or "")
        box = item.get("box")
        expected = ("expected [x0, y0, x1, y1]: four integers (pixels) or four numbers between 0 and 1 "
                    "(fractions of the frame), with x0 < x1 and y0 < y1")
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)):
            problems.add(f"{where}.box", f"{expected}; received {received(box)}.")
            continue
        pixels = all(isinstance(v, int) for v in box)
        if not pixels and any(isinstance(v, int) and v > 1 for v in box):
            problems.add(f"{where}.box", f"{expected} (not a mix); received {box!r}.")
            continue
        x0, y0, x1, y1 = box
        if min(box) < 0 or (not pixels and max(box) > 1) or x0 >= x1 or y0 >= y1:
            problems.add(f"{where}.box", f"{expected}; received {box!r}.")
            continue
        region = RegionConfig(name=name or f"region{j}", box=(x0, y0, x1, y1), pixels=pixels)
        if width and height and region.outside(width, height):
            problems.add(f"{where}.box", f"expected a box inside the {width}x{height} frame the source sets; "
                                         f"received {box!r}.")
            continue
        out.append(region)
    return out


def _outputs(items: Any, problems: Problems, environ: Mapping[str, str], names: set[str]) -> list[OutputConfig]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        problems.add("outputs", f"expected an array of tables ([[outputs]]); received {received(items)}.")
        return []
    out = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"outputs[{i}]"
        kind = item.get("kind")
        if kind not in OUTPUTS:
            from edgecnn.config import suggest

            known = sorted(OUTPUTS) or ["(none in this build)"]
            problems.add(f"{path}.kind", f"expected one of {known}; received {received(kind)}."
                                         f"{suggest(str(kind), list(OUTPUTS)) if isinstance(kind, str) else ''}")
            continue
        name = _name(item.get("name", kind), f"{path}.name", problems)
        if name in seen:
            problems.add(f"{path}.name", f"expected a name no other output has; received {name!r}, the name of "
                                         f"outputs[{seen[name]}] (give each output of a kind its own name).")
        seen.setdefault(name, i)
        rest = {k: v for k, v in item.items() if k not in ("kind", "name")}
        built = build(output_module(kind).CONFIG, rest, path, problems, environ, names)
        if built is not dataclasses.MISSING:
            out.append(OutputConfig(kind=kind, name=name, config=built,
                                    follow=str(getattr(built, "follow", "station"))))
    return out


def check_region_fits(src: SourceConfig, width: int, height: int) -> None:
    """A pixel region outside the frame a source actually delivers: one line.

    Raises:
        ConfigError: ``sources.NAME.regions.REGION.box: expected a box inside the WxH frame ...``.
    """
    for region in src.regions:
        if region.outside(width, height):
            raise ConfigError(f"sources.{src.name}.regions.{region.name}.box: expected a box inside the "
                              f"{width}x{height} frame the source delivers; received {list(region.box)!r}.")


# ------------------------------------------------------------------------------------------------ the JSON Schema
def station_schema() -> dict[str, Any]:
    """The JSON Schema of a station file (for editors: ``edgecnn station schema > station.schema.json``)."""
    from edgecnn.station.fields import type_schema

    run_props = {}
    for key, p in RUN_FIELDS.items():
        tp = {int: int, float: float, bool: bool}.get(p.type, str)
        meta = {"help": p.help, "min": p.min, "max": p.max, "choices": p.choices}
        schema = type_schema(list[tp] if p.multiple else tp, {k: v for k, v in meta.items() if v})
        if p.min is not None and "minimum" not in schema and not p.multiple:
            schema["minimum"] = p.min
        if p.default not in (None, (), []):
            schema["default"] = p.default
        run_props[key] = schema
    name = {"type": "string", "pattern": NAME.pattern}
    region = {"type": "object", "additionalProperties": False, "required": ["name", "box"], "properties": {
        "name": {**name, "description": "The region's name (unique in its source)."},
        "box": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number", "minimum": 0},
                "description": "[x0, y0, x1, y1]: integers in pixels, or numbers in [0, 1] as fractions."}}}
    source = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
        "name": {**name, "description": "The source's name (unique in the station)."},
        "source": {"type": "string", "description": param("source").help + " {ENV_NAME} placeholders are filled "
                                                                          "from the environment."},
        "camera": {"type": "integer", "minimum": 0, "description": "Camera index (V4L2 on Linux)."},
        "width": {"type": "integer", "minimum": 1, "description": "Capture width."},
        "height": {"type": "integer", "minimum": 1, "description": "Capture height."},
        "fps": {"type": "number", "minimum": 0.1, "description": "Capture frame rate."},
        "regions": {"type": "array", "items": region}}}
    outputs = []
    for kind in sorted(OUTPUTS):
        schema = json_schema(output_module(kind).CONFIG)
        schema["properties"] = {"kind": {"const": kind}, "name": {**name, "description": "The output's name."},
                                **schema["properties"]}
        schema["required"] = ["kind"]
        outputs.append(schema)
    props: dict[str, Any] = {
        "name": {**name, "description": "The station's name (topics, nodes, unit names)."},
        "model": {"type": "string", "description": "The model artifact (.tflite, .onnx, .keras)."},
        "profile": {"type": "string", "description": "A deploy profile from edgecnn bench --pick."},
        "device": {"type": "string", "description": "A device profile (edgecnn devices list)."},
        "state_dir": {"type": "string", "description": "Folder of the station's state (sequence number, spools); "
                                                       "default NAME.state beside the file."},
        "run": {"type": "object", "additionalProperties": False, "properties": run_props,
                "description": "Any edgecnn run option (the same table as the flags)."},
        "sources": {"type": "array", "minItems": 1, "items": source},
        "rules": json_schema(RulesConfig),
        "outputs": {"type": "array", "items": {"oneOf": outputs} if outputs else {"type": "object"}},
    }
    for section in SECTIONS:
        props[section] = json_schema(section_class(section))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "edgecnn station file",
            "type": "object", "additionalProperties": False, "required": ["sources"], "properties": props}


__all__ = ["FLAG_SECTIONS", "OBSERVERS", "OUTPUTS", "RUN_FIELDS", "SECTIONS", "OutputConfig", "RegionConfig", "RulesConfig", "SourceConfig",
           "StationConfig", "StationFileError", "check_region_fits", "check_station", "load_station", "load_target", "output_module",
           "run_field", "section_class", "section_flag_values", "section_params", "station_schema"]
