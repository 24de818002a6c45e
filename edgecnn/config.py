"""TOML configuration: load, validate keys against a dataclass, merge layers, write back.

Layers, lowest first: dataclass defaults < preset TOML < ``--config`` TOML < CLI flags.
Unknown keys are an error that suggests the closest valid key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError


def _tomllib() -> Any:
    """``tomllib``, or ``tomli`` on Python 3.10 (JetPack 6): the same parser. Imported on first use, not by ``run``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib


def suggest(name: str, valid: list[str] | tuple[str, ...] | set[str]) -> str:
    """`` Did you mean 'x'?`` or an empty string."""
    import difflib

    close = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TOML file; errors name the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Config file not found: {p}")
    tomllib = _tomllib()
    from edgecnn.fileio import read_regular

    try:
        return tomllib.loads(read_regular(p, 16_000_000).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"Cannot parse {p}: {str(exc)[:200]}") from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read {p}: {exc.strerror or exc}.") from exc


def parse_toml(text: str) -> dict[str, Any]:
    """Parse TOML text (``tomllib``, or ``tomli`` on Python 3.10); raises ``tomllib.TOMLDecodeError``."""
    return _tomllib().loads(text)


def flatten(data: dict[str, Any], sections: tuple[str, ...] = ()) -> dict[str, Any]:
    """Merge known table sections (e.g. ``[augment]``) into one flat dict; keys use ``_`` not ``-``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        key = key.replace("-", "_")
        if isinstance(value, dict) and key in sections:
            flat.update({k.replace("-", "_"): v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def check_keys(data: dict[str, Any], cls: type, source: str) -> None:
    """Raise ConfigError for the first key that is not a field of dataclass ``cls``."""
    valid = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in valid:
            raise ConfigError(f"Unknown option {key!r} in {source}.{suggest(key, valid)}")


def build(cls: type, *layers: dict[str, Any]) -> Any:
    """Instantiate dataclass ``cls`` from merged layers (later layers win), coercing simple types."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in merged.items():
        if key not in fields:
            raise ConfigError(f"Unknown option {key!r}.{suggest(key, fields)}")
        kwargs[key] = _coerce(key, value, fields[key].type)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    ann = str(annotation)
    try:
        if ann.startswith("bool"):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if ann.startswith("int") and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if ann.startswith("float"):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Option {key!r} expects {ann}; received {value!r}.") from exc
    return value


def dumps(data: dict[str, Any]) -> str:
    """Serialise a dict of scalars, lists and one level of tables to TOML."""
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key, value in data.items():
        if value is None or isinstance(value, dict):
            continue
        lines.append(f"{_key(key)} = {_value(value)}")
    for name, table in tables.items():
        lines.append("")
        lines.append(f"[{_key(name)}]")
        for key, value in table.items():
            if value is not None and not isinstance(value, dict):
                lines.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _value(key)


def _value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value).replace("inf", "inf").lower()
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(str(value), ensure_ascii=False)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain dict (Paths as strings)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = str(v) if isinstance(v, Path) else v
    return out


def parse_key_values(items: Sequence[str] | None, option: str = "--delegate-option",
                     example: str = "device=usb") -> dict[str, str]:
    """``["key=value", ...]`` (a repeatable CLI option) → dict; the one KEY=VALUE parser of the CLI.

    Raises:
        ConfigError: an item without ``=`` or with an empty key.
    """
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Expected {option} KEY=VALUE (e.g. {example}); received {item!r}.")
        out[key.strip()] = val.strip()
    return out
