"""Choices of the command line, built from the registries (never retyped), so ``--help`` lists them and Typer
refuses anything else with its own error."""

from __future__ import annotations

from enum import Enum

from edgecnn.runtime.backends import BACKENDS

#: ``--backend``: ``auto`` (by file type) or a row of :data:`edgecnn.runtime.backends.BACKENDS`.
BackendChoice = Enum("BackendChoice", {n: n for n in ["auto", *BACKENDS]}, type=str)  # type: ignore[misc]
