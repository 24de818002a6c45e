"""``edgecnn serve MODEL``: load the model, build the app, listen. :func:`open_server` is what the CLI calls.

A model file serves ``POST /predict`` (batched), ``/metrics`` and health; with ``source`` (anything
``edgecnn run --source`` takes) its frames are classified by a second instance of the model
(:class:`~edgecnn.serve.feed.PipelineFeed`) and shown on the live view. A station (:mod:`edgecnn.station`) passes
its engine as ``station`` (a :class:`~edgecnn.serve.handle.StationHandle`) instead.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError
from edgecnn.serve.config import ServeConfig


@dataclass
class Served:
    """A server ready to run: :meth:`start` (background thread) or :meth:`run` (until Ctrl-C / SIGTERM)."""

    app: Any
    state: Any
    server: Any
    feed: Any = None
    classifiers: tuple[Any, ...] = ()

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Served:
        if self.feed is not None and not self.feed.running:
            self.feed.start()
        self.server.start()
        return self

    def run(self, announce: Any = None) -> None:
        """Serve until Ctrl-C or SIGTERM; ``announce(url)`` once listening."""
        stop = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            self.start()
            if announce is not None:
                announce(self.url)
            while not stop.is_set() and self.server._thread is not None and self.server._thread.is_alive():
                stop.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.close()

    def close(self) -> None:
        """Stop serving (open live streams end first), the feed and the model(s)."""
        self.state.live.close()
        self.server.stop()
        if self.feed is not None:
            self.feed.stop()
        for clf in self.classifiers:
            clf.close()

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_server(model: str | os.PathLike[str], config: ServeConfig | None = None, *, source: str | None = None,
                camera: int | None = None, loop: bool = False, max_fps: float | None = None, backend: str = "auto", threads: int | None = None,
                device: str | None = None, providers: list[str] | None = None,
                station: Any = None, conventions: Any = None) -> Served:
    """Load ``model`` and prepare its server (not started).

    Args:
        model: A .tflite, .onnx or .keras file or a run folder (as ``edgecnn run``).
        config: Listening, batching and safety options (default: loopback, port 8080).
        source, camera: A source to classify and show on the live view.
        loop: Start a finite source (video, folder) again when it ends.
        max_fps: Classify the source at most this often (a video file at about its real rate).
        backend, threads, device, providers: As ``edgecnn.load``.
        station: A running station's handle (instead of ``source``).
        conventions: Input conventions of a model made elsewhere (:class:`edgecnn.conventions.Conventions`).

    Raises:
        ConfigError: a station file (serve it from its ``serve`` section), a bad option or bind.
        ModelError, SourceError, MissingDependencyError: as ``edgecnn run`` (the serve extra for the HTTP stack).
    """
    from edgecnn.serve.http import require_stack

    require_stack("for edgecnn serve")
    config = config or ServeConfig()
    if is_station_file(model) or Path(model).suffix.lower() in (".yaml", ".yml", ".json"):
        raise ConfigError(f"Expected a model file (.tflite, .onnx, .keras) or a run folder; received "
                          f"{Path(model).name}. A station file is served by the station engine: edgecnn serve "
                          "STATION.toml, or edgecnn station run STATION.toml with a [serve] section.")
    for d in config.allow_dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"--allow-dir: expected an existing folder; received {d}.")
    if source is not None and camera is not None:
        raise ConfigError("Expected --source or --camera, not both.")
    import edgecnn
    from edgecnn.serve.app import build_app
    from edgecnn.serve.handle import identity_of
    from edgecnn.serve.http import Server

    opts = {"backend": backend, "threads": threads, "device": device, "providers": providers,
            "conventions": conventions}
    clf = edgecnn.load(model, **opts)
    classifiers = [clf]
    try:
        identity = identity_of(clf.path, clf.card, clf.info().get("runtime") or clf.backend.name)
        feed = None
        if source is not None or camera is not None:
            from edgecnn.serve.feed import PipelineFeed

            second = edgecnn.load(model, **opts)  # a stream must not share its classifier with /predict
            classifiers.append(second)
            feed = station = PipelineFeed(second, source, identity, loop=loop, topk=min(3, len(clf.labels)),
                                          camera=camera, max_fps=max_fps)
        app, state = build_app(clf, config, identity, station)
        server = Server(app, config.host, config.port, access_log=config.access_log)
    except BaseException:
        for c in classifiers:
            c.close()
        raise
    return Served(app, state, server, feed, tuple(classifiers))


STATION_SUFFIXES = (".toml",)


def is_station_file(target: str | os.PathLike[str]) -> bool:
    """A station file (``station.toml``) rather than a model."""
    return Path(target).suffix.lower() in STATION_SUFFIXES


def station_plan(station_file: str | os.PathLike[str], changes: dict[str, Any] | None = None) -> Any:
    """The plan of a station file with its ``serve`` section set: the file's ``[serve]`` (or the defaults) with
    ``changes`` (the ``serve`` command's flags) on top. The station engine runs it and serves it.

    Raises:
        EdgeCNNError: a bad station file (every problem, one line each) or serve option.
    """
    import dataclasses
    import types

    from edgecnn.station.plan import resolve

    plan = resolve({}, station=station_file)
    base = plan.sections.get("serve") or ServeConfig()
    config = dataclasses.replace(base, **(changes or {}))
    return dataclasses.replace(plan, sections=types.MappingProxyType({**plan.sections, "serve": config}))


__all__ = ["STATION_SUFFIXES", "Served", "is_station_file", "open_server", "station_plan"]
