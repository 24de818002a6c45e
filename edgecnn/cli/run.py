"""``edgecnn run MODEL --source X | --camera N``: TF-free inference on images, folders, videos, cameras, streams."""

# No ``from __future__ import annotations`` here: Typer would eval ~25 string annotations on every start.
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand
from edgecnn.cli.choices import BackendChoice, EngineChoice


def run_command(
    model: Annotated[Path | None, typer.Argument(help="Model file (.tflite, .onnx, .keras) or a run folder "
                                                      "(optional with --profile).")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", envvar="EDGECNN_SOURCE", show_envvar=True,
                                               help="Image, folder, glob, video, rtsp/http URL, "
                                               "GStreamer pipeline, picamera2[:N] or synthetic[:FPS[:WxH]] (a "
                                               "service reads a stream URL with a password from EDGECNN_SOURCE).")] = None,
    camera: Annotated[int | None, typer.Option("--camera", "-c", min=0, help="Camera index (V4L2 on Linux).")] = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Device profile (edgecnn devices list); "
                                               "flags given here override it.")] = None,
    backend: Annotated[BackendChoice | None, typer.Option(help="Runtime (default: by file type).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Interpreter / intra-op threads.")] = None,
    delegate: Annotated[str | None, typer.Option(help="TFLite external delegate library, e.g. libedgetpu.so.1 "
                                                 "(or 'edgetpu').")] = None,
    delegate_option: Annotated[list[str] | None, typer.Option("--delegate-option", help="Delegate option KEY=VALUE "
                                                              "(repeatable), e.g. device=usb.")] = None,
    providers: Annotated[str | None, typer.Option(help="ONNX Runtime providers in order, comma-separated "
                                                  "(tensorrt,cuda,cpu or full names).")] = None,
    width: Annotated[int | None, typer.Option(min=1, help="Camera capture width.")] = None,
    height: Annotated[int | None, typer.Option(min=1, help="Camera capture height.")] = None,
    fps: Annotated[float | None, typer.Option(min=0.1, help="Camera capture frame rate.")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Images per inference call for folders/videos.")] = None,
    topk: Annotated[int, typer.Option("--top-k", min=1, help="Labels reported per input.")] = 5,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Top-1 below this is reported as 'unknown'.")] = 0.0,
    save_csv: Annotated[Path | None, typer.Option(help="Append one CSV row per input (UTC timestamp; header "
                                                  "written once and checked; a restart keeps earlier rows).")] = None,
    save_jsonl: Annotated[Path | None, typer.Option(help="Append one JSON line per input (UTC timestamp; a "
                                                    "restart keeps earlier rows).")] = None,
    save_parquet: Annotated[Path | None, typer.Option(help="Write the rows as Parquet (renamed into place at the end; "
                                                      "needs pyarrow: pip install 'edgecnn[ray]').")] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Folder for annotated images / annotated video "
                                              "(existing files are never replaced: a clash gets _2, _3...).")] = None,
    show: Annotated[bool, typer.Option(help="Show a preview window (q quits).")] = False,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many inputs.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many seconds.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Decoding threads for folders (default: min(4, cores)); "
                                                "with --engine ray: Ray workers (default: one per node).")] = None,
    engine: Annotated[EngineChoice, typer.Option(help="local: this machine; ray: a Ray cluster (folders, globs, "
                                                 "LIST.txt, Parquet of paths).")] = EngineChoice.local,
    address: Annotated[str | None, typer.Option(help="--engine ray: HOST:PORT of a running Ray head "
                                                "(default: start a local Ray for this command).")] = None,
    reconnect_tries: Annotated[int, typer.Option(min=0, help="Reopen attempts when a live source stops.")] = 5,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
    unsafe: Annotated[bool, typer.Option(help="Allow Keras models with Lambda layers (trusted files only).")] = False,
    profile: Annotated[Path | None, typer.Option("--profile", help="Deploy profile from `edgecnn bench --pick`: "
                                                 "its artifact, backend, threads and batch (flags given win).")] = None,
) -> None:
    """Classify images, folders, videos, cameras or streams with an exported model (no TensorFlow needed)."""
    from edgecnn.config import parse_key_values
    from edgecnn.console import console, set_quiet
    from edgecnn.runtime.runner import RunOptions, run
    from edgecnn.scale.cluster import check_address

    set_quiet(quiet)
    check_address(engine.value, address)
    ray_engine = engine.value == "ray"
    opts = RunOptions(
        model=model, source=source, camera=camera, device=device, backend=backend.value if backend else None,
        threads=threads, delegate=delegate, delegate_options=parse_key_values(delegate_option) or None,
        providers=[p.strip() for p in providers.split(",") if p.strip()] if providers else None,
        width=width, height=height, fps=fps, batch=batch, topk=topk, threshold=threshold, save_csv=save_csv,
        save_jsonl=save_jsonl, save_parquet=save_parquet, save_dir=save, show=show, max_frames=max_frames,
        duration=duration, workers=None if ray_engine else workers, reconnect_tries=reconnect_tries, unsafe=unsafe,
        profile=profile,
    )
    if ray_engine:
        from edgecnn.cli import verbose
        from edgecnn.scale.infer import ScaleOptions
        from edgecnn.scale.run import run_ray

        summary = run_ray(opts, ScaleOptions(address=address, workers=workers, verbose=verbose()))
    else:
        summary = run(opts)
    for line in summary.lines():
        console.print(line, markup=False, highlight=False)
    if summary.failure():  # nothing readable: one red line, exit 1
        from edgecnn.errors import DataError

        raise DataError(summary.failure())
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


def register(app: typer.Typer) -> None:
    app.command("run", cls=EdgeCommand)(run_command)
