"""``edgecnn bench --pick``: the fastest artifact × threads × batch measured here that passes the accuracy gate.

Every row of a bench report run with ``--data`` has an accuracy. The reference is the accuracy of the least
quantized artifact in the report (float32 before float16 before int8, as :func:`converters.registry.precision_rank`
orders them); a row passes when its accuracy drop against that reference is within the gate (the same
``--gate-int8-acc-drop`` as export's parity gates, a fraction: 0.01 = 1 point) and it meets ``--min-accuracy``.
Among the rows that pass, the one with the lowest p50 per image (p50 / batch; p99 breaks ties) is written as a
deploy profile (:mod:`edgecnn.runtime.deploy` reads it) with the artifact's SHA-256 and the device fingerprint.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.registry import precision_rank
from edgecnn.bench.schema import BenchReport, BenchResult
from edgecnn.errors import ConfigError, GateError


@dataclass
class Pick:
    """The chosen row and why: the reference accuracy, the gate and every rejected candidate."""

    row: BenchResult
    reference: BenchResult
    max_drop: float
    min_accuracy: float | None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    candidates: int = 0

    @property
    def per_image_ms(self) -> float:
        return _per_image(self.row)


def _per_image(r: BenchResult) -> float:
    return r.latency.p50_ms / max(r.batch, 1)  # type: ignore[union-attr]


def pick(report: BenchReport, max_drop: float = 0.01, min_accuracy: float | None = None) -> Pick:
    """The fastest row (p50 per image) whose accuracy passes the gate.

    Raises:
        ConfigError: the report has no accuracy (bench was run without ``--data``).
        GateError: no row passes (each rejection is named).
    """
    measured = [r for r in report.results if r.ok]
    with_acc = [r for r in measured if r.accuracy is not None]
    if not with_acc:
        raise ConfigError("--pick needs accuracy to gate on: give --data DIR (labelled class folders) to bench.")
    reference = min(with_acc, key=lambda r: (precision_rank(r.precision), -r.accuracy))  # type: ignore[operator]
    rejected: list[dict[str, Any]] = []
    passing: list[BenchResult] = []
    for r in with_acc:
        drop = reference.accuracy - r.accuracy  # type: ignore[operator]
        why = []
        if drop > max_drop + 1e-12:
            why.append(f"accuracy drop {drop * 100:.2f} pts > {max_drop * 100:.2f} pts")
        if min_accuracy is not None and r.accuracy < min_accuracy:  # type: ignore[operator]
            why.append(f"accuracy {r.accuracy:.4f} < {min_accuracy:g}")
        if why:
            rejected.append({"file": r.file, "threads": r.threads, "batch": r.batch, "why": "; ".join(why)})
        else:
            passing.append(r)
    if not passing:
        first = rejected[0]
        raise GateError(f"No measured combination passes the accuracy gate (reference {reference.file} "
                        f"{reference.accuracy:.4f}); e.g. {first['file']}: {first['why']}. Loosen "
                        "--gate-int8-acc-drop/--min-accuracy or re-export.")
    best = min(passing, key=lambda r: (_per_image(r), r.latency.p99_ms / max(r.batch, 1)))  # type: ignore[union-attr]
    return Pick(row=best, reference=reference, max_drop=max_drop, min_accuracy=min_accuracy, rejected=rejected,
                candidates=len(measured))


def profile_dict(choice: Pick, report: BenchReport, artifact: Path, profile_path: Path) -> dict[str, Any]:
    """The deploy profile (schema ``edgecnn.deploy/1``) for ``choice``."""
    from edgecnn import __version__
    from edgecnn.fileio import sha256_file
    from edgecnn.runtime.deploy import DEPLOY_SCHEMA
    from edgecnn.sysinfo import device_fingerprint

    r = choice.row
    lat = r.latency
    assert lat is not None  # chosen rows are measured
    try:
        rel = os.path.relpath(artifact.resolve(), profile_path.resolve().parent)
    except ValueError:  # another drive (Windows)
        rel = str(artifact.resolve())
    settings = report.settings or {}
    return {
        "schema": DEPLOY_SCHEMA,
        "artifact": {"path": rel, "abs_path": str(artifact.resolve()), "sha256": sha256_file(artifact),
                     "file": r.file, "format": r.format, "precision": r.precision, "size_bytes": r.size_bytes},
        "backend": r.backend,
        "threads": r.threads,
        "batch": r.batch,
        "delegate": settings.get("delegate"),
        "delegate_options": settings.get("delegate_options") or None,
        "providers": settings.get("providers"),
        "measured": {
            "p50_ms": round(lat.p50_ms, 4), "p99_ms": round(lat.p99_ms, 4), "p50_per_image_ms": round(choice.per_image_ms, 4),
            "mean_ms": round(lat.mean_ms, 4), "runs": lat.count, "accuracy": r.accuracy, "accuracy_images": r.accuracy_images,
            "reference": {"file": choice.reference.file, "precision": choice.reference.precision,
                          "accuracy": choice.reference.accuracy},
            "accuracy_drop": round(choice.reference.accuracy - r.accuracy, 6),  # type: ignore[operator]
            "gate": {"max_accuracy_drop": choice.max_drop, "min_accuracy": choice.min_accuracy},
            "data": settings.get("data"),
            "runtime": r.runtime, "runtime_version": r.runtime_version, "provider": r.provider,
        },
        "candidates": {"measured": choice.candidates, "rejected": choice.rejected},
        "device": {"fingerprint": device_fingerprint(report.system), "hostname": (report.system or {}).get("hostname"),
                   "label": report.label},
        "edgecnn_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_profile(choice: Pick, report: BenchReport, path: str | os.PathLike[str]) -> Path:
    """Write the deploy profile atomically (temp file + rename).

    Raises:
        ConfigError: not a ``.json`` path.
        ModelError: the chosen artifact is gone or changed since it was measured.
    """
    from edgecnn.errors import ModelError
    from edgecnn.fileio import sha256_file, write_json

    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ConfigError(f"--pick writes a JSON deploy profile; expected a .json path, received {path}.")
    artifact = Path(choice.row.artifact)
    if not artifact.is_file() or (choice.row.sha256 and sha256_file(artifact) != choice.row.sha256):
        raise ModelError(f"{artifact} is missing or changed while it was being measured; run bench --pick again.")
    return write_json(path, profile_dict(choice, report, artifact, path))
