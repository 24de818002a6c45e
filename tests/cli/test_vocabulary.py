"""One CLI vocabulary: a short flag means one thing everywhere, choices come from the registries, defaults show."""

from __future__ import annotations

from collections import defaultdict

import typer.main
from typer.testing import CliRunner

from converters.registry import FORMATS
from edgecnn.cli import app
from edgecnn.runtime.backends import BACKENDS
from edgecnn.training.architectures import ARCHITECTURES

runner = CliRunner()


def _help(*args: str) -> str:
    """``--help`` text on one wide line (no wrapping, box characters dropped), as a user reads it."""
    res = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    return " ".join(res.output.replace("│", " ").split())


def _options() -> dict[str, list[tuple[str, list[str]]]]:
    """command path → [(parameter name, its option strings)] for every command and sub-command."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    root = typer.main.get_command(app)

    def walk(cmd, path: str) -> None:
        if hasattr(cmd, "commands"):
            for name in cmd.list_commands(None) if hasattr(cmd, "list_commands") else cmd.commands:
                sub = cmd.get_command(None, name) if hasattr(cmd, "get_command") else cmd.commands[name]
                if sub is not None:
                    walk(sub, f"{path} {name}".strip())
            return
        out[path] = [(p.name, [*p.opts, *p.secondary_opts]) for p in cmd.params if type(p).__name__.endswith("Option")]

    walk(root, "")
    return out


def test_a_short_flag_means_one_thing_everywhere():
    meaning: dict[str, set[str]] = defaultdict(set)
    for _cmd, params in _options().items():
        for _name, opts in params:
            longs = [o for o in opts if o.startswith("--")]
            for short in (o for o in opts if len(o) == 2 and o[0] == "-" and o[1] != "-"):
                meaning[short].add(longs[0].split("/")[0])
    clashes = {s: sorted(m) for s, m in meaning.items() if len(m) > 1}
    assert not clashes, f"short flags with two meanings: {clashes}"
    assert meaning["-q"] == {"--quiet"}


def test_top_k_is_spelled_one_way():
    spelled = {o for params in _options().values() for _n, opts in params for o in opts}
    assert "--top-k" in spelled and "--topk" not in spelled


def test_choices_come_from_the_registries():
    assert f"<auto|{'|'.join(BACKENDS)}>" in _help("run")
    assert f"<{'|'.join(BACKENDS)}" in _help("bench").replace("auto|", "")
    assert all(f in _help("export") for f in FORMATS)
    assert f"<{'|'.join(ARCHITECTURES)}>" in _help("train")  # --arch is a choice, not <str>
    bad = runner.invoke(app, ["evaluate", "m.tflite", "--backend", "tensorrt"])
    assert bad.exit_code == 2 and "tensorrt" in bad.output


def test_train_help_shows_the_config_defaults_rich_does_not_eat():
    from edgecnn.training.config import TrainConfig

    text = _help("train")
    d = TrainConfig()
    assert f"Parent folder of runs. [default: {d.project}]" in text
    assert f"[default: {d.arch}]" in text and f"[default: {d.interpolation}]" in text
    assert f"Maximum epochs. [default: {d.epochs}]" in text
    assert f"(default: {d.epochs})" not in text  # one way to show defaults, as every command does


def test_help_has_one_positional_style_no_bool_and_no_eaten_brackets():
    """Issue 25: MODEL / [MODEL] / MODELS... everywhere, no <bool> beside flags, [ray] kept in help text."""
    for command, usage in (("export", "SOURCE"), ("evaluate", "MODEL"), ("run", "[MODEL]"), ("bench", "MODELS..."),
                           ("parity", "CANDIDATES...")):
        text = _help(command)
        assert f"Usage: edgecnn {command} [OPTIONS] {usage}" in text, text[:200]
        assert "{" not in text.split("Usage:", 1)[1].split("[OPTIONS]", 1)[1][:40]
        assert "<bool>" not in text
    assert "pip install 'edgecnn[ray]'" in _help("run")


def test_bench_help_says_how_bench_is_typed():
    text = _help("bench")
    assert "Usage: edgecnn bench [OPTIONS]" in text and "edgecnn bench run" not in text
