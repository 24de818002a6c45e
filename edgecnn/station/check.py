"""``edgecnn station check``: validate a station file, resolve its plan, read the model, reach every output.

>>> report = check_station_file("station.toml")
>>> print("\\n".join(report.lines())); raise SystemExit(0 if report.ok else 1)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.station.events import Reachability


@dataclass
class CheckReport:
    """What ``station check`` found: the plan's non-default options, the model, and each output's reachability."""

    file: Path
    name: str = ""
    options: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    model: str = ""
    problems: list[str] = field(default_factory=list)
    outputs: list[Reachability] = field(default_factory=list)
    secrets: tuple[str, ...] = ()
    #: Every output of the file as ``NAME (KIND)``, reached or not (``--offline`` reaches none)
    declared: list[str] = field(default_factory=list)
    reached: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.outputs)

    def lines(self) -> list[str]:
        n_src, n_out = len(self.sources), len(self.declared) or len(self.outputs)
        out = [f"Station {self.name} ({self.file}): {n_src} source{'s' * (n_src != 1)}, "
               f"{n_out} output{'s' * (n_out != 1)}"]
        out += [f"  source {s}" for s in self.sources]
        if self.model:
            out.append(f"  model {self.model}")
        out += [f"  {line}" for line in self.options]
        if self.secrets:
            out.append(f"  secrets from the environment: {', '.join(self.secrets)} (values not shown)")
        out += [f"  output {r.name}: {'reachable' if r.ok else 'NOT reachable'}: {r.detail}" for r in self.outputs]
        if not self.reached:
            out += [f"  output {d}: not tried (--offline)" for d in self.declared]
        out += self.problems
        out.append("OK" if self.ok else f"{len(self.problems) + sum(not r.ok for r in self.outputs)} problem(s)")
        return out


def check_station_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None,
                       reach: bool = True, timeout: float = 5.0) -> CheckReport:
    """Check a station file end to end without running it.

    Args:
        path: The station file.
        environ: Where placeholders are filled from (default ``os.environ``).
        reach: Also ask each output whether it can be reached now (broker, port, chip, URL).
        timeout: Seconds each output may take to answer.

    Raises:
        StationFileError: the file's problems, one line each (nothing else is checked then).
        EdgeCNNError: a profile or option the plan refuses.
    """
    from edgecnn.errors import EdgeCNNError
    from edgecnn.station.plan import resolve
    from edgecnn.station.schema import load_station, output_module

    station = load_station(path, environ)
    plan = resolve(station=station)
    report = CheckReport(file=Path(path), name=plan.name, options=plan.describe(), secrets=plan.secret_names,
                         declared=[f"{o.name} ({o.kind})" for o in plan.outputs], reached=reach)
    for s in plan.sources:
        from edgecnn.runtime.sources import mask_url

        where = "***" if s.secret else (mask_url(s.source) if s.source is not None else f"camera {s.camera}")
        regions = ", ".join(r.name for r in s.regions) or "the whole frame"
        report.sources.append(f"{s.name}: {where}; regions: {regions}")
    report.model = _check_model(plan, report)
    if reach:
        for out in plan.outputs:
            check = getattr(output_module(out.kind), "check", None)
            if check is None:
                report.outputs.append(Reachability(out.name, True, "no reachability check for this kind"))
                continue
            try:
                import inspect

                takes = inspect.signature(check).parameters
                kwargs: dict[str, Any] = {k: v for k, v in (("name", out.name), ("timeout", timeout)) if k in takes}
                report.outputs.append(check(out.config, **kwargs))
            except EdgeCNNError as exc:
                report.outputs.append(Reachability(out.name, False, str(exc)))
    return report


def _check_model(plan: Any, report: CheckReport) -> str:
    """The model's name, labels and hash; labels the rules name that the model lacks are problems."""
    from edgecnn.errors import EdgeCNNError
    from edgecnn.runtime.backends import load_backend

    o = plan.options
    try:
        backend = load_backend(o.model, backend=o.backend or "auto", threads=o.threads, delegate=o.delegate,
                               delegate_options=o.delegate_options, providers=o.providers, unsafe=o.unsafe)
    except EdgeCNNError as exc:
        report.problems.append(f"{plan.station_file}: model: {exc}")
        return ""
    try:
        labels = list(backend.labels)
        unknown = sorted({*plan.rules.reject, *plan.rules.thresholds} - set(labels))
        if unknown:
            report.problems.append(f"{plan.station_file}: rules: expected labels of the model {labels}; received "
                                   f"{unknown} (in reject or thresholds).")
        return (f"{Path(str(o.model)).name}: {backend.info().get('runtime')}, labels {labels}, max batch "
                f"{backend.max_batch or 'any'}")
    finally:
        backend.close()


__all__ = ["CheckReport", "check_station_file"]
