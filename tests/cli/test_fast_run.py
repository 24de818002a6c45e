"""``edgecnn run``'s direct parser (no Typer on a run's start) reads every command line it takes exactly as Typer's
command does, and hands every other line to Typer, whose help and errors stay the ones users see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from edgecnn.cli import app
from edgecnn.cli.fast import parse_run, run_direct
from edgecnn.cli.run_params import RUN_PARAMS, run_options

ROOT = Path(__file__).resolve().parents[2]

#: Command lines (after ``run``) the direct parser must take, each with the environment it runs in.
TAKEN: list[tuple[list[str], dict[str, str]]] = [
    (["m.tflite", "--source", "img.png"], {}),
    (["m.tflite", "-s", "img.png", "-q"], {}),
    (["--source=img.png", "m.tflite", "--threads", "2", "--batch", "8", "--top-k", "3"], {}),
    (["m.tflite", "--camera", "0", "--width", "640", "--height", "480", "--fps", "15.5"], {}),
    (["m.tflite", "-c", "1", "--backend", "tflite", "--delegate", "edgetpu", "--delegate-option", "device=usb",
      "--delegate-option", "a=b"], {}),
    (["m.onnx", "--source", "dir", "--providers", "cuda,cpu", "--threshold", "0.5", "--save-csv", "out.csv",
      "--save-jsonl", "o.jsonl", "--save", "ann", "--show", "--max-frames", "10", "--duration", "2.5", "--workers",
      "3", "--reconnect-tries", "0", "--unsafe"], {}),
    (["m.tflite", "--source", "x", "--no-show", "--no-unsafe", "--engine", "ray", "--address", "127.0.0.1:6379",
      "--workers", "2"], {}),
    (["--profile", "p.json", "--source", "x"], {}),
    (["m.tflite", "--source", "x", "--save-parquet", "o.parquet", "-d", "rpi4", "--backend", "auto"], {}),
    (["--source", "x", "--", "m.tflite"], {}),
    (["m.tflite", "--threshold", "1", "--duration", "0", "--fps", "0.1"], {}),
    (["m.tflite"], {"EDGECNN_SOURCE": "rtsp://user:secret@cam/stream"}),
    (["m.tflite", "--source", "given.png"], {"EDGECNN_SOURCE": "ignored.png"}),
]

#: Lines the direct parser must leave to Typer (help, errors, spellings Click reads its own way).
LEFT: list[list[str]] = [
    ["m.tflite", "--help"], ["--help"], ["m.tflite", "--threads", "0"], ["m.tflite", "--threads", "two"],
    ["m.tflite", "--threads", "007"], ["m.tflite", "--sour", "x"], ["m.tflite", "-qs", "x"], ["m.tflite", "-sx"],
    ["m.tflite", "--source", "a", "--source", "b"], ["m.tflite", "--backend", "TFLITE"],
    ["m.tflite", "--threshold", "1.5"], ["m.tflite", "--quiet=1"], ["a.tflite", "b.tflite"], ["m.tflite", "--source"],
    ["m.tflite", "--source", ""], ["m.tflite", "--source", "-"], ["m.tflite", "--camera", "-1"],
    ["m.tflite", "--fps", "1e3"], ["m.tflite", "--engine", "spark"], ["-m.tflite"], ["m.tflite", "--version"],
]


def _typer_values(args: list[str]) -> dict:
    command = typer.main.get_command(app).get_command(None, "run")  # type: ignore[attr-defined]
    ctx = command.make_context("edgecnn run", list(args))
    # section flags (--capture-*, --monitor-*) exist only in Typer's command: not given, they are None
    return {k: getattr(v, "value", v) for k, v in ctx.params.items()
            if not (k.startswith(("capture_", "monitor_")) and v is None)}


def _plain(values: dict) -> dict:
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}


@pytest.mark.parametrize(("args", "env"), TAKEN, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_direct_parser_reads_a_line_as_typer_does(args, env, monkeypatch):
    for name in {p.envvar for p in RUN_PARAMS if p.envvar}:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    direct = parse_run(args)
    assert direct is not None, f"the direct parser refused {args}"
    expected = _typer_values(args)
    assert _plain(direct) == _plain(expected)
    assert run_options(direct) == run_options(expected)


@pytest.mark.parametrize("args", LEFT, ids=" ".join)
def test_direct_parser_leaves_everything_else_to_typer(args):
    assert parse_run(args, environ={}) is None


@pytest.mark.parametrize("argv", [["run"], ["train", "--help"], ["--version"], ["-v", "-v", "run", "m.tflite"],
                                  ["info", "m.tflite"], []])
def test_only_run_lines_take_the_direct_path(argv):
    assert run_direct(argv) is None


def test_the_table_is_typers_command():
    """Typer's ``run`` is generated from RUN_PARAMS: the same names, spellings, bounds, choices and defaults."""
    from edgecnn.station.schema import section_params

    command = typer.main.get_command(app).get_command(None, "run")  # type: ignore[attr-defined]
    table = (*RUN_PARAMS, *section_params())  # the run table, then the flags of the sections' dataclasses
    assert [p.name for p in command.params] == [p.name for p in table]
    for click_param, param in zip(command.params, table):
        if param.argument:
            continue
        spelled = [d for decl in param.decls for d in decl.split("/")]
        assert [*click_param.opts, *click_param.secondary_opts] == spelled
        assert click_param.multiple == param.multiple
        assert click_param.envvar == param.envvar
        assert getattr(click_param.default, "value", click_param.default) == param.default
        info = click_param.type_descriptor.parameter_info
        assert (info.min, info.max) == (param.min, param.max)
        if param.choices:
            assert [m.value for m in click_param.type_descriptor.annotation] == list(param.choices)


@pytest.fixture(scope="module")
def int8_model(exported_artifacts) -> Path:
    return Path(exported_artifacts["tflite-int8"])


def _edgecnn(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_typer_words_what_the_direct_parser_leaves(int8_model, tmp_path):
    image = tmp_path / "one.png"
    bad = _edgecnn("run", str(int8_model), "--source", str(image), "--threads", "0")
    assert bad.returncode == 2
    assert "Invalid value for '--threads'" in bad.stderr and "Traceback" not in bad.stderr
    helped = _edgecnn("run", "--help")
    assert helped.returncode == 0 and "--source" in helped.stdout and "--top-k" in helped.stdout


def test_both_paths_end_a_failed_run_with_the_same_line(int8_model, tmp_path):
    """A user error through the direct path: one line, the exit code Typer's frame gives (no traceback)."""
    from typer.testing import CliRunner

    missing = tmp_path / "missing.png"
    direct = _edgecnn("run", str(int8_model), "--source", str(missing), "--quiet")
    typer_run = CliRunner().invoke(app, ["run", str(int8_model), "--source", str(missing), "--quiet"])
    assert direct.returncode == typer_run.exit_code != 0
    assert "Traceback" not in direct.stderr
    line = [ln for ln in direct.stderr.splitlines() if "missing.png" in ln]
    assert line and line[-1].strip() in typer_run.output
