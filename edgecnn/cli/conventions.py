"""The input-convention flags (``--layout``, ``--input-range``, ``--mean``, ``--std``, ``--color``, ``--resize``,
``--interpolation``, ``--labels``, ``--strict``) added to a Typer command from the one table
(:data:`edgecnn.cli.run_params.CONVENTION_PARAMS`), handed to it as one ``conventions`` argument."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from edgecnn.station.params import CONVENTION_PARAMS, convention_values


def with_conventions(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command(..., conventions=Conventions | None)`` as a Typer command that takes the convention flags."""
    from edgecnn.cli.run import _parameter

    extra = [_parameter(p) for p in CONVENTION_PARAMS]
    names = [p.name for p in CONVENTION_PARAMS]
    hints = typing.get_type_hints(command, include_extras=True)  # the command's own module resolves its names
    base = [p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(command).parameters.values() if p.name != "conventions"]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from edgecnn.conventions import Conventions

        values = convention_values({k: kwargs.pop(k, None) for k in names})
        conventions = Conventions(**values)
        return command(*args, **kwargs, conventions=conventions if conventions.any() else None)

    wrapper.__signature__ = inspect.Signature([*base, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*base, *extra]}
    return wrapper
