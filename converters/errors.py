"""Errors raised by converters (which knows nothing of edgecnn; the orchestrator re-raises them as its own)."""

from __future__ import annotations


class ConversionError(Exception):
    """A model could not be converted.

    Attributes:
        layer: Name of the Keras layer that could not be converted, when it could be identified.
        ops: Names of the unsupported operations reported by the converter.
    """

    def __init__(self, message: str, layer: str | None = None, ops: list[str] | None = None) -> None:
        super().__init__(message)
        self.layer = layer
        self.ops = ops or []


class CalibrationError(ValueError):
    """Calibration data is missing, empty or of the wrong shape."""
