"""The ``edgecnn`` command line. Thin: every command parses options, calls one library function, prints.

Each command lives in its own module exposing ``register(app)``; commands are built with
:class:`EdgeCommand` so a user error (:class:`~edgecnn.errors.EdgeCNNError`) prints one red line and exits
non-zero — no traceback unless ``--verbose``. OS failures (read-only or full disk, permissions, a file where a
folder is needed, out of memory) also end in one line naming the path and what to do, exit 1.

Exit codes: 0 success, 1 failure (bad model/data, failed gate, OS error), 2 usage error (bad option or value,
an output that is an input), 130 interrupted by SIGINT/Ctrl-C, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import traceback
import warnings
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from edgecnn import __version__
from edgecnn.console import (
    err_console,
    error_line,
    not_printed,
    quiet_native_stderr,
    restore_native_stderr,
    set_quiet,
)
from edgecnn.errors import EdgeCNNError

COMMAND_MODULES = ("train", "export", "parity", "info", "run", "evaluate", "devices", "bench", "demo")

_state = {"verbose": False}


def verbose() -> bool:
    """Whether ``--verbose`` was given."""
    return _state["verbose"]


def _handle(exc: BaseException) -> None:
    if isinstance(exc, EdgeCNNError):
        if _state["verbose"]:
            err_console.print(traceback.format_exc(), markup=False, highlight=False)
        error_line(str(exc))
        raise typer.Exit(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        from edgecnn.errors import Terminated

        term = isinstance(exc, Terminated)
        error_line("Stopped by SIGTERM." if term else "Interrupted.")
        raise typer.Exit(143 if term else 130)
    if isinstance(exc, OSError | MemoryError):  # read-only, full, no permission, a file in the way, absurd sizes
        from edgecnn.outputs import os_error_message

        if _state["verbose"]:
            err_console.print(traceback.format_exc(), markup=False, highlight=False)
        error_line(os_error_message(exc))
        raise typer.Exit(1)
    raise exc


#: What reaches the CLI frame and becomes one line: user errors, Ctrl-C, OS failures (disk, permissions, memory).
_HANDLED = (EdgeCNNError, KeyboardInterrupt, OSError, MemoryError)


class EdgeCommand(TyperCommand):
    """A Typer command whose user errors become one red line and a non-zero exit."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _HANDLED as exc:
            _handle(exc)

    def get_help_option(self, ctx: typer.Context) -> Any:
        from edgecnn.cli.coercion import install_param

        return install_param(super().get_help_option(ctx))  # built per call; coerced without Pydantic


class EdgeGroup(TyperGroup):
    """A Typer group (``devices``, ``bench``) with the same error handling as :class:`EdgeCommand`."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _HANDLED as exc:
            _handle(exc)

    def get_help_option(self, ctx: typer.Context) -> Any:
        from edgecnn.cli.coercion import install_param

        return install_param(super().get_help_option(ctx))  # built per call; coerced without Pydantic


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
    _state["verbose"] = verbose
    set_quiet(False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # warn() printed it already: log it, but not twice on screen
        on_screen = getattr(handler, "stream", None) in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
        if on_screen and not_printed not in handler.filters:
            handler.addFilter(not_printed)
    if verbose:
        restore_native_stderr()  # before any library loads: --verbose shows everything
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # TensorFlow's converter warns on every int8 export about statistics it does not need
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs", category=UserWarning)


def _on_sigterm(signum: int, _frame: Any) -> None:
    from edgecnn.errors import Terminated

    raise Terminated()


def main() -> None:
    """Console-script entry point: third-party native log lines are filtered unless ``--verbose``."""
    import signal

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # SIGTERM unwinds like Ctrl-C (temp files removed, partial results written), then exits 143
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    quiet_native_stderr()
    try:
        app(prog_name="edgecnn")
    finally:
        restore_native_stderr()


__all__ = ["EdgeCommand", "EdgeGroup", "LazyRootGroup", "app", "main", "new_typer"]

if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
