"""``edgecnn export``: a trained Keras model → TFLite / ONNX / SavedModel artifacts that prove they match it.

The conversion itself lives in :mod:`converters` (which knows nothing of edgecnn). This package has one room
per job:

* :mod:`edgecnn.export.plan` — which (format, precision) pairs to write, checked against the registry;
* :mod:`edgecnn.export.source` — the run folder or ``.keras`` model and its card;
* :mod:`edgecnn.export.data` — int8 calibration from the TRAIN split (never test data) and held-out parity data;
* :mod:`edgecnn.export.report` — ``export_report.json``/``.md`` and the next commands;
* :mod:`edgecnn.export.orchestrate` — :func:`export` itself: convert, check parity, write golden, undo on failure.

Example:
    >>> report = export("runs/train/exp", formats=["tflite", "onnx"], quantize=["none", "int8"])
    >>> report.raise_for_gates()   # ParityError when an artifact failed its gate
"""

from edgecnn.export.data import DEFAULT_CALIB_SAMPLES, calibration_set, heldout_set, stratified
from edgecnn.export.orchestrate import export
from edgecnn.export.plan import plan_targets
from edgecnn.export.report import REPORT_JSON, REPORT_MD, ExportReport
from edgecnn.export.source import Source, resolve_source
from edgecnn.runtime.keras_model import KERAS_SUFFIXES, keras_probs, load_keras

__all__ = [
    "DEFAULT_CALIB_SAMPLES",
    "KERAS_SUFFIXES",
    "REPORT_JSON",
    "REPORT_MD",
    "ExportReport",
    "Source",
    "calibration_set",
    "export",
    "heldout_set",
    "keras_probs",
    "load_keras",
    "plan_targets",
    "resolve_source",
    "stratified",
]
