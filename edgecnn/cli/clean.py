"""``edgecnn clean FOLDER...``: remove what killed edgecnn processes left behind (temporary files, staging folders)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand


def clean_command(
    folders: Annotated[list[Path], typer.Argument(help="Folders to clean (where outputs were written).")],
    recursive: Annotated[bool, typer.Option("--recursive", help="Clean the folders below too.")] = False,
) -> None:
    """Remove edgecnn's temporary files (.NAME.edgecnn-tmp-PID-*) and staging folders whose process is gone."""
    from edgecnn.console import console, printable
    from edgecnn.fileio import clean

    removed = clean(list(folders), recursive=recursive)
    for p in removed:
        console.print(f"removed {printable(p)}", markup=False)
    console.print(f"{len(removed)} leftover(s) removed.", markup=False)


def register(app: typer.Typer) -> None:
    app.command("clean", cls=EdgeCommand)(clean_command)
