"""User-facing errors. The CLI prints their message as one red line and exits non-zero.

Messages follow the house style: what was expected, what was received, and the fix.
"""

from __future__ import annotations


class EdgeCNNError(Exception):
    """Base class of every error caused by user input or environment (never a bug)."""

    exit_code = 1


class DataError(EdgeCNNError):
    """A dataset folder, image or calibration set is missing or unusable."""


class ConfigError(EdgeCNNError):
    """An option, preset or TOML configuration value is invalid."""

    exit_code = 2


class SizeError(DataError, ConfigError):
    """An image size option out of range or malformed: a usage error (exit 2), still a DataError for callers."""


class ModelError(EdgeCNNError):
    """A model file is missing, of an unknown type, unsafe or cannot be converted."""


class MissingDependencyError(EdgeCNNError):
    """An optional dependency needed for this path is not installed."""


class SourceError(EdgeCNNError):
    """A camera, stream, video or folder source cannot be opened or stopped delivering."""


class ParityError(EdgeCNNError):
    """An exported artifact failed its parity gate against the reference model."""


class GateError(EdgeCNNError):
    """A benchmark gate (latency or accuracy) failed."""


class ArtifactExistsError(EdgeCNNError):
    """An output exists and would be overwritten without --force / --exist-ok."""


class Terminated(KeyboardInterrupt):
    """SIGTERM received: unwinds like Ctrl-C (cleanup runs, partial results are kept), exit code 143."""


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional dependency or raise a helpful MissingDependencyError.

    Args:
        module: Import name, e.g. ``"onnxruntime"``.
        extra: The edgecnn extra that brings it, e.g. ``"onnx"``.
        purpose: What it is needed for, shown in the message.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        import sys

        what = f" (needed {purpose})" if purpose else ""
        fix = f"pip install 'edgecnn[{extra}]'"
        here = tuple(sys.version_info[:2])
        if extra in TRAINING_EXTRAS and here < TRAINING_PYTHON:
            fix = (f"the training side (edgecnn[{extra}]) needs Python {'.'.join(map(str, TRAINING_PYTHON))} or newer "
                   f"and this is {here[0]}.{here[1]}; run training and export in a "
                   f"Python {'.'.join(map(str, TRAINING_PYTHON))}+ venv (run, bench, evaluate and info of .tflite/.onnx "
                   "work here)")
        raise MissingDependencyError(f"{module} is not installed{what}: {fix}") from exc


#: Extras whose pins (Keras 3.15, with TensorFlow 2.21, JAX or torch) have wheels only for Python >= TRAINING_PYTHON.
TRAINING_EXTRAS = ("train", "train-jax", "train-torch", "gpu")
TRAINING_PYTHON = (3, 11)
