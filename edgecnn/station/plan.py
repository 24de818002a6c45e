"""Resolve once: defaults < device profile < deploy profile < station file < command-line flags -> one :class:`Plan`.

Every way of starting a run goes through :func:`resolve`: ``edgecnn run`` (with or without ``--station``),
``edgecnn station run|check``, the Ray engine and the station engine read the plan it returns and never apply a
profile or a default again. The plan is immutable; :meth:`Plan.run_options` hands each engine a copy of the run
options to use (already resolved, so :func:`~edgecnn.runtime.resolve.resolve_options` leaves it as it is).

>>> plan = resolve({"model": "m.tflite", "source": "images/", "threads": 2})
>>> plan.origins["threads"]
'flag'
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.runtime.options import RunOptions
from edgecnn.station.params import RUN_PARAMS, run_options

if TYPE_CHECKING:  # the schema is imported only when there is a station file (a plain run stays cheap)
    from edgecnn.station.config import OutputConfig, RulesConfig, SourceConfig, StationConfig

#: Where a value came from, lowest first (``Plan.origins`` uses these words, with the profile's name).
LAYERS = ("default", "device profile", "deploy profile", "station file", "flag")


@dataclass(frozen=True)
class Plan:
    """Everything a run or a station does, resolved once.

    Attributes:
        name: The station's name (``"run"`` for a plain ``edgecnn run``).
        options: The resolved run options (read through :meth:`run_options`, which copies them).
        sources: The station's sources (empty for a plain run: ``options.source``/``camera`` is its one source).
        rules: Decision rules.
        outputs: Output configs, in file order.
        sections: Optional sections (``serve``, ``capture``, ``monitor``) as their dataclasses.
        state_dir: The station's state folder (sequence number, spools).
        station_file: The station file, when there is one.
        origins: Each run option's source: ``default``, ``device profile NAME``, ``deploy profile FILE``,
            ``station file`` or ``flag``.
        start_offline: Outputs that cannot be reached at start do not stop the station.
        secret_names: Environment variables the station file's placeholders read.
        engine: ``local`` or ``ray`` (a plain run only: a station runs on its machine).
        address: The Ray head of ``engine = "ray"`` (None: a local Ray).
    """

    name: str
    options: RunOptions
    sources: tuple[SourceConfig, ...] = ()
    rules: RulesConfig | None = None
    outputs: tuple[OutputConfig, ...] = ()
    sections: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    state_dir: Path | None = None
    station_file: Path | None = None
    origins: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    start_offline: bool = False
    secret_names: tuple[str, ...] = ()
    engine: str = "local"
    address: str | None = None

    def run_options(self) -> RunOptions:
        """A copy of the resolved run options (an engine may not change the plan's)."""
        return dataclasses.replace(self.options)

    @property
    def is_station(self) -> bool:
        return bool(self.sources)

    def describe(self) -> list[str]:
        """Lines for ``station check``: each option that is not a default, with where it came from."""
        out = []
        for key, origin in sorted(self.origins.items()):
            if origin == "default":
                continue
            value = getattr(self.options, key, None)
            out.append(f"{key} = {str(value) if isinstance(value, Path) else repr(value)} ({origin})")
        return out


def _given(flags: Mapping[str, Any]) -> set[str]:
    """Flags that differ from their default (what a parsed command line set)."""
    defaults = {p.name: p.default for p in RUN_PARAMS}
    out = set()
    for key, value in flags.items():
        value = getattr(value, "value", value)
        if key in defaults and value not in (None, (), []) and value != defaults[key]:
            out.add(key)
    return out


def resolve(flags: Mapping[str, Any] | None = None, station: StationConfig | str | os.PathLike[str] | None = None,
            *, given: set[str] | None = None, start_offline: bool | None = None,
            environ: Mapping[str, str] | None = None, sections: Mapping[str, Mapping[str, Any]] | None = None
            ) -> Plan:
    """The one plan of a run or a station.

    Args:
        flags: Parsed ``edgecnn run`` values keyed as :data:`~edgecnn.station.params.RUN_PARAMS` (defaults may be
            included; only those in ``given`` count as given).
        station: A station file (path or checked config); default ``flags["station"]``.
        given: The flags the command line set (default: those that differ from their default).
        start_offline: Start with unreachable outputs (default ``flags["start_offline"]``).
        environ: The environment the file's placeholders read (default ``os.environ``).
        sections: Section flags given (``--capture-below 0.5`` -> ``{"capture": {"below": 0.5}}``): they override
            the station file's section. A plain run given one (``edgecnn run MODEL --source URL --capture``) runs as
            a one-source station (its rows are the station's), with its state in ``./edgecnn.state``.

    Raises:
        EdgeCNNError: a bad station file (every problem, one line each), profile or option.
    """
    from edgecnn.runtime.options import validate_options
    from edgecnn.runtime.resolve import resolve_options

    flags = dict(flags or {})
    given = _given(flags) if given is None else set(given)
    station = station if station is not None else flags.get("station")
    if station is not None:
        from edgecnn.station.schema import StationConfig, load_station

        if not isinstance(station, StationConfig):
            station = load_station(station, environ)
    values: dict[str, Any] = {p.name: p.default for p in RUN_PARAMS}
    origins: dict[str, str] = {p.name: "default" for p in RUN_PARAMS}
    if station is not None:
        top = {"model": station.model, "profile": station.profile, "device": station.device}
        for key, value in {**station.run, **{k: v for k, v in top.items() if v is not None}}.items():
            values[key] = value
            origins[key] = "station file"
    for key in given:
        values[key] = flags[key]
        origins[key] = "flag"
    if station is not None and ("source" in given or "camera" in given):
        from edgecnn.errors import ConfigError

        raise ConfigError("Expected the sources in the station file's [[sources]]; received --source/--camera too. "
                          "Drop the flag, or run without --station.")
    engine, address = getattr(values["engine"], "value", values["engine"]) or "local", values.get("address")
    if engine != "local" and (station is not None or sections):
        from edgecnn.errors import ConfigError

        raise ConfigError(f"Expected engine = \"local\" for a station (it reads cameras on this machine); received "
                          f"{engine!r} ({origins['engine']}). Drop it.")
    opts = run_options(values)
    named = {p.name for p in RUN_PARAMS}
    option_origins = {k: v for k, v in origins.items() if k in vars(opts) or k in named}
    opts = resolve_options(opts, option_origins)
    validate_options(opts)
    if start_offline is None:
        start_offline = bool(flags.get("start_offline"))
    if station is None and not sections:
        return Plan(name="run", options=opts, origins=types.MappingProxyType(option_origins),
                    start_offline=start_offline, engine=engine, address=address)
    from edgecnn.station.fields import parse_flag_values
    from edgecnn.station.schema import section_class

    if station is None:
        station = _one_source_station(opts)
    merged = dict(station.sections)
    for name, given_values in (sections or {}).items():
        merged[name] = parse_flag_values(section_class(name), name, given_values, merged.get(name))
    state_dir = flags.get("state_dir")  # `station run --state-dir` (an installed bundle's PREFIX/state)
    return Plan(name=station.name, options=opts, sources=station.sources, rules=station.rules,
                outputs=station.outputs, sections=types.MappingProxyType(merged),
                state_dir=Path(state_dir).expanduser().resolve() if state_dir else station.state_dir,
                station_file=station.path,
                origins=types.MappingProxyType(option_origins), start_offline=start_offline,
                secret_names=station.secret_names)


def _one_source_station(opts: RunOptions) -> StationConfig:
    """A plain run as a station of one source (named ``source``), for section flags (``--capture``...)."""
    from edgecnn.errors import SourceError
    from edgecnn.station.config import RulesConfig, SourceConfig, StationConfig

    if opts.source is None and opts.camera is None:
        raise SourceError("Expected an input: --source FILE|FOLDER|GLOB|VIDEO|URL|PIPELINE or --camera N.")
    source = SourceConfig(name="source", source=str(opts.source) if opts.source is not None else None,
                          camera=opts.camera)
    return StationConfig(path=Path("edgecnn run"), name="run", model=None, profile=None, device=None,
                         state_dir=Path.cwd() / "edgecnn.state", run={}, sources=(source,),
                         rules=RulesConfig(threshold=opts.threshold), outputs=(), sections={})


__all__ = ["LAYERS", "Plan", "resolve"]
