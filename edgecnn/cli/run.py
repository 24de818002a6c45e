"""``edgecnn run MODEL --source X | --camera N``: TF-free inference on images, folders, videos, cameras, streams.

Typer's command is generated from :data:`edgecnn.cli.run_params.RUN_PARAMS`, the table the direct parser
(:mod:`edgecnn.cli.fast`) reads too; both call :func:`edgecnn.cli.run_params.execute`.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from edgecnn.cli import EdgeCommand
from edgecnn.cli.choices import choice_enum
from edgecnn.cli.run_params import RUN_HELP, RUN_PARAMS, Param, execute


def _parameter(param: Param) -> inspect.Parameter:
    kind: Any = (choice_enum("".join(w.title() for w in param.name.split("_")) + "Choice", param.choices)
                 if param.choices else param.type)
    default = kind(param.default) if param.choices and param.default is not None else param.default
    if param.multiple:
        kind = list[kind]
    if param.default is None:
        kind = kind | None
    if param.argument:
        info = typer.Argument(help=param.help)
    else:
        info = typer.Option(*param.decls, help=param.help, min=param.min, max=param.max, envvar=param.envvar,
                            show_envvar=param.envvar is not None)
    return inspect.Parameter(param.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, info])


def run_command(**params: Any) -> None:
    code = execute(params)
    if code:
        raise typer.Exit(code)


def _section_params() -> tuple[Param, ...]:
    """``--capture``, ``--capture-*``, ``--monitor-*``: generated from the sections' dataclasses (Typer parses them;
    the direct parser leaves a line holding one to Typer)."""
    from edgecnn.station.schema import section_params

    return section_params()


_PARAMETERS = [_parameter(p) for p in (*RUN_PARAMS, *_section_params())]
run_command.__signature__ = inspect.Signature(_PARAMETERS)  # type: ignore[attr-defined]
run_command.__annotations__ = {p.name: p.annotation for p in _PARAMETERS}
run_command.__doc__ = RUN_HELP


def register(app: typer.Typer) -> None:
    app.command("run", cls=EdgeCommand)(run_command)
