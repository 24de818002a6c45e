"""``edgecnn run``'s parameters: the one table its two parsers read, and what a parsed run does.

The table lives below the CLI (:mod:`edgecnn.station.params`: the station file's fields come from it too); it is
re-exported here. Typer's command (:mod:`edgecnn.cli.run`: ``--help``, every error message) is generated from
:data:`RUN_PARAMS`,
and so is the direct parser that starts a run without importing Typer (:mod:`edgecnn.cli.fast`). Both hand
the parsed values to :func:`execute`, so a run is the same whichever parsed it. Nothing here imports Typer.
"""

from __future__ import annotations

from typing import Any

from edgecnn.station.params import RUN_HELP, RUN_PARAMS, Param, _plain, run_options  # noqa: F401


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
    from edgecnn.station.plan import resolve

    sections = {}
    if any(k.startswith(("capture_", "monitor_")) for k in params):  # Typer parsed section flags
        from edgecnn.station.schema import section_flag_values

        sections = section_flag_values(params)
    # the one resolution (profiles, station file, flags)
    plan = resolve({k: _plain(v) for k, v in params.items()}, sections=sections)
    if plan.is_station:
        from edgecnn.station.engine import run_station

        summary: Any = run_station(plan)
    elif plan.engine == "ray":
        from edgecnn.cli.frame import verbose
        from edgecnn.scale.infer import ScaleOptions
        from edgecnn.scale.run import run_ray

        summary = run_ray(plan.run_options(), ScaleOptions(address=plan.address, workers=params.get("workers"),
                                                           verbose=verbose()))
    else:
        from edgecnn.runtime.runner import run

        summary = run(plan.run_options())
    for line in summary.lines():
        console.print(line, markup=False, highlight=False)
    if summary.failure():  # nothing readable: one red line, exit 1
        from edgecnn.errors import DataError

        raise DataError(summary.failure())
    return summary.exit_code


__all__ = ["RUN_HELP", "RUN_PARAMS", "Param", "execute", "run_options"]
