"""The ``edgecnn`` command line. Thin: every command parses options, calls one library function, prints.

Each command lives in its own module exposing ``register(app)``; commands are built with
:class:`EdgeCommand` so a user error (:class:`~edgecnn.errors.EdgeCNNError`) prints one red line and exits
non-zero — no traceback unless ``--verbose``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from edgecnn import __version__
from edgecnn.console import err_console, error_line, not_printed, set_quiet
from edgecnn.errors import EdgeCNNError

COMMAND_MODULES = ("train", "export", "parity", "info", "run", "evaluate", "devices", "bench", "demo")

_state = {"verbose": False}


def _handle(exc: BaseException) -> None:
    if isinstance(exc, EdgeCNNError):
        if _state["verbose"]:
            err_console.print(traceback.format_exc(), markup=False, highlight=False)
        error_line(str(exc))
        raise typer.Exit(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        error_line("Interrupted.")
        raise typer.Exit(130)
    raise exc


class EdgeCommand(TyperCommand):
    """A Typer command whose user errors become one red line and a non-zero exit."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (EdgeCNNError, KeyboardInterrupt) as exc:
            _handle(exc)


class EdgeGroup(TyperGroup):
    """A Typer group (``devices``, ``bench``) with the same error handling as :class:`EdgeCommand`."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (EdgeCNNError, KeyboardInterrupt) as exc:
            _handle(exc)


def new_typer(**kwargs: Any) -> typer.Typer:
    """A sub-application (command group) configured like the root one."""
    kwargs.setdefault("cls", EdgeGroup)
    kwargs.setdefault("no_args_is_help", True)
    kwargs.setdefault("pretty_exceptions_enable", False)
    return typer.Typer(**kwargs)


app = typer.Typer(
    name="edgecnn",
    cls=EdgeGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Train, export, verify and run small image-classification CNNs on edge devices.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """edgecnn: train → export → run → bench, proving at every step that nothing was lost."""
    _state["verbose"] = verbose
    set_quiet(False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # warn() printed it already: log it, but not twice on screen
        on_screen = getattr(handler, "stream", None) in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
        if on_screen and not_printed not in handler.filters:
            handler.addFilter(not_printed)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"edgecnn.cli.{name}")
        except ModuleNotFoundError as exc:  # a command not written yet in this checkout
            if exc.name == f"edgecnn.cli.{name}":
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app(prog_name="edgecnn")


__all__ = ["EdgeCommand", "EdgeGroup", "app", "main", "new_typer"]

if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
