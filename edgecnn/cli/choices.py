"""Choices of the command line, built from the registries (never retyped), so ``--help`` lists them and Typer
refuses anything else with its own error."""

from __future__ import annotations

from enum import Enum

from edgecnn.runtime.backends import BACKENDS
from edgecnn.scale.cluster import ENGINES

#: ``--backend``: ``auto`` (by file type) or a row of :data:`edgecnn.runtime.backends.BACKENDS`.
BackendChoice = Enum("BackendChoice", {n: n for n in ["auto", *BACKENDS]}, type=str)  # type: ignore[misc]

#: ``--engine``: ``local`` (this machine) or ``ray`` (a Ray cluster), from :data:`edgecnn.scale.cluster.ENGINES`.
EngineChoice = Enum("EngineChoice", {n: n for n in ENGINES}, type=str)  # type: ignore[misc]
