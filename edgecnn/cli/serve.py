"""``edgecnn serve MODEL``: the HTTP API, live view, metrics and health of a model (and of a source).

The server's options are generated from :class:`edgecnn.serve.config.ServeConfig`'s fields (their help, bounds
and secret flag), the table a station file's ``serve`` section is checked against too; this module parses, calls
:func:`edgecnn.serve.server.open_server`, prints the address and serves.
"""

import dataclasses
import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli import EdgeCommand
from edgecnn.cli.choices import BackendChoice

SERVE_HELP = ("Serve a model over HTTP: POST /predict (dynamically batched), a live view of a source at /, "
              "/metrics for Prometheus, /healthz and /readyz (pip install 'edgecnn\\[serve]').")


#: Fields whose flag is not their name with dashes (spelled as ``edgecnn run`` spells them).
_FLAGS = {"allow_dirs": "--allow-dir", "topk": "--top-k"}


def _flag(name: str) -> str:
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _config_parameters() -> list[inspect.Parameter]:
    from edgecnn.serve.config import ServeConfig

    params = []
    for f in dataclasses.fields(ServeConfig):
        m = f.metadata
        kind: Any = {"str | None": str | None, "bool": bool, "int": int, "float": float, "str": str}.get(str(f.type))
        default = f.default
        decls = [_flag(f.name)]
        if f.name == "allow_dirs":
            kind, default = list[Path] | None, None
        info = typer.Option(*decls, help=m["help"], min=m.get("min"), max=m.get("max"), envvar=m.get("envvar"),
                            show_envvar=m.get("envvar") is not None, show_default=not m.get("secret"),
                            rich_help_panel="Server")
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[kind, info]))
    return params


def serve_command(
    model: Annotated[Path, typer.Argument(help="Model file (.tflite, .onnx, .keras), a run folder, or a station file "
                                          "(station.toml: the station runs and is served).", show_default=False)],
    source: Annotated[str | None, typer.Option("--source", "-s", help="Classify this source and show it on the live "
                                               "view (anything edgecnn run --source takes).")] = None,
    camera: Annotated[int | None, typer.Option("--camera", "-c", help="Camera index to show instead.", min=0)] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Start a video or folder source again when it ends.")] = False,
    max_fps: Annotated[float | None, typer.Option("--max-fps", help="Classify the source at most this many frames "
                                                  "a second (a video file at about its real rate).", min=0.1)] = None,
    backend: Annotated[BackendChoice, typer.Option("--backend", help="Runtime (default: by file type).")] = BackendChoice("auto"),
    threads: Annotated[int | None, typer.Option("--threads", help="Interpreter / intra-op threads.", min=1)] = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Device profile (edgecnn devices list).")] = None,
    providers: Annotated[str | None, typer.Option("--providers", help="ONNX Runtime providers in order, "
                                                  "comma-separated.")] = None,
    **server: Any,
) -> None:
    from edgecnn.console import write_line
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import is_station_file, open_server

    conventions = server.pop("conventions", None)  # --layout, --input-range, ... (edgecnn.cli.conventions)
    server["allow_dirs"] = tuple(server.get("allow_dirs") or ())
    if is_station_file(model):
        _serve_station(model, server, source, camera)
        return
    config = ServeConfig(**server)
    served = open_server(model, config, source=source, camera=camera, loop=loop, max_fps=max_fps,
                         backend=getattr(backend, "value", backend), threads=threads, device=device,
                         providers=[p.strip() for p in providers.split(",") if p.strip()] if providers else None,
                         conventions=conventions)

    def announce(url: str) -> None:
        auth = "bearer token required" if config.token else "no token"
        write_line(f"edgecnn serve: {url}/ (live view), POST {url}/predict, {url}/metrics, {url}/healthz "
                   f"[{auth}; batch <= {served.state.batcher.max_batch}, delay {config.max_delay_ms:g} ms]; "
                   "Ctrl-C stops.")

    served.run(announce)


def _serve_station(file: Path, server: dict[str, Any], source: str | None, camera: int | None) -> None:
    """A station file: its plan with the [serve] section (flags given here on top), run by the station engine."""
    from edgecnn.console import write_line
    from edgecnn.errors import ConfigError
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import station_plan

    if source is not None or camera is not None:
        raise ConfigError("Expected the sources in the station file's [[sources]]; received --source/--camera too.")
    defaults = ServeConfig()
    changes = {k: v for k, v in server.items() if v != getattr(defaults, k)}
    plan = station_plan(file, changes)
    try:
        from edgecnn.station.engine import run_station
    except ModuleNotFoundError as exc:
        if exc.name != "edgecnn.station.engine":
            raise
        raise ConfigError(f"Serving the station {file.name} needs the station engine (edgecnn.station.engine), which "
                          "this build does not have; serve its model: edgecnn serve MODEL --source ...") from None
    summary = run_station(plan)
    write_line(f"edgecnn serve: station {plan.name} stopped after {getattr(summary, 'frames', 0)} frames and "
               f"{getattr(summary, 'decisions', 0)} decisions.")


_BASE = list(inspect.signature(serve_command).parameters.values())[:-1]
_PARAMETERS = _BASE + _config_parameters()
serve_command.__signature__ = inspect.Signature(_PARAMETERS)  # type: ignore[attr-defined]
serve_command.__annotations__ = {p.name: p.annotation for p in _PARAMETERS}
serve_command.__doc__ = SERVE_HELP


def register(app: typer.Typer) -> None:
    from edgecnn.cli.conventions import with_conventions

    app.command("serve", cls=EdgeCommand)(with_conventions(serve_command))
