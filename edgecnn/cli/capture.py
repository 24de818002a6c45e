"""``edgecnn capture``: collect frames of a camera or source into ``DATASET/<label>/`` on purpose (a new class,
a new line), every interval or on each Enter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand


def capture_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder (one sub-folder per class).")],
    label: Annotated[str, typer.Option(help="Class folder the frames go to (e.g. NG).")],
    camera: Annotated[int | None, typer.Option(min=0, help="Camera index.")] = None,
    source: Annotated[str | None, typer.Option(help="Video file, stream URL, GStreamer pipeline, ... (as run).")] = None,
    every: Annotated[str | None, typer.Option(help="Save a frame every INTERVAL (0.5s, 500ms, 2).")] = None,
    on_key: Annotated[bool, typer.Option("--on-key", help="Save a frame each time Enter is pressed (q Enter stops; "
                                         "from a file, n Enter skips a frame).")] = False,
    max_images: Annotated[int | None, typer.Option(min=1, help="Stop after this many images.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many seconds.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="png or jpg.")] = "png",
) -> None:
    """Collect labelled frames from a camera or source for training."""
    from edgecnn.console import console
    from edgecnn.monitor.capture import collect

    r = collect(out, label, source=source, camera=camera, every=every, on_key=on_key, max_images=max_images,
                duration=duration, fmt=fmt)
    console.print(f"Saved {len(r.saved)} images of {r.frames} frames to {r.folder}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("capture", cls=EdgeCommand)(capture_command)
