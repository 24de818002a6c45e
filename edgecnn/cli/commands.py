"""The ``edgecnn`` command line as a Typer application: every command, its options and ``--help``.

Each command lives in its own module exposing ``register(app)``; commands are built with
:class:`EdgeCommand` so a user error (:class:`~edgecnn.errors.EdgeCNNError`) prints one red line and exits
non-zero (no traceback unless ``--verbose``), as :func:`edgecnn.cli.frame.exit_code` words it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from edgecnn import __version__
from edgecnn.cli.frame import HANDLED, configure, exit_code

COMMAND_MODULES = ("train", "export", "parity", "info", "run", "evaluate", "devices", "bench", "demo")


def _handle(exc: BaseException) -> None:
    raise typer.Exit(exit_code(exc))


class _EdgeFrame:
    """What every command and group shares: user errors become one red line and a non-zero exit, and ``--help``
    is coerced without Pydantic."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except HANDLED as exc:
            _handle(exc)

    def get_help_option(self, ctx: typer.Context) -> Any:
        from edgecnn.cli.coercion import install_param

        return install_param(super().get_help_option(ctx))  # type: ignore[misc]  (built per call)


class EdgeCommand(_EdgeFrame, TyperCommand):
    """A Typer command whose user errors become one red line and a non-zero exit."""


class EdgeGroup(_EdgeFrame, TyperGroup):
    """A Typer group (``devices``, ``bench``) with the same error handling as :class:`EdgeCommand`."""


def new_typer(**kwargs: Any) -> typer.Typer:
    """A sub-application (command group) configured like the root one."""
    kwargs.setdefault("cls", EdgeGroup)
    kwargs.setdefault("no_args_is_help", True)
    kwargs.setdefault("pretty_exceptions_enable", False)
    return typer.Typer(**kwargs)


def _load_command(name: str) -> Any:
    """Import one command's module and build its Click command (or group)."""
    try:
        module = importlib.import_module(f"edgecnn.cli.{name}")
    except ModuleNotFoundError as exc:  # a command not written yet in this checkout
        if exc.name == f"edgecnn.cli.{name}":
            return None
        raise
    holder = typer.Typer(rich_markup_mode=app.rich_markup_mode)
    module.register(holder)
    command = typer.main.get_group(holder).commands.get(name)
    if command is not None:
        from edgecnn.cli.coercion import install

        install(command)  # plain option values without importing Pydantic (cold start)
    return command


class LazyRootGroup(EdgeGroup):
    """The root group: a command's module is imported only when that command is looked up.

    ``edgecnn run ...`` therefore never imports the training, export or bench modules (nor what they
    import, such as OpenCV or the architecture registry); ``edgecnn --help`` still lists every command.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from edgecnn.cli.coercion import install

        install(self)  # the root's own options, coerced without Pydantic
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return [n for n in COMMAND_MODULES if n in self.commands or importlib.util.find_spec(f"edgecnn.cli.{n}")]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMAND_MODULES:
            command = _load_command(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command


app = typer.Typer(
    name="edgecnn",
    cls=LazyRootGroup,
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
    configure(verbose)


__all__ = ["COMMAND_MODULES", "EdgeCommand", "EdgeGroup", "LazyRootGroup", "app", "new_typer"]
