"""``edgecnn info MODEL``: the embedded model card, tensors, dtypes, size and op counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand


def info_cmd(
    model: Annotated[Path, typer.Argument(help=".tflite, .onnx, .keras, run folder or SavedModel folder.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Allow a .keras model with Lambda layers (only files you "
                                         "trust).")] = False,
    conventions: object = None,
) -> None:
    """Show what is inside a model file (TF-free for .tflite and .onnx)."""
    import json

    from edgecnn.console import console
    from edgecnn.inspect import inspect_model, render

    details = inspect_model(model, unsafe=unsafe, conventions=conventions)
    if as_json:
        console.print_json(json.dumps(details.to_dict(), default=str))
        return
    for part in render(details):
        console.print(part)


def register(app: typer.Typer) -> None:
    from edgecnn.cli.conventions import with_conventions

    app.command("info", cls=EdgeCommand)(with_conventions(info_cmd))
