"""The ``edgecnn`` command line. Thin: every command parses options, calls one library function, prints.

The commands are a Typer application (:mod:`edgecnn.cli.commands`: every command, ``--help``). ``edgecnn run``,
which a camera box starts on every boot and a script may start once per image, is parsed first by a direct
parser over the same table of options (:mod:`edgecnn.cli.fast`), so a run starts without importing Typer and
Click; anything that parser does not take as plainly valid (``--help``, a bad value, an unusual spelling) goes
to Typer, which words the help and the errors.

A user error (:class:`~edgecnn.errors.EdgeCNNError`) prints one red line and exits non-zero, with no traceback
unless ``--verbose``. OS failures (read-only or full disk, permissions, a file where a folder is needed, out of
memory) also end in one line naming the path and what to do, exit 1 (:mod:`edgecnn.cli.frame`).

Exit codes: 0 success, 1 failure (bad model/data, failed gate, OS error), 2 usage error (bad option or value,
an output that is an input), 130 interrupted by SIGINT/Ctrl-C, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import sys
from typing import Any

from edgecnn.cli.frame import verbose

#: Names served by :mod:`edgecnn.cli.commands`, imported (with Typer) on first use.
_APP_NAMES = frozenset({"COMMAND_MODULES", "EdgeCommand", "EdgeGroup", "LazyRootGroup", "_load_command", "app", "new_typer"})


def __getattr__(name: str) -> Any:
    if name in _APP_NAMES:
        from edgecnn.cli import commands as module

        return getattr(module, name)
    raise AttributeError(f"module 'edgecnn.cli' has no attribute {name!r}")


def main() -> None:
    """Console-script entry point: third-party native log lines are filtered unless ``--verbose``."""
    import os
    import signal

    from edgecnn.cli.fast import run_direct, run_line

    if run_line(sys.argv[1:]) is not None:
        # A run needs numpy: import it here, from a shallow Python stack. CPython 3.11 frees a frame-stack chunk as
        # soon as it empties, so code that runs right at a chunk boundary maps and unmaps a fresh chunk on every
        # call. numpy's typing module imported six imports deep sat on one: +1,000 page faults and 10-20 ms of a
        # one-image run in a VM (benchmarks/cold_start.py); from here it costs what it costs a bare script.
        import numpy  # noqa: F401

    from edgecnn.cli.frame import on_sigterm
    from edgecnn.console import quiet_native_stderr, restore_native_stderr

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # SIGTERM unwinds like Ctrl-C (temp files removed, partial results written), then exits 143
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, on_sigterm)
    quiet_native_stderr()
    try:
        code = run_direct(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from edgecnn.cli.commands import app

        app(prog_name="edgecnn")
    finally:
        restore_native_stderr()


__all__ = ["EdgeCommand", "EdgeGroup", "LazyRootGroup", "app", "main", "new_typer", "verbose"]

if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
