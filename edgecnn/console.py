"""Terminal output shared by every command: one rich Console on stderr for messages, stdout for results."""

from __future__ import annotations

import logging
import os
import sys

from rich.console import Console
from rich.markup import escape


def _width(stream) -> int | None:
    # Piped or captured output (CI logs, `| tee`): rich would squeeze tables into 80 columns; use a wide page.
    return None if stream.isatty() or os.environ.get("COLUMNS") else 160


console = Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))

log = logging.getLogger("edgecnn")
# A library adds a NullHandler: without it, Python's last-resort handler would print every warn() a second
# time in scripts that never configured logging. Applications that configure logging still get the records.
log.addHandler(logging.NullHandler())

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def info(msg: str) -> None:
    """Progress/status line on stderr (silenced by --quiet)."""
    if not _quiet:
        err_console.print(escape(msg))


def warn(msg: str) -> None:
    """One yellow warning line on stderr (never silenced)."""
    err_console.print(f"[yellow]WARNING[/yellow] {escape(msg)}", markup=True)
    log.warning(msg, extra={PRINTED: True})


#: Marks log records whose message :func:`warn` already printed (the CLI's log handler skips them).
PRINTED = "edgecnn_printed"


def not_printed(record: logging.LogRecord) -> bool:
    """Logging filter: drop records that :func:`warn` already showed on the terminal."""
    return not getattr(record, PRINTED, False)


def error_line(msg: str) -> None:
    """One red error line on stderr."""
    err_console.print(f"[red]Error:[/red] {escape(msg)}", markup=True)


def interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")
