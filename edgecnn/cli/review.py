"""``edgecnn review CAPTURES --data DATASET``: label captures in a local page (keys 1-9, x discard, u undo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand


def review_command(
    captures: Annotated[Path, typer.Argument(help="Capture folder (captures.jsonl, crops/).")],
    data: Annotated[Path, typer.Option(help="Dataset folder: each labelled capture moves into DATA/<class>/.")],
    classes: Annotated[str | None, typer.Option(help="Classes for keys 1-9, comma-separated (default: DATA's "
                                                "class folders and the model's labels).")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: a free one).")] = 8765,
) -> None:
    """Label captured frames in a local web page, most uncertain first."""
    from edgecnn.console import console
    from edgecnn.monitor.review import review

    def started(url: str, store: object) -> None:
        console.print(f"Review page: {url}/  ({len(store.items())} captures; Ctrl-C stops)", markup=False)  # type: ignore[attr-defined]

    store = review(captures, data, [c.strip() for c in classes.split(",") if c.strip()] if classes else None,
                   port=port, started=started)
    a = store.audit()
    gone = f", {len(a['missing'])} gone (removed to stay under max_gb)" if a["missing"] else ""
    console.print(f"{a['labelled']} labelled, {a['discarded']} discarded, {a['pending'] - len(a['missing'])} left"
                  f"{gone}; log {store.log_path}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("review", cls=EdgeCommand)(review_command)
