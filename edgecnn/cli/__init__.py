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


class EdgeGroup(TyperGroup):
    """A Typer group (``devices``, ``bench``) with the same error handling as :class:`EdgeCommand`."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _HANDLED as exc:
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
    if verbose:
        restore_native_stderr()  # before any library loads: --verbose shows everything
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # TensorFlow's converter warns on every int8 export about statistics it does not need
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs", category=UserWarning)


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


__all__ = ["EdgeCommand", "EdgeGroup", "app", "main", "new_typer"]

if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
