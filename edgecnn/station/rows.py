"""The station's rows: one per region per processed frame, one per decision, one per alarm, in the run's sinks.

They go through the same writers as ``edgecnn run``'s rows (:class:`~edgecnn.runtime.sinks.RowWriter` for CSV and
JSONL: appended whole, a restart keeps earlier rows; :class:`~edgecnn.runtime.sinks.ParquetWriter` renamed into
place), with the station's columns: which source and region, the capture time, the capture-to-decision latency,
and for decisions the verdict and the station-wide sequence number.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from edgecnn.runtime.sinks import ParquetWriter, RowWriter
from edgecnn.station.events import Alarm, Decision, RegionPrediction

#: Row kinds.
PREDICTION, DECISION, ALARM = "prediction", "decision", "alarm"
COLUMNS = ("time_utc", "kind", "source", "region", "frame", "captured_utc", "label", "score", "topk", "verdict", "seq",
           "votes", "window", "reject", "latched", "status", "error", "latency_ms")


def _utc(t: float | None) -> str:
    if not t:
        return ""
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _score(x: float) -> float | None:
    return round(float(x), 6) if x is not None and math.isfinite(float(x)) else None


class Row:
    """One station row (what :class:`RowWriter` and :class:`ParquetWriter` take: ``row()``)."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def row(self) -> dict[str, Any]:
        return dict(self.data)

    @classmethod
    def prediction(cls, p: RegionPrediction, error: str = "") -> Row:
        return cls({"kind": PREDICTION, "source": p.source, "region": p.region, "frame": p.frame,
                    "captured_utc": _utc(p.captured_at), "label": p.label, "score": _score(p.score),
                    "topk": [[lbl, _score(s)] for lbl, s in p.topk], "verdict": "", "seq": None, "votes": None,
                    "window": None, "reject": None, "latched": None, "status": "skipped" if error else "ok",
                    "error": error, "latency_ms": round(p.latency_ms, 3)})

    @classmethod
    def decision(cls, d: Decision) -> Row:
        return cls({"kind": DECISION, "source": d.source, "region": d.region, "frame": d.frame,
                    "captured_utc": _utc(d.captured_at), "label": d.label, "score": _score(d.score), "topk": [],
                    "verdict": d.verdict, "seq": d.seq, "votes": d.votes, "window": d.window, "reject": d.reject,
                    "latched": d.latched, "status": "ok", "error": "", "latency_ms": round(d.latency_ms, 3)})

    @classmethod
    def alarm(cls, a: Alarm) -> Row:
        return cls({"kind": ALARM, "source": a.source, "region": a.region, "frame": None, "captured_utc": _utc(a.time),
                    "label": a.name, "score": _score(a.value), "topk": [],
                    "verdict": "raised" if a.active else "cleared", "seq": None, "votes": None, "window": None,
                    "reject": None, "latched": None, "status": "ok", "error": a.detail, "latency_ms": None})


class StationRowWriter(RowWriter):
    """CSV/JSONL rows with the station's columns."""

    COLUMNS = COLUMNS
    TEXT = frozenset({"source", "region", "label", "topk", "verdict", "error"})


class StationParquetWriter(ParquetWriter):
    """Parquet rows with the station's columns."""

    def _schema(self, pa: Any) -> Any:
        return pa.schema([
            ("kind", pa.string()), ("source", pa.string()), ("region", pa.string()), ("frame", pa.int64()),
            ("captured_utc", pa.string()), ("label", pa.string()), ("score", pa.float64()),
            ("topk", pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())]))),
            ("verdict", pa.string()), ("seq", pa.int64()), ("votes", pa.int64()), ("window", pa.int64()),
            ("reject", pa.bool_()), ("latched", pa.bool_()), ("status", pa.string()), ("error", pa.string()),
            ("latency_ms", pa.float64()),
        ])


__all__ = ["ALARM", "COLUMNS", "DECISION", "PREDICTION", "Row", "StationParquetWriter", "StationRowWriter"]
