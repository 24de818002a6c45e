"""``edgecnn run``'s parameters: the one table its two parsers read, and what a parsed run does.

Typer's command (:mod:`edgecnn.cli.run`: ``--help``, every error message) is generated from :data:`RUN_PARAMS`,
and so is the direct parser that starts a run without importing Typer (:mod:`edgecnn.cli.fast`). Both hand
the parsed values to :func:`execute`, so a run is the same whichever parsed it. Nothing here imports Typer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.cli.choices import BACKEND_CHOICES
from edgecnn.scale.cluster import ENGINES


@dataclass(frozen=True)
class Param:
    """One parameter of ``edgecnn run``.

    Attributes:
        name: The Python name (the key of the parsed values).
        decls: Option spellings, as Click takes them: ``("--source", "-s")``, or ``("--show/--no-show",)`` for a
            boolean flag with its negation. Empty for the positional argument.
        type: ``str``, ``int``, ``float``, ``bool`` or ``Path`` (of each value, for a repeatable option).
        default: The value when the parameter is not given.
        help: The text ``--help`` shows.
        multiple: Repeatable (the values in a list).
        min: Smallest accepted number (inclusive).
        max: Largest accepted number (inclusive).
        choices: The accepted values of a choice (case-sensitive).
        envvar: An environment variable read when the option is not given.
    """

    name: str
    decls: tuple[str, ...]
    type: type
    default: Any
    help: str
    multiple: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    envvar: str | None = None

    @property
    def argument(self) -> bool:
        return not self.decls


#: The summary line of ``edgecnn run --help``.
RUN_HELP = "Classify images, folders, videos, cameras or streams with an exported model (no TensorFlow needed)."

RUN_PARAMS: tuple[Param, ...] = (
    Param("model", (), Path, None, "Model file (.tflite, .onnx, .keras) or a run folder (optional with --profile)."),
    Param("source", ("--source", "-s"), str, None,
          "Image, folder, glob, video, rtsp/http URL, GStreamer pipeline, picamera2[:N] or synthetic[:FPS[:WxH]] (a "
          "service reads a stream URL with a password from EDGECNN_SOURCE).", envvar="EDGECNN_SOURCE"),
    Param("camera", ("--camera", "-c"), int, None, "Camera index (V4L2 on Linux).", min=0),
    Param("device", ("--device", "-d"), str, None,
          "Device profile (edgecnn devices list); flags given here override it."),
    Param("backend", ("--backend",), str, None, "Runtime (default: by file type).", choices=BACKEND_CHOICES),
    Param("threads", ("--threads",), int, None, "Interpreter / intra-op threads.", min=1),
    Param("delegate", ("--delegate",), str, None,
          "TFLite external delegate library, e.g. libedgetpu.so.1 (or 'edgetpu')."),
    Param("delegate_option", ("--delegate-option",), str, None,
          "Delegate option KEY=VALUE (repeatable), e.g. device=usb.", multiple=True),
    Param("providers", ("--providers",), str, None,
          "ONNX Runtime providers in order, comma-separated (tensorrt,cuda,cpu or full names)."),
    Param("width", ("--width",), int, None, "Camera capture width.", min=1),
    Param("height", ("--height",), int, None, "Camera capture height.", min=1),
    Param("fps", ("--fps",), float, None, "Camera capture frame rate.", min=0.1),
    Param("batch", ("--batch",), int, None, "Images per inference call for folders/videos.", min=1),
    Param("topk", ("--top-k",), int, 5, "Labels reported per input.", min=1),
    Param("threshold", ("--threshold",), float, 0.0, "Top-1 below this is reported as 'unknown'.", min=0.0, max=1.0),
    Param("save_csv", ("--save-csv",), Path, None,
          "Append one CSV row per input (UTC timestamp; header written once and checked; a restart keeps earlier "
          "rows)."),
    Param("save_jsonl", ("--save-jsonl",), Path, None,
          "Append one JSON line per input (UTC timestamp; a restart keeps earlier rows)."),
    Param("save_parquet", ("--save-parquet",), Path, None,
          "Write the rows as Parquet (renamed into place at the end; needs pyarrow: pip install 'edgecnn[ray]')."),
    Param("save", ("--save",), Path, None,
          "Folder for annotated images / annotated video (existing files are never replaced: a clash gets _2, "
          "_3...)."),
    Param("show", ("--show/--no-show",), bool, False, "Show a preview window (q quits)."),
    Param("max_frames", ("--max-frames",), int, None, "Stop after this many inputs.", min=1),
    Param("duration", ("--duration",), float, None, "Stop after this many seconds.", min=0.0),
    Param("workers", ("--workers",), int, None,
          "Decoding threads for folders (default: min(4, cores)); with --engine ray: Ray workers (default: one per "
          "node).", min=1),
    Param("engine", ("--engine",), str, "local",
          "local: this machine; ray: a Ray cluster (folders, globs, LIST.txt, Parquet of paths).", choices=ENGINES),
    Param("address", ("--address",), str, None,
          "--engine ray: HOST:PORT of a running Ray head (default: start a local Ray for this command)."),
    Param("reconnect_tries", ("--reconnect-tries",), int, 5, "Reopen attempts when a live source stops.", min=0),
    Param("quiet", ("--quiet", "-q"), bool, False, "Only the summary."),
    Param("unsafe", ("--unsafe/--no-unsafe",), bool, False, "Allow Keras models with Lambda layers (trusted files only)."),
    Param("profile", ("--profile",), Path, None,
          "Deploy profile from `edgecnn bench --pick`: its artifact, backend, threads and batch (flags given win)."),
)


def _plain(value: Any) -> Any:
    """A choice's value: Typer passes Enum members, the direct parser strings."""
    return getattr(value, "value", value)


def run_options(params: dict[str, Any]) -> Any:
    """The :class:`~edgecnn.runtime.runner.RunOptions` of parsed ``edgecnn run`` values (keys: :data:`RUN_PARAMS`)."""
    from edgecnn.config import parse_key_values
    from edgecnn.runtime.runner import RunOptions

    p = params
    backend = _plain(p.get("backend"))
    providers = p.get("providers")
    return RunOptions(
        model=p.get("model"), source=p.get("source"), camera=p.get("camera"), device=p.get("device"),
        backend=backend or None, threads=p.get("threads"), delegate=p.get("delegate"),
        delegate_options=parse_key_values(list(p.get("delegate_option") or ())) or None,
        providers=[x.strip() for x in providers.split(",") if x.strip()] if providers else None,
        width=p.get("width"), height=p.get("height"), fps=p.get("fps"), batch=p.get("batch"), topk=p.get("topk", 5),
        threshold=p.get("threshold", 0.0), save_csv=p.get("save_csv"), save_jsonl=p.get("save_jsonl"),
        save_parquet=p.get("save_parquet"), save_dir=p.get("save"), show=bool(p.get("show")),
        max_frames=p.get("max_frames"), duration=p.get("duration"),
        workers=None if _plain(p.get("engine")) == "ray" else p.get("workers"),
        reconnect_tries=p.get("reconnect_tries", 5), unsafe=bool(p.get("unsafe")), profile=p.get("profile"),
    )


def execute(params: dict[str, Any]) -> int:
    """Run ``edgecnn run`` with parsed values and print its summary; returns the exit code.

    Raises:
        EdgeCNNError: a user error (one line from the command frame); ``DataError`` when nothing was readable.
    """
    from edgecnn.console import console, set_quiet
    from edgecnn.scale.cluster import check_address

    set_quiet(bool(params.get("quiet")))
    engine, address = _plain(params.get("engine") or "local"), params.get("address")
    check_address(engine, address)
    opts = run_options(params)
    if engine == "ray":
        from edgecnn.cli.frame import verbose
        from edgecnn.scale.infer import ScaleOptions
        from edgecnn.scale.run import run_ray

        summary = run_ray(opts, ScaleOptions(address=address, workers=params.get("workers"), verbose=verbose()))
    else:
        from edgecnn.runtime.runner import run

        summary = run(opts)
    for line in summary.lines():
        console.print(line, markup=False, highlight=False)
    if summary.failure():  # nothing readable: one red line, exit 1
        from edgecnn.errors import DataError

        raise DataError(summary.failure())
    return summary.exit_code


__all__ = ["RUN_HELP", "RUN_PARAMS", "Param", "execute", "run_options"]
