"""edgecnn: train, export, verify and run small image-classification CNNs on edge devices.

The public API (each name is imported on first use, so ``import edgecnn`` stays cheap and never imports
TensorFlow, a runtime, OpenCV or rich)::

    import edgecnn
    clf = edgecnn.load("model_int8.tflite")     # .tflite / .onnx / .keras / run folder -> Classifier
    p = clf.predict(frame)                       # HxWxC uint8 RGB array (bgr=True for OpenCV), PIL image or path
    p.label, p.score, p.topk, p.probs
    for p in clf.stream(camera=0): ...           # any `edgecnn run` source, as an iterator of Predictions

    edgecnn.train(...)  -> TrainResult           edgecnn.export(...)   -> ExportReport
    edgecnn.bench(...)  -> BenchReport           edgecnn.evaluate(...) -> EvalReport

The CLI commands call these same functions. ``edgecnn.export``, ``edgecnn.bench`` and ``edgecnn.evaluate``
are always the functions above, even though submodules of the same names exist: reach those with
``from edgecnn.export import ...`` (or :func:`importlib.import_module`).
"""

import sys as _sys
import types as _types

from edgecnn.errors import EdgeCNNError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (cold start)

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "load": "edgecnn.classifier",
    "Classifier": "edgecnn.classifier",
    "Prediction": "edgecnn.classifier",
    "PredictionStream": "edgecnn.classifier",
    "train": "edgecnn.api",
    "export": "edgecnn.api",
    "evaluate": "edgecnn.api",
    "bench": "edgecnn.api",
    "TrainResult": "edgecnn.training",
    "TrainConfig": "edgecnn.training",
    "ExportReport": "edgecnn.export",
    "EvalReport": "edgecnn.evaluate",
    "BenchReport": "edgecnn.bench.schema",
    "BenchResult": "edgecnn.bench.schema",
    "ModelCard": "edgecnn.modelcard",
}

__all__ = [  # spelled out for static tools; every name but the first two is one of _LAZY's keys
    "EdgeCNNError", "__version__",
    "load", "Classifier", "Prediction", "PredictionStream",
    "train", "export", "evaluate", "bench",
    "TrainResult", "TrainConfig", "ExportReport", "EvalReport", "BenchReport", "BenchResult", "ModelCard",
]

if TYPE_CHECKING:  # pragma: no cover  (what type checkers and IDEs see)
    from typing import Any

    from edgecnn.api import bench, evaluate, export, train
    from edgecnn.bench.schema import BenchReport, BenchResult
    from edgecnn.classifier import Classifier, Prediction, PredictionStream, load
    from edgecnn.evaluate import EvalReport
    from edgecnn.export import ExportReport
    from edgecnn.modelcard import ModelCard
    from edgecnn.training import TrainConfig, TrainResult


def __getattr__(name: str) -> "Any":
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> "list[str]":
    return sorted({n for n in globals() if not n.startswith("_") and n != "TYPE_CHECKING"} | set(__all__))


class _Package(_types.ModuleType):
    """The ``edgecnn`` module object: importing a submodule never replaces a public function of its name.

    ``import edgecnn.export`` (anywhere, e.g. inside the CLI) makes Python set ``edgecnn.export`` to the
    submodule; for the names in the public API that assignment is skipped, so ``edgecnn.export(...)``
    stays the function. The submodule is still in ``sys.modules`` for ``from edgecnn.export import X``.
    """

    def __setattr__(self, name: str, value: "Any") -> None:
        if isinstance(value, _types.ModuleType) and _LAZY.get(name) == "edgecnn.api":
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
