"""``edgecnn station check|run|init|schema FILE``: a station described by one file (sources, regions, rules,
outputs), checked, run, started from an example, or described as a JSON Schema for editors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import new_typer
from edgecnn.cli.station_releases import register_releases

station_app = new_typer(help="Stations: many cameras and regions, decisions, and outputs to the line, from one "
                             "station file.")

FileArg = Annotated[Path, typer.Argument(help="The station file (station.toml).")]


@station_app.command("check")
def check_command(
    file: FileArg,
    offline: Annotated[bool, typer.Option("--offline", help="Do not try to reach the outputs.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds each output may take to answer.")] = 5.0,
) -> None:
    """Validate a station file (every problem one line), resolve its plan, read the model and reach every output."""
    from edgecnn.console import console
    from edgecnn.station.check import check_station_file

    report = check_station_file(file, reach=not offline, timeout=timeout)
    for line in report.lines():
        console.print(line, markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@station_app.command("run")
def run_command(
    file: FileArg,
    start_offline: Annotated[bool, typer.Option("--start-offline", help="Start even when an output cannot be "
                                                "reached (MQTT QoS 1 spools until the broker answers).")] = False,
    duration: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many seconds.")] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many frames (all sources).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="The state folder (sequence number, spools, "
                                                   "captures) instead of the file's state_dir; an installed bundle's "
                                                   "unit gives PREFIX/state, kept across releases.")] = None,
) -> None:
    """Run the station a file describes (the same as `edgecnn run --station FILE`)."""
    from edgecnn.cli.run_params import execute

    params = {"station": file, "start_offline": start_offline, "duration": duration, "max_frames": max_frames,
              "quiet": quiet, "state_dir": state_dir}
    code = execute(params)
    if code:
        raise typer.Exit(code)


@station_app.command("init")
def init_command(
    output: Annotated[Path, typer.Argument(help="Where to write the example.")] = Path("station.toml"),
    model: Annotated[str, typer.Option(help="The model the example names.")] = "model_int8.tflite",
    reject: Annotated[str, typer.Option(help="The label that means reject.")] = "ng",
) -> None:
    """Write a commented example station file (never over an existing file)."""
    from edgecnn.console import info
    from edgecnn.station.example import write_example

    write_example(output, model=model, reject=reject)
    info(f"Wrote {output}; check it with: edgecnn station check {output}")


@station_app.command("schema")
def schema_command() -> None:
    """Print the station file's JSON Schema (for editors: save it as station.schema.json)."""
    import json

    from edgecnn.console import console
    from edgecnn.station.schema import station_schema

    console.print(json.dumps(station_schema(), indent=2), markup=False, highlight=False, soft_wrap=True)


register_releases(station_app)  # releases|status|rollback of installed bundles (station_releases.py)


def register(app: typer.Typer) -> None:
    app.add_typer(station_app, name="station")

