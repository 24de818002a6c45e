"""What every command shares around its work, with no Typer in it: the ``--verbose`` state, the process set-up the
root options ask for, and the one line (and exit code) a user error, an OS failure or a signal ends in.

Both parsers of the command line use it: Typer's (every command, ``--help``) and the direct one of
``edgecnn run`` (:mod:`edgecnn.cli.fast`), so a run ends the same way whichever parsed it.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from typing import Any

from edgecnn.console import (
    cli_owns_output,
    err_console,
    error_line,
    not_printed,
    restore_native_stderr,
    set_quiet,
)
from edgecnn.errors import EdgeCNNError
from edgecnn.masking import mask_secrets

_state = {"verbose": False}

#: What reaches the command frame and becomes one line: user errors, Ctrl-C, OS failures (disk, permissions, memory).
HANDLED = (EdgeCNNError, KeyboardInterrupt, OSError, MemoryError)


def verbose() -> bool:
    """Whether ``--verbose`` was given."""
    return _state["verbose"]


def configure(verbose: bool) -> None:
    """What the root options (``--verbose``) set up before a command runs: logging, quiet native output."""
    _state["verbose"] = verbose
    cli_owns_output()  # the API's quiet_library steps aside: the CLI prints progress and filters native noise itself
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


def exit_code(exc: BaseException) -> int:
    """Print the one line a handled failure ends in (a traceback first with ``--verbose``); return its exit code.

    Exit codes: 1 failure (bad model/data, failed gate, OS error), 2 usage (an
    :class:`~edgecnn.errors.EdgeCNNError` may carry another), 130 SIGINT/Ctrl-C, 143 SIGTERM.

    Raises:
        BaseException: ``exc`` itself when it is not one of :data:`HANDLED` (a bug: its traceback shows).
    """
    if isinstance(exc, EdgeCNNError):
        if _state["verbose"]:
            err_console.print(mask_secrets(traceback.format_exc()), markup=False, highlight=False)
        problems = getattr(exc, "problems", None)  # a station file: every problem, one line each (README)
        if isinstance(problems, list) and problems and all(isinstance(p, str) for p in problems):
            for line in problems:
                error_line(line)
        else:
            error_line(str(exc))
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        from edgecnn.errors import Terminated

        term = isinstance(exc, Terminated)
        error_line("Stopped by SIGTERM." if term else "Interrupted.")
        return 143 if term else 130
    if isinstance(exc, OSError | MemoryError):  # read-only, full, no permission, a file in the way, absurd sizes
        from edgecnn.outputs import os_error_message

        if _state["verbose"]:
            err_console.print(mask_secrets(traceback.format_exc()), markup=False, highlight=False)
        error_line(os_error_message(exc))
        return 1
    raise exc


def on_sigterm(signum: int, _frame: Any) -> None:
    """SIGTERM unwinds like Ctrl-C (temp files removed, partial results written), then exits 143."""
    from edgecnn.errors import Terminated

    raise Terminated()


__all__ = ["HANDLED", "configure", "exit_code", "on_sigterm", "verbose"]
