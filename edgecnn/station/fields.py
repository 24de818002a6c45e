"""Dataclass fields as a station file's schema: validation, JSON Schema and flags from one frozen dataclass.

Every section another part owns (``serve``, ``capture``, ``monitor``, each output kind) declares its options as a
frozen dataclass whose fields have defaults and ``dataclasses.field(metadata={"help": ..., "min": ..., "max": ...,
"choices": (...), "secret": True})``. :func:`build` validates a TOML table against such a class (every problem
one line: field path, expected, received, a did-you-mean for a misspelt key), :func:`json_schema` describes it for
editors, and :func:`flags` lists the ``--SECTION-FIELD`` command-line options derived from it.

Secrets are ``{ENV_NAME}`` (or ``${ENV_NAME}``) placeholders filled from the environment when the file is read;
a secret field that holds a literal value is refused, and a filled secret is a :class:`Secret` whose ``repr()``
is ``'***'``, so a config printed, logged or shown in a traceback never shows it.

Pure standard library; nothing here imports the sections it reads.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: ``{NAME}`` or ``${NAME}``: an environment variable's value (upper case, digits and underscores).
PLACEHOLDER = re.compile(r"\$?\{([A-Z_][A-Z0-9_]*)\}")


class Secret(str):
    """A secret filled from the environment: a plain ``str`` for the libraries that use it, ``'***'`` in ``repr()``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def option(default: Any, help: str, **meta: Any) -> Any:  # noqa: A002 - "help" is the schema's word
    """A section's field: its default (``dataclasses.MISSING``: required) and the metadata :func:`build`,
    :func:`json_schema` and :func:`flags` read (help, min, max, choices, secret, ...). A secret field is kept out of
    ``repr()``, so a config printed or logged never shows it."""
    return dataclasses.field(default=default, metadata={"help": help, **meta}, repr=not meta.get("secret", False))


class Problems:
    """The problems found in one file, each one line: ``FILE: PATH: expected ...; received ...``."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}")

    def unknown(self, path: str, key: str, valid: list[str]) -> None:
        from edgecnn.config import suggest

        where = f"{path}.{key}" if path else key
        hint = suggest(key, valid)
        self.add(where, f"unknown field.{hint}" if hint else f"unknown field; expected one of {sorted(valid)}.")

    def __bool__(self) -> bool:
        return bool(self.lines)


def received(value: Any) -> str:
    """A value as an error shows it (a table or an array of tables by its kind, not its content)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "an array of tables"
    return repr(value)


def fill(text: str, environ: Mapping[str, str], path: str, problems: Problems, names: set[str]) -> str:
    """``text`` with its placeholders filled from ``environ`` (a missing variable is a problem)."""
    def sub(m: re.Match[str]) -> str:
        names.add(m.group(1))
        if m.group(1) not in environ:
            problems.add(path, f"expected environment variable {m.group(1)} to be set (the file says "
                               f"{m.group(0)}); received nothing. Set it, e.g. in the unit's EnvironmentFile.")
            return ""
        return environ[m.group(1)]

    return PLACEHOLDER.sub(sub, text)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(the type without ``| None``, whether None was allowed)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return tp, False


def _expected(tp: Any, meta: Mapping[str, Any]) -> str:
    if meta.get("choices"):
        return f"one of {list(meta['choices'])}"
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        what = "an integer" if tp is int else "a number"
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and hi is not None:
            return f"{what} between {lo:g} and {hi:g}"
        if lo is not None:
            return f"{what} >= {lo:g}"
        if hi is not None:
            return f"{what} <= {hi:g}"
        return what
    if tp is str:
        return "a text"
    if tp is Path:
        return "a path"
    if origin in (tuple, list):
        return f"an array of {_expected(typing.get_args(tp)[0], {})}s".replace("ss", "s")
    if origin in (dict, Mapping):
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    if typing.get_origin(tp) is typing.Literal:
        return f"one of {list(typing.get_args(tp))}"
    return str(tp)


def convert(tp: Any, value: Any, meta: Mapping[str, Any], path: str, problems: Problems,
            environ: Mapping[str, str], names: set[str]) -> Any:
    """``value`` as type ``tp`` takes it, or a problem (and ``dataclasses.MISSING``)."""
    tp, _ = _unwrap(tp)
    bad = dataclasses.MISSING
    origin = typing.get_origin(tp)
    expected = _expected(tp, meta)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            problems.add(path, f"expected a table; received {received(value)}.")
            return bad
        return build(tp, value, path, problems, environ, names)
    if origin is typing.Literal:
        meta = {**meta, "choices": typing.get_args(tp)}
        tp = type(typing.get_args(tp)[0])
    if origin in (tuple, list):
        if not isinstance(value, list):
            problems.add(path, f"expected {expected}; received {received(value)}.")
            return bad
        item = typing.get_args(tp)[0]
        items = [convert(item, v, {k: meta[k] for k in ("min", "max", "choices") if k in meta}, f"{path}[{i}]",
                         problems, environ, names) for i, v in enumerate(value)]
        if any(v is bad for v in items):
            return bad
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            problems.add(path, f"expected a table; received {received(value)}.")
            return bad
        args = typing.get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        out = {}
        for k, v in value.items():
            out[str(k)] = v if vt is Any else convert(vt, v, {k2: meta[k2] for k2 in ("min", "max") if k2 in meta},
                                                      f"{path}.{k}", problems, environ, names)
        return bad if any(v is bad for v in out.values()) else out
    if tp is bool:
        if not isinstance(value, bool):
            problems.add(path, f"expected true or false; received {received(value)}.")
            return bad
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                tp is int and isinstance(value, float) and not value.is_integer()):
            problems.add(path, f"expected {expected}; received {received(value)}.")
            return bad
        value = tp(value)
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            problems.add(path, f"expected {expected}; received {value!r}.")
            return bad
        if meta.get("choices") and value not in meta["choices"]:
            problems.add(path, f"expected one of {list(meta['choices'])}; received {value!r}.")
            return bad
        return value
    if tp in (str, Path) or tp is Any:
        if tp is Any and not isinstance(value, str):
            return value
        if not isinstance(value, str):
            problems.add(path, f"expected {expected}; received {received(value)}.")
            return bad
        secret = bool(meta.get("secret"))
        if secret and value and not PLACEHOLDER.fullmatch(value):
            problems.add(path, "expected an environment placeholder such as \"{MQTT_PASSWORD}\" (a secret never "
                               "sits in the station file); received a literal value (not shown).")
            return bad
        text = fill(value, environ, path, problems, names) if PLACEHOLDER.search(value) else value
        if meta.get("choices") and text not in meta["choices"]:
            from edgecnn.config import suggest

            problems.add(path, f"expected one of {list(meta['choices'])}; received {value!r}."
                               f"{suggest(value, [str(c) for c in meta['choices']])}")
            return bad
        if tp is Path:
            return Path(text)
        return Secret(text) if secret and text else text
    return value


def build(cls: type, data: Mapping[str, Any], path: str, problems: Problems, environ: Mapping[str, str],
          names: set[str] | None = None) -> Any:
    """An instance of dataclass ``cls`` from a TOML table; every problem goes to ``problems`` (then
    ``dataclasses.MISSING`` is returned).

    A field without a default is required. The class's own ``__post_init__`` checks run last; a ``ValueError``
    or ``EdgeCNNError`` they raise becomes one problem line.
    """
    from edgecnn.errors import EdgeCNNError

    names = set() if names is None else names
    before = len(problems.lines)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    for key in data:
        if key not in fields:
            problems.unknown(path, key, list(fields))
    kwargs = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.add(where, f"expected {_expected(_unwrap(hints[name])[0], f.metadata)}; received nothing "
                                    "(the field is required).")
            continue
        value = convert(hints[name], data[name], f.metadata, where, problems, environ, names)
        if value is not dataclasses.MISSING:
            kwargs[name] = value
    if len(problems.lines) > before:
        return dataclasses.MISSING
    try:
        return cls(**kwargs)
    except (EdgeCNNError, ValueError, TypeError) as exc:
        text = str(exc)
        prefix = f"{path}." if path else ""
        if path and text.startswith(prefix):  # the class already names the field (serve.host: ...)
            problems.add("", text)
        else:
            problems.add(path, text)
        return dataclasses.MISSING


def json_schema(cls: type, title: str = "") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12 subset) of dataclass ``cls``: types, help, bounds, choices, defaults."""
    props: dict[str, Any] = {}
    required = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        props[f.name] = type_schema(hints[f.name], f.metadata)
        if f.default is not dataclasses.MISSING and not f.metadata.get("secret"):
            default = _json_default(f.default)
            if default is not None:
                props[f.name]["default"] = default
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    if title or cls.__doc__:
        out["description"] = title or (cls.__doc__ or "").strip().splitlines()[0]
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_json_default(v) for v in value]
    if isinstance(value, str | int | float | bool | list | dict):
        return value
    return None


def type_schema(tp: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one field's type and metadata."""
    tp, _ = _unwrap(tp)
    origin = typing.get_origin(tp)
    out: dict[str, Any]
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        out = json_schema(tp)
    elif origin is typing.Literal:
        out = {"enum": list(typing.get_args(tp))}
    elif origin in (tuple, list):
        out = {"type": "array", "items": type_schema(typing.get_args(tp)[0],
                                                     {k: meta[k] for k in ("min", "max", "choices") if k in meta})}
    elif origin in (dict, Mapping):
        args = typing.get_args(tp)
        out = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = type_schema(args[1], {k: meta[k] for k in ("min", "max") if k in meta})
    elif tp is bool:
        out = {"type": "boolean"}
    elif tp is int:
        out = {"type": "integer"}
    elif tp is float:
        out = {"type": "number"}
    else:
        out = {"type": "string"}
    if origin not in (tuple, list):
        if meta.get("min") is not None and out.get("type") in ("integer", "number"):
            out["minimum"] = meta["min"]
        if meta.get("max") is not None and out.get("type") in ("integer", "number"):
            out["maximum"] = meta["max"]
        if meta.get("choices"):
            out["enum"] = list(meta["choices"])
        if meta.get("secret"):
            out["pattern"] = PLACEHOLDER.pattern.replace("\\$?", "^\\$?") + "$"
    if meta.get("help"):
        out["description"] = meta["help"] + (" Secret: write an {ENV_NAME} placeholder." if meta.get("secret") else "")
    return out


def flag_params(section: str, cls: type) -> list[Any]:
    """The ``edgecnn run`` options of a section's dataclass, as rows of the run table
    (:class:`~edgecnn.station.params.Param`): ``--SECTION-FIELD`` (``--capture-below 0.5``), ``--SECTION/--no-SECTION``
    for its ``enabled`` field, ``--SECTION-FIELD/--no-SECTION-FIELD`` for other booleans. Every default is None
    (not given: the station file's value or the field's default stays). Secrets are left out: they come from the
    environment, never from a command line that ``ps`` shows."""
    from edgecnn.station.params import Param

    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("secret"):
            continue
        tp, _ = _unwrap(hints[f.name])
        multiple = typing.get_origin(tp) in (tuple, list)
        if multiple:
            tp = typing.get_args(tp)[0]
        if tp not in (int, float, bool, str, Path):
            continue
        option = f"--{section}" if f.name == "enabled" else f"--{section}-{f.name.replace('_', '-')}"
        decls = (f"{option}/--no-{option[2:]}",) if tp is bool else (option,)
        m = f.metadata
        out.append(Param(f"{section}_{f.name}", decls, tp, None, f"[{section}] {m.get('help', '')}",
                         multiple=multiple, min=m.get("min"), max=m.get("max"), choices=tuple(m.get("choices") or ())))
    return out


def parse_flag_values(cls: type, section: str, given: Mapping[str, Any], base: Any = None) -> Any:
    """``base`` (or the defaults) with the section's flag values set (None: not given), each checked as the
    file's values are.

    Raises:
        ConfigError: the problems, one line each.
    """
    from edgecnn.errors import ConfigError, EdgeCNNError

    problems = Problems("command line")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    changes = {}
    for name, value in given.items():
        if value is None:
            continue
        if isinstance(value, tuple):
            value = list(value)
        f = fields[name]
        option = f"--{section}-{name.replace('_', '-')}"
        out = convert(hints[name], str(value) if isinstance(value, Path) else value, f.metadata, option, problems,
                      {}, set())
        if out is not dataclasses.MISSING:
            changes[name] = out
    if problems:
        raise ConfigError("\n".join(problems.lines))
    try:
        return dataclasses.replace(cls() if base is None else base, **changes)
    except (EdgeCNNError, ValueError, TypeError) as exc:
        raise ConfigError(f"command line: {exc}") from None


__all__ = ["PLACEHOLDER", "Problems", "Secret", "build", "convert", "fill", "flag_params", "json_schema",
           "parse_flag_values", "type_schema"]
