"""``edgecnn run``'s options: the one table that generates the command line's flags, the station file's fields,
their help and their validation, and what a set of values means as :class:`~edgecnn.runtime.options.RunOptions`.

It sits below the CLI so that everything that resolves run options (``devices service --args``, the station file,
the plan) reads the same rows without importing the CLI. :mod:`edgecnn.cli.run_params` re-exports it for the two
parsers of ``edgecnn run`` (Typer's and the direct one). Cheap to import: a one-image ``run`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.conventions import COLOR_ORDERS, INTERPOLATION_NAMES, LAYOUTS, RANGES, RESIZE_MODES
from edgecnn.runtime.backends import BACKENDS
from edgecnn.scale.cluster import ENGINES

#: ``--backend``: ``auto`` (by file type) or a row of :data:`edgecnn.runtime.backends.BACKENDS`.
BACKEND_CHOICES = ("auto", *BACKENDS)


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


#: A model's input conventions (:mod:`edgecnn.conventions`, issue 23): what a model made elsewhere may not state.
#: ``run``, ``bench``, ``evaluate`` and ``info`` take the same rows (:mod:`edgecnn.cli.conventions`).
CONVENTION_PARAMS: tuple[Param, ...] = (
    Param("layout", ("--layout",), str, None, "Input layout (default: read from the graph).", choices=LAYOUTS),
    Param("input_range", ("--input-range",), str, None,
          "Float range the model's input takes (default: the file's, else 0,255 with a warning).",
          choices=tuple(RANGES)),
    Param("mean", ("--mean",), str, None,
          "Mean subtracted after --input-range, one value or one per channel (e.g. 0.485,0.456,0.406)."),
    Param("std", ("--std",), str, None, "Std divided by after --mean, one value or one per channel."),
    Param("color", ("--color",), str, None, "Channel order the model takes.", choices=COLOR_ORDERS),
    Param("resize", ("--resize",), str, None,
          "Fit images to the input: stretch, or resize the shortest side and crop the centre.", choices=RESIZE_MODES),
    Param("interpolation", ("--interpolation",), str, None, "Resize interpolation.", choices=INTERPOLATION_NAMES),
    Param("labels", ("--labels",), Path, None, "Labels file, one per line (for a model that carries none)."),
    Param("strict", ("--strict/--no-strict",), bool, False,
          "Refuse a model whose input conventions would have to be assumed."),
)

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
    Param("max_pixels", ("--max-pixels",), int, None,
          "Largest image decoded, in pixels (width x height), checked in the file's header before Pillow or OpenCV "
          "decodes it; a larger image is skipped (default 64000000; EDGECNN_MAX_PIXELS).", min=1,
          envvar="EDGECNN_MAX_PIXELS"),
    Param("secret_param", ("--secret-param",), str, None,
          "Also mask the value of this URL/pipeline parameter in every output (repeatable; password, token, key, "
          "sig, ... are always masked).", multiple=True),
    Param("csv_raw", ("--csv-raw/--no-csv-raw",), bool, False,
          "Write CSV cells starting with = + - @ as they are (default: a leading ' stops spreadsheets running them "
          "as formulas)."),
    Param("follow_symlinks", ("--follow-symlinks/--no-follow-symlinks",), bool, False,
          "Allow an output path (--save-csv, --save-jsonl, ...) that is a symlink (refused by default)."),
    Param("station", ("--station",), Path, None,
          "Station file: run the station it describes (sources, regions, rules, outputs); flags given here override "
          "its values (edgecnn station init writes an example)."),
    Param("start_offline", ("--start-offline/--no-start-offline",), bool, False,
          "With --station: start even when an output cannot be reached (MQTT QoS 1 spools until the broker "
          "answers)."),
    *CONVENTION_PARAMS,
)


def _plain(value: Any) -> Any:
    """A choice's value: Typer passes Enum members, the direct parser strings."""
    return getattr(value, "value", value)


def run_options(params: dict[str, Any]) -> Any:
    """The :class:`~edgecnn.runtime.runner.RunOptions` of parsed ``edgecnn run`` values (keys: :data:`RUN_PARAMS`)."""
    from edgecnn.config import parse_key_values
    from edgecnn.runtime.options import RunOptions

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
        max_pixels=p.get("max_pixels"), secret_params=list(p.get("secret_param") or ()) or None,
        csv_raw=bool(p.get("csv_raw")), follow_symlinks=bool(p.get("follow_symlinks")),
        **convention_values(p),
    )


def convention_values(params: dict[str, Any]) -> dict[str, Any]:
    """The :data:`CONVENTION_PARAMS` among parsed values, as keyword arguments (choices as plain strings)."""
    out = {p.name: _plain(params.get(p.name)) for p in CONVENTION_PARAMS}
    out["strict"] = bool(out.get("strict"))
    return out


#: Parameters that make sense on a command line only: a station file neither holds nor overrides them.
CLI_ONLY = frozenset({"model", "source", "camera", "device", "profile", "show", "quiet", "station", "start_offline"})


def param(name: str) -> Param:
    """The row called ``name`` (KeyError when there is none)."""
    return _BY_NAME[name]


_BY_NAME = {p.name: p for p in RUN_PARAMS}


def flag(p: Param) -> str:
    """The option's main spelling, as errors name it: ``--top-k``, ``--show``; ``MODEL`` for the argument."""
    return p.decls[0].partition("/")[0] if p.decls else p.name.upper()


def check_value(p: Param, value: Any, where: str) -> Any:
    """``value`` as ``p`` takes it (numbers coerced, bounds and choices checked), else one line naming ``where``.

    Raises:
        ConfigError: ``{where}: expected ..., received ...``.
    """
    from edgecnn.errors import ConfigError

    if p.multiple:
        items = value if isinstance(value, list | tuple) else [value]
        return [check_value(_single(p), v, where) for v in items]
    kind = p.type
    expected = {int: "an integer", float: "a number", bool: "true or false", str: "a text", Path: "a path"}[kind]
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected {expected}; received {value!r}.")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and isinstance(value, float)
                                                                              and not value.is_integer()):
            raise ConfigError(f"{where}: expected {expected}; received {value!r}.")
        value = kind(value)
        low = f">= {p.min:g}" if p.min is not None else ""
        high = f"<= {p.max:g}" if p.max is not None else ""
        if (p.min is not None and value < p.min) or (p.max is not None and value > p.max):
            raise ConfigError(f"{where}: expected a number {' and '.join(x for x in (low, high) if x)}; "
                              f"received {value!r}.")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected {expected}; received {value!r}.")
    if p.choices and value not in p.choices:
        from edgecnn.config import suggest

        raise ConfigError(f"{where}: expected one of {list(p.choices)}; received {value!r}.{suggest(value, p.choices)}")
    return Path(value) if kind is Path else value


def _single(p: Param) -> Param:
    from dataclasses import replace

    return replace(p, multiple=False)


class Refused(Exception):
    """Why :func:`scan_args` stopped at an option: ``kind`` is ``unknown``, ``twice``, ``no-value``,
    ``needs-value``, or ``bad-value`` (raised by a caller's ``value_of``).

    The message is made only by a caller that shows it (:meth:`message`), so the direct parser of ``run``, which
    hands such a line to Typer, imports nothing more for it.
    """

    def __init__(self, kind: str, name: str, p: Param | None = None) -> None:
        super().__init__(kind, name)
        self.kind, self.name, self.param = kind, name, p

    def message(self, spellings: list[str]) -> str:
        if self.kind == "unknown":
            from edgecnn.config import suggest

            return f"No such option: {self.name}.{suggest(self.name, spellings)}"
        if self.kind == "twice":
            assert self.param is not None
            return f"Option {flag(self.param)} is given twice."
        if self.kind == "no-value":
            return f"Option {self.name} does not take a value."
        if self.kind == "needs-value":
            return f"Option {self.name} requires a value."
        return f"Invalid value for {self.name!r}."


def spellings() -> dict[str, tuple[Param, bool | None]]:
    """Each option spelling → (its parameter, the value a flag spelling sets, or None for an option with a value)."""
    out: dict[str, tuple[Param, bool | None]] = {}
    for p in RUN_PARAMS:
        for decl in p.decls:
            on, _, off = decl.partition("/")
            out[on] = (p, True if p.type is bool else None)
            if off:
                out[off] = (p, False)
    return out


def scan_args(
    args: Sequence[str], names: dict[str, tuple[Param, bool | None]], value_of: Callable[[Param, str, str], Any]
) -> tuple[dict[str, Any], list[str]]:
    """``run``'s option values and positional words, read as Click reads them (``--name value``, ``--name=value``,
    ``-x value``, ``--flag/--no-flag``, ``--`` ends the options); each value is ``value_of(param, text, spelling)``.

    The one walk both parsers of ``run`` take: :func:`parse_args` (strict) and :func:`edgecnn.cli.fast.parse_run`
    (which hands any line it refuses to Typer).

    Raises:
        Refused: an unknown or repeated option, a flag given a value, an option without its value.
    """
    values: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            positional.extend(args[i:])
            break
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        name, eq, text = token.partition("=") if token.startswith("--") else (token, "", "")
        found = names.get(name)
        if found is None:
            raise Refused("unknown", name)  # --help, an abbreviated option, joined short options, -xVALUE
        p, on = found
        if p.name in values and not p.multiple:
            raise Refused("twice", name, p)  # Click keeps the last
        if on is not None:
            if eq:
                raise Refused("no-value", name, p)
            values[p.name] = on
            continue
        if not eq:
            if i >= len(args):
                raise Refused("needs-value", name, p)
            text = args[i]
            i += 1
        value = value_of(p, text, name)
        if p.multiple:
            values.setdefault(p.name, []).append(value)
        else:
            values[p.name] = value
    return values, positional


def parse_args(args: list[str]) -> dict[str, Any]:
    """The values of an ``edgecnn run`` argument list (model first or anywhere), strictly: every problem is an error.

    Used where a run's arguments are checked without running them (``devices service --args``). Options not
    given keep their defaults; environment variables are not read.

    Raises:
        ConfigError: an unknown option (with the closest spelling), a missing or bad value, a repeated option.
    """
    from edgecnn.errors import ConfigError

    names = spellings()
    try:
        values, positional = scan_args(args, names, _from_text)
    except Refused as refused:
        raise ConfigError(refused.message(list(names))) from None
    if len(positional) > 1:
        raise ConfigError(f"Got unexpected extra arguments: {' '.join(positional[1:])}.")
    if positional:
        values["model"] = Path(positional[0])
    for p in RUN_PARAMS:
        values.setdefault(p.name, [] if p.multiple else p.default)
    return values


def _from_text(p: Param, text: str, name: str) -> Any:
    from edgecnn.errors import ConfigError

    value: Any = text
    if p.type in (int, float):
        try:
            value = p.type(text)
        except ValueError:
            kind = "an integer" if p.type is int else "a number"
            raise ConfigError(f"Invalid value for {name!r}: expected {kind}; received {text!r}.") from None
    return check_value(_single(p), value, f"Invalid value for {name!r}")


__all__ = ["BACKEND_CHOICES", "CLI_ONLY", "CONVENTION_PARAMS", "RUN_HELP", "RUN_PARAMS", "Param", "check_value", "flag", "param",
           "parse_args", "run_options", "scan_args", "spellings", "Refused"]
