"""The benchmark report: one row per (artifact, threads, batch), system facts, settings, gates.

Serialized as JSON with a versioned ``schema`` (:data:`SCHEMA`); :func:`load_report` validates what it
reads so ``edgecnn bench compare`` fails with one clear line on a file that is not a bench report.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgecnn.bench.measure import LatencyStats
from edgecnn.errors import DataError
from edgecnn.fileio import MB

SCHEMA = "edgecnn.bench/1"
SCHEMA_PREFIX = "edgecnn.bench/"
SCHEMA_MAJOR = 1

#: Row states. ``skipped``: the combination cannot run (e.g. batch 8 on a fixed-batch model).
STATUSES = ("ok", "error", "skipped")


@dataclass
class BenchResult:
    """One row of a benchmark: an artifact run with one backend, thread count and batch size."""

    artifact: str
    file: str
    format: str
    precision: str
    backend: str
    threads: int | None
    batch: int
    status: str = "ok"
    error: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    model_id: str | None = None  # the source model's sha256 from the card's provenance (same for all exports)
    model_name: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    delegate: str | None = None
    provider: str | None = None
    node_providers: dict[str, int] | None = None  # ONNX Runtime on a GPU provider: {provider: nodes it ran}
    init_ms: float | None = None
    first_ms: float | None = None
    # Starts of the model (issue 12): cold = built from scratch, warm = with the init cache filled
    # (ONNX Runtime's saved optimized model); see edgecnn.bench.runner.measure_starts.
    init_cold_ms: float | None = None
    first_cold_ms: float | None = None
    init_warm_ms: float | None = None
    first_warm_ms: float | None = None
    init_cache: str | None = None  # the warm start's cache: "hit", "off" (no cache for this backend), ...
    warmup_runs: int | None = None
    wall_seconds: float | None = None
    capped: bool = False
    latency: LatencyStats | None = None
    inferences_per_s: float | None = None
    images_per_s: float | None = None
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None
    rss_growth_mb: float | None = None
    rss_peak_mb: float | None = None
    accuracy: float | None = None
    accuracy_images: int | None = None
    decode_ms: float | None = None
    preprocess_ms: float | None = None  # decode + resize/colour per image (host side, outside the model)
    end_to_end_ms: float | None = None  # preprocess_ms + p50 / batch: what a user feels per image
    samples_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.latency is not None

    @property
    def size_mb(self) -> float | None:
        return self.size_bytes / MB if self.size_bytes is not None else None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity of a row across devices: file, backend, threads, batch."""
        return (self.file, self.backend, "auto" if self.threads is None else str(self.threads), str(self.batch))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        lat = kwargs.get("latency")
        if lat is not None:
            kwargs["latency"] = LatencyStats(**lat)
        return cls(**kwargs)


@dataclass
class BenchReport:
    """A whole ``edgecnn bench`` run."""

    label: str
    system: dict[str, Any]
    settings: dict[str, Any]
    results: list[BenchResult]
    gates: dict[str, Any] = field(default_factory=dict)
    gate_failures: list[str] = field(default_factory=list)
    schema: str = SCHEMA
    partial: str | None = None  # "SIGINT"/"SIGTERM": the bench was stopped; only the rows measured so far
    files: list[Path] = field(default_factory=list, repr=False)  # report files this run wrote (not serialized)
    pick: Any = field(default=None, repr=False)  # with --pick: the chosen row and why (edgecnn.bench.pick.Pick)
    profile: Path | None = field(default=None, repr=False)  # with --pick: the deploy profile written

    @property
    def ok_results(self) -> list[BenchResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed_results(self) -> list[BenchResult]:
        return [r for r in self.results if r.status == "error"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "label": self.label,
            "system": self.system,
            "settings": self.settings,
            "gates": self.gates,
            "gate_failures": self.gate_failures,
            "partial": self.partial,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "report") -> BenchReport:
        """Validate and build a report.

        Raises:
            DataError: not a bench report, an unsupported schema version, or malformed fields.
        """
        if not isinstance(data, dict):
            raise DataError(f"{source}: expected a JSON object (an edgecnn bench report); received {type(data).__name__}.")
        schema = data.get("schema")
        if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
            raise DataError(
                f"{source} is not an edgecnn bench report: expected schema {SCHEMA!r}, received {schema!r}. "
                "Write one with `edgecnn bench MODEL --report FILE.json`."
            )
        try:
            major = int(schema[len(SCHEMA_PREFIX) :].split(".")[0])
        except ValueError:
            major = -1
        if major != SCHEMA_MAJOR:
            raise DataError(f"{source} has schema {schema!r}; this edgecnn reads {SCHEMA!r}. Upgrade edgecnn or re-run bench.")
        problems = []
        for key, typ in (("label", str), ("system", dict), ("settings", dict), ("results", list)):
            if not isinstance(data.get(key), typ):
                problems.append(f"{key} must be {typ.__name__}")
        if problems:
            raise DataError(f"{source} is a malformed bench report: {'; '.join(problems)}.")
        results = []
        for i, row in enumerate(data["results"]):
            if not isinstance(row, dict):
                raise DataError(f"{source}: results[{i}] must be an object.")
            missing = [k for k in ("artifact", "file", "format", "precision", "backend", "batch", "status") if k not in row]
            if missing:
                raise DataError(f"{source}: results[{i}] lacks {missing}.")
            if row["status"] not in STATUSES:
                raise DataError(f"{source}: results[{i}].status must be one of {STATUSES}; received {row['status']!r}.")
            try:
                result = BenchResult.from_dict(row)
            except TypeError as exc:
                raise DataError(f"{source}: results[{i}] is malformed ({exc}).") from exc
            if result.status == "ok" and result.latency is None:
                raise DataError(f"{source}: results[{i}] is 'ok' but has no latency figures.")
            results.append(result)
        return cls(
            label=data["label"],
            system=data["system"],
            settings=data["settings"],
            results=results,
            gates=dict(data.get("gates") or {}),
            gate_failures=list(data.get("gate_failures") or []),
            schema=schema,
            partial=str(data["partial"]) if data.get("partial") else None,
        )

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Atomically write the report as JSON."""
        from edgecnn.fileio import write_json

        return write_json(path, self.to_dict())


def load_report(path: str | os.PathLike[str]) -> BenchReport:
    """Read and validate a JSON bench report.

    Raises:
        DataError: missing file, invalid JSON, or not a valid bench report.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"Bench report not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{p} is not valid JSON ({exc}); expected a report written by `edgecnn bench --report`.") from exc
    return BenchReport.from_dict(data, source=str(p))
