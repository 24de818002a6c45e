"""Terminal tables that fit: columns dropped or abbreviated by priority, no word split, names never cut.

Every table the CLI prints (train, export, parity, bench, ``bench --pick``, ``bench compare``, evaluate, demo) is
described as :class:`Col` rows and built by :func:`fit_table` for the width it will be printed at (80 columns
and up). What does not fit is left out of the terminal only: the written reports (Markdown, HTML, JSON) keep
every column, and the table's caption says which columns it left out.

The rules, in order, until the table fits:

1. headers take their short form (``"Precision"`` → ``"Prec"``);
2. free-text cells (a status, a reason) are cut at a word boundary with ``…`` after ``Col.max_chars`` characters
   (never inside a word, never wrapped into a tall cell);
3. the lowest-priority column goes, then the next (a column with ``priority=KEEP`` never does).

Names (artifact and file names, labels) are never shortened: their column is ``KEEP`` and ``no_wrap``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Priority of a column that is never dropped.
KEEP = 1000


@dataclass(frozen=True)
class Col:
    """One column of a terminal table.

    Attributes:
        name: Header, and the key of the row mappings.
        short: A shorter header used when the table is too wide ("" = the name).
        priority: Higher stays longer; :data:`KEEP` is never dropped.
        right: Right-justified (numbers).
        text: Free text (status, reason): cut at a word boundary after ``max_chars`` (one line per row).
        max_chars: The longest free text shown in the terminal (the reports keep all of it).
    """

    name: str
    short: str = ""
    priority: int = 50
    right: bool = False
    text: bool = False
    max_chars: int = 48


def shorten(text: str, limit: int) -> str:
    """``text`` cut at the last space before ``limit`` characters, with ``…`` (a single long word stays whole)."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return (text[:cut] if cut > 0 else text.split(" ", 1)[0]).rstrip(" ,;:") + " …"


def _header(col: Col, short: bool) -> str:
    return col.short if short and col.short else col.name


def _build(title: str | None, cols: Sequence[Col], rows: Sequence[Mapping[str, str]], short: bool,
           styles: Sequence[str | None] | None, caption: str | None, box_style: Any) -> Any:
    from rich.table import Table
    from rich.text import Text

    kwargs = {"box": box_style} if box_style is not None else {}
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left", **kwargs)
    for c in cols:
        table.add_column(_header(c, short), justify="right" if c.right else "left", no_wrap=True)
    for i, row in enumerate(rows):
        cells = [shorten(str(row.get(c.name, "")), c.max_chars) if c.text else str(row.get(c.name, "")) for c in cols]
        table.add_row(*(Text(c) for c in cells), style=styles[i] if styles else None)  # data, never markup
    return table


def _natural_width(table: Any, console: Any) -> int:
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(10_000), table).maximum


def fit_table(cols: Sequence[Col], rows: Sequence[Mapping[str, str]], width: int | None, title: str | None = None,
              styles: Sequence[str | None] | None = None, box: Any = None, console: Any = None) -> Any:
    """A :class:`rich.table.Table` of ``rows`` that fits ``width`` columns (None: every column, natural width).

    Args:
        cols: The columns, in display order.
        rows: One mapping per row, keyed by :attr:`Col.name` (cells already formatted as text).
        width: The terminal's width; None keeps every column (a pipe or a log file).
        title: The table's title.
        styles: A Rich style per row (None for plain).
        box: A :mod:`rich.box` style (default: Rich's).
        console: The console it will be printed on (for measuring).
    """
    if console is None:
        from rich.console import Console

        console = Console(width=width or 10_000, highlight=False)
    console = getattr(console, "rich", console)  # edgecnn's LazyConsole: measure on the real one
    kept = list(cols)
    if width is None:
        return _build(title, kept, rows, False, styles, None, box)
    dropped: list[Col] = []
    while True:
        for short in (False, True):
            caption = shorten("Not shown at this width: " + ", ".join(c.name for c in dropped),
                              width - 2) if dropped else None
            table = _build(title, kept, rows, short, styles, caption, box)
            if _natural_width(table, console) <= width:
                return table
        droppable = [c for c in kept if c.priority < KEEP]
        if not droppable:
            return table  # only names and kept columns left: print as is (wider than the terminal)
        lowest = min(droppable, key=lambda c: (c.priority, -kept.index(c)))
        kept.remove(lowest)
        dropped.append(lowest)


def terminal_width(console: Any = None) -> int | None:
    """The width a table should fit: the terminal's, or ``$COLUMNS`` when set; None for a pipe or a log (every
    column is printed there, at its natural width)."""
    import os

    from edgecnn.console import console as default_console

    console = getattr(console or default_console, "rich", console or default_console)
    if os.environ.get("COLUMNS", "").isdigit():
        return max(40, int(os.environ["COLUMNS"]))
    return console.width if console.is_terminal else None


def print_fitted(cols: Sequence[Col], rows: Sequence[Mapping[str, str]], title: str | None = None,
                 styles: Sequence[str | None] | None = None, box: Any = None, console: Any = None) -> None:
    """Print ``rows`` as a table that fits the terminal (every column in a pipe or a log file)."""
    from rich.console import Console

    from edgecnn.console import console as default_console

    out = getattr(console or default_console, "rich", console or default_console)
    width = terminal_width(out)
    table = fit_table(cols, rows, width, title=title, styles=styles, box=box, console=out)
    if width is None:  # a pipe: never squeeze, never wrap
        natural = _natural_width(table, out)
        if natural > out.width:
            out = Console(file=out.file, width=natural, highlight=False, markup=False)
    out.print(table)


__all__ = ["KEEP", "Col", "fit_table", "print_fitted", "shorten", "terminal_width"]
