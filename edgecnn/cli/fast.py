"""``edgecnn run`` started without Typer: a direct parser over :data:`edgecnn.cli.run_params.RUN_PARAMS`.

Importing Typer and its Click costs a one-image run about a fifth of its whole process (issue 12: cold start
within 1.5x of a bare ten-line LiteRT script). This parser takes only a command line it reads exactly as Click
would: ``[--verbose|-v] run`` then the model and options spelled ``--name value``, ``--name=value`` or
``-x value``, each value plainly valid (canonical numbers within their bounds, a listed choice, a non-empty
text). Anything else (``--help``, ``--version``, an unknown, repeated or abbreviated option, a bad or
dash-led value, joined short options) returns None and Typer parses the whole line, so help and every error
message stay Typer's. A test checks that both parsers give the same values over a corpus of command lines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.cli.coercion import FLOAT_TEXT, INT_TEXT

if TYPE_CHECKING:
    from edgecnn.cli.run_params import Param

_ROOT_FLAGS = {"--verbose": True, "-v": True}


def _value(param: Param, text: str) -> Any:
    """``text`` as the parameter's value, or None when Typer should judge it."""
    if not text or (text.startswith("-") and param.type not in (int, float)):  # a dash-led value: Click's call
        return None
    if param.choices:
        return text if text in param.choices else None
    if param.type is int or param.type is float:
        if not (INT_TEXT if param.type is int else FLOAT_TEXT).fullmatch(text):
            return None
        number = param.type(text)
        if (param.min is not None and number < param.min) or (param.max is not None and number > param.max):
            return None
        return number
    if param.type is Path:
        return Path(text)
    return text if param.type is str else None


def parse_run(args: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The values of ``edgecnn run``'s arguments (those after ``run``), keyed as :data:`RUN_PARAMS`; None when the
    line is not plainly valid (Typer then parses it)."""
    from edgecnn.cli.run_params import RUN_PARAMS
    from edgecnn.station.params import Refused, scan_args, spellings

    environ = os.environ if environ is None else environ

    def value_of(param: Param, text: str, name: str) -> Any:
        value = _value(param, text)
        if value is None:
            raise Refused("bad-value", name, param)
        return value

    try:
        values, positional = scan_args(args, spellings(), value_of)
    except Refused:
        return None  # --help, an unknown, repeated or abbreviated option, a bad value: Typer's call
    argument = next(p for p in RUN_PARAMS if p.argument)
    if len(positional) > 1:
        return None
    if positional:
        value = _value(argument, positional[0])
        if value is None:
            return None
        values[argument.name] = value
    for param in RUN_PARAMS:
        if param.name in values:
            continue
        if param.envvar and param.envvar in environ:
            value = _value(param, environ[param.envvar])
            if value is None:
                return None
            values[param.name] = [value] if param.multiple else value
        else:
            values[param.name] = () if param.multiple else param.default  # as Click: () for a repeatable one
    return values


def run_line(argv: Sequence[str]) -> tuple[bool, list[str]] | None:
    """``(verbose, the arguments after run)`` of a line ``edgecnn [--verbose] run ARGS...``, else None. Cheap: it
    imports nothing, so other commands (``--help``, ``--version``, ``train``) pay nothing for the direct path."""
    verbose = False
    i = 0
    while i < len(argv) and argv[i] in _ROOT_FLAGS:
        if verbose:
            return None
        verbose = True
        i += 1
    if i >= len(argv) or argv[i] != "run" or i + 1 == len(argv):
        return None
    return verbose, list(argv[i + 1:])


def run_direct(argv: Sequence[str]) -> int | None:
    """Run ``edgecnn [--verbose] run ...`` when :func:`parse_run` takes its line; the exit code, or None when Typer
    should parse the command line instead."""
    line = run_line(argv)
    params = parse_run(line[1]) if line is not None else None
    if params is None:
        return None
    from edgecnn.cli.frame import HANDLED, configure, exit_code
    from edgecnn.cli.run_params import execute

    configure(line[0])
    try:
        return execute(params)
    except HANDLED as exc:
        return exit_code(exc)


__all__ = ["parse_run", "run_direct", "run_line"]
