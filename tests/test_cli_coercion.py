"""The CLI's Pydantic-free coercion gives Typer's own values and errors, for every option of every command."""

from __future__ import annotations

import enum
import typing
from pathlib import Path

import pytest
import typer
from typer._coercion import build_runtime_param

from edgecnn.cli import COMMAND_MODULES, _load_command, app
from edgecnn.cli.coercion import FastCoercion

SAMPLES: dict[object, list[object]] = {
    int: ["3", "0", "-2", "007", "+4", "1.5", "1_000", " 5", "abc", "99999999999", 7],
    float: ["0.5", "2", "-1.25", "1e3", "nan", ".5", "abc", 3, 0.25],
    str: ["x", "", "a b", "é"],
    bool: [True, False],
    Path: ["model.tflite", "/tmp", ".", "does/not/exist.onnx", Path("p")],
}


def _params(command):
    for p in getattr(command, "params", ()):
        yield command, p
    for sub in getattr(command, "commands", {}).values():
        yield from _params(sub)


def _samples(annotation) -> list[object]:
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return [[v] for v in _samples(item)] + [_samples(item)[:2], "not-a-list"]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [m.value for m in annotation] + [annotation(next(iter(annotation)).value), "bogus", "AUTO"]
    return list(SAMPLES.get(annotation, ["x"]))


def _outcome(coercer, value, param, ctx):
    try:
        return ("ok", coercer.coerce(value, param=param, ctx=ctx))
    except Exception as exc:  # noqa: BLE001  (the exception itself is what is compared)
        return ("error", type(exc).__name__, str(exc))


def _all_commands():
    root = typer.main.get_command(app)
    return [root] + [_load_command(name) for name in COMMAND_MODULES]


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: c.name)
def test_fast_coercion_matches_typer(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("model.tflite").write_bytes(b"x")
    compared = 0
    for owner, param in _params(command):
        if not hasattr(param, "type_descriptor"):
            continue
        ctx = typer.Context(owner)
        fast = FastCoercion(param.type_descriptor)
        reference = build_runtime_param(param.type_descriptor)
        for value in _samples(param.type_descriptor.annotation) + [None]:
            if param.multiple and value is not None and not isinstance(value, list):
                value = [value] if value != "not-a-list" else value
            got, want = _outcome(fast, value, param, ctx), _outcome(reference, value, param, ctx)
            assert repr(got) == repr(want), f"{owner.name} {param.name}={value!r}: {got} != {want}"
            compared += 1
    assert compared > 0


def test_every_run_option_gets_the_fast_coercer():
    run = _load_command("run")
    assert all(isinstance(p._runtime_param, FastCoercion) for p in run.params if hasattr(p, "type_descriptor"))
