"""``edgecnn demo``: train → export → parity → run → bench on the built-in digits, with one HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    project: Annotated[Path, typer.Option(help="Folder for everything the demo writes.")] = Path("runs/demo"),
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the digits preset's epochs (quick runs).")] = None,
    bench_seconds: Annotated[float, typer.Option(min=0.05, help="Minimum timed seconds per artifact in the benchmark.")] = 1.0,
) -> None:
    """Run the whole path on the built-in handwritten digits and print the comparison table."""
    from edgecnn.console import console
    from edgecnn.demo import DEMO_TERMINAL, run_demo
    from edgecnn.tables import print_fitted

    result = run_demo(project=project, epochs=epochs, bench_seconds=bench_seconds)
    print_fitted(DEMO_TERMINAL, result.rows, title="edgecnn demo: built-in digits, every artifact")
    console.print(f"Run folder: {result.run_dir}")
    console.print(f"Test accuracy (Keras, after training): {result.test_accuracy:.4f}")
    console.print(
        f"edgecnn run, held-out folder: accuracy {result.folder_run['accuracy']:.4f} on {result.folder_run['images']} "
        f"images; as video: {result.video_run['accuracy']:.4f} on {result.video_run['frames']} frames"
    )
    console.print(f"Exports: {result.export_dir}")
    console.print(f"Report: {result.report_html}")
    console.print("Next:")
    for cmd in result.commands:
        console.print(f"  {cmd}", markup=False)


def register(app: typer.Typer) -> None:
    from edgecnn.cli import EdgeCommand

    app.command("demo", cls=EdgeCommand)(demo)
