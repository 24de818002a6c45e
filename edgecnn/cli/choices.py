"""Choices of the command line, built from the registries (never retyped), so ``--help`` lists them and Typer
refuses anything else with its own error. Nothing here imports Typer (``edgecnn run``'s direct parser reads it)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from edgecnn.scale.cluster import ENGINES
from edgecnn.station.params import BACKEND_CHOICES


def choice_enum(title: str, values: Iterable[str]) -> type[Enum]:
    """A ``str`` Enum whose members are ``values``, named as they are spelled (what Typer shows and accepts)."""
    return Enum(title, {v: v for v in values}, type=str)  # type: ignore[return-value]


BackendChoice = choice_enum("BackendChoice", BACKEND_CHOICES)
#: ``--engine``: ``local`` (this machine) or ``ray`` (a Ray cluster), from :data:`edgecnn.scale.cluster.ENGINES`.
EngineChoice = choice_enum("EngineChoice", ENGINES)
