"""Agreement under each common consumer's preprocessing: the export gate that proves an artifact in other apps.

The parity gates prove an artifact with edgecnn's own pixels. A consumer resizes its own way (MediaPipe Tasks'
bilinear warp, OpenCV's ``INTER_LINEAR``, Pillow's antialiased bilinear), and a model that hangs on one resampler
changes its answer on near-tie images. For every artifact, export runs the held-out images of a size other than
the model's (same-size images are resized by nobody) through each consumer's resize
(:data:`edgecnn.imaging.CONSUMER_RESIZES`, :func:`edgecnn.imaging.preprocess_as`) and measures the top-1
agreement with what ``edgecnn run`` answers on the same artifact; the ``edgecnn`` row is the artifact against the
Keras model on edgecnn's pixels. Each row is gated at ``Gates.consumer_agreement`` (99 % by default,
``--gate-consumer``): it fails when the held-out images show, with 95 % confidence, an agreement below the
threshold (the upper end of the Wilson score interval is under it). So one near-tie flip among 18 images (94.4 %,
interval up to 99.0 %) is not evidence, while 141 of 146 (96.6 %, up to 98.5 %) or 25 of 30 fail; the report gives
the measured figure and the interval. ``tests/mediapipe`` checks that the ``mediapipe`` row is what MediaPipe
itself answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecnn.imaging import CONSUMER_RESIZES, LabelledFiles, UnreadableImageError, decode_image, preprocess_as
from edgecnn.modelcard import ModelCard


@dataclass
class ConsumerImages:
    """The held-out images of another size than the model's, preprocessed as each consumer does."""

    batches: dict[str, np.ndarray] = field(default_factory=dict)
    samples: int = 0
    same_size: int = 0

    @property
    def empty(self) -> bool:
        return self.samples == 0


def consumer_images(files: LabelledFiles | None, card: ModelCard, limit: int = 1000) -> ConsumerImages:
    """Decode the held-out files once and resize those of another size with every consumer's resampler."""
    out = ConsumerImages()
    if files is None:
        return out
    spec, pre = card.input, card.preprocessing
    rows: dict[str, list[np.ndarray]] = {c: [] for c in CONSUMER_RESIZES}
    for path in files.files[:limit]:
        try:
            rgb = decode_image(path)
        except UnreadableImageError:
            continue
        if rgb.shape[:2] == (spec.height, spec.width):
            out.same_size += 1
            continue
        for consumer in CONSUMER_RESIZES:
            rows[consumer].append(preprocess_as(rgb, spec.height, spec.width, pre.color, consumer, pre.resize))
    out.samples = len(rows[CONSUMER_RESIZES[0]])
    if out.samples:
        out.batches = {c: np.stack(v) for c, v in rows.items()}
    return out


def wilson_interval(agree: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion ``agree / n``."""
    if n == 0:
        return 0.0, 1.0
    p = agree / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def consumer_loads(artifact: Any, channels: int) -> dict[str, bool]:
    """Which consumers can load ``artifact`` at all: MediaPipe Tasks runs TFLite models and refuses 1-channel
    (grayscale) ones, so its resize is no gate for an ONNX file or a grayscale model; OpenCV and Pillow users
    feed any runtime."""
    from pathlib import Path

    from edgecnn.runtime.backends import TFLiteBackend

    return {"mediapipe": Path(str(artifact)).suffix.lower() in TFLiteBackend.suffixes and channels == 3}


def measure(artifact: Any, images: ConsumerImages, keras_top1: np.ndarray | None, threshold: float) -> dict[str, Any]:
    """Top-1 agreement of ``artifact`` (a path) under each consumer's resize.

    Returns:
        ``{"samples", "threshold", "passed", "consumers": {name: {"agreement", "reference"}}, "failures": [...]}``.
    """
    from edgecnn.runtime.backends import load_backend

    if images.empty:
        return {"samples": 0, "same_size": images.same_size, "threshold": threshold, "passed": True, "consumers": {},
                "failures": [], "note": "no held-out image has another size than the model's: no consumer resizes"}
    with load_backend(artifact) as backend:
        top1 = {c: np.argmax(backend.predict(x.astype(np.float32)), axis=1) for c, x in images.batches.items()}
        loads = consumer_loads(artifact, backend.card.input.channels)
    own = top1["edgecnn"]
    consumers: dict[str, dict[str, Any]] = {}
    for name in CONSUMER_RESIZES:
        if not loads.get(name, True):
            continue  # this consumer never sees this artifact (MediaPipe: TFLite RGB models only)
        if name == "edgecnn":
            if keras_top1 is None:
                continue
            same, reference = own == keras_top1, "keras"
        else:
            same, reference = top1[name] == own, "edgecnn run"
        low, high = wilson_interval(int(same.sum()), len(same))
        consumers[name] = {"agreement": float(same.mean()), "disagree": int((~same).sum()), "interval": [low, high],
                           "reference": reference}
    failures = [f"top-1 agreement under {name}'s resize {row['agreement']:.1%} (95 % interval up to "
                f"{row['interval'][1]:.1%}) < {threshold:.1%} (vs {row['reference']}, {images.samples} images of "
                "another size)" for name, row in consumers.items() if row["interval"][1] < threshold]
    return {"samples": images.samples, "same_size": images.same_size, "threshold": threshold,
            "passed": not failures, "consumers": consumers, "failures": failures}


def markdown(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The report's section: one row per artifact, one column per consumer."""
    if not rows:
        return []
    lines = ["## Agreement under consumers' preprocessing", ""]
    first = next(iter(rows.values()))
    if not first.get("samples"):
        return [*lines, f"Not measured: {first.get('note', 'no held-out data')}.", ""]
    lines += [f"Top-1 agreement on {first['samples']} held-out images of another size than the model's "
              f"(gate: fails when the 95 % interval lies below {first['threshold']:.1%}); `edgecnn` is the artifact "
              "against Keras, every other column the artifact under that consumer's resize against `edgecnn run`.", "",
              "| artifact | " + " | ".join(CONSUMER_RESIZES) + " | gate |",
              "|---|" + "---|" * (len(CONSUMER_RESIZES) + 1)]
    for artifact, row in rows.items():
        cells = [f"{row['consumers'][c]['agreement']:.1%}" if c in row["consumers"] else "n/a" for c in CONSUMER_RESIZES]
        lines.append(f"| {artifact} | " + " | ".join(cells) + f" | {'pass' if row['passed'] else 'FAIL'} |")
    return [*lines, ""]
