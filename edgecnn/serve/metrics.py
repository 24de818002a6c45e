"""``GET /metrics``: Prometheus text from prometheus-client, on a registry of its own (never the global one).

Counted as frames arrive (:meth:`Metrics.on_event`, on the engine's thread, cheap): frames, decisions by verdict,
capture→prediction and capture→decision latency histograms. Read from the station at scrape time
(:class:`StationCollector`): each source's fps, up, last-frame age, dropped frames, reconnects and queue depth;
each output's up, sent, errors, dropped, queue and spool depth; the ``/predict`` queue depth and live viewers.
The model's identity (name, SHA-256, version, backend) is the ``edgecnn_model`` info metric. ``/predict``
counts requests by status code, their latency and the batch sizes it ran.

Every label value that names a source or output goes through the URL masking, so a stream's password never
reaches a scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgecnn.station.events import FrameEvent

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class StationCollector:
    """Gauges and counters read from a :class:`~edgecnn.serve.handle.StationHandle` when Prometheus scrapes."""

    def __init__(self, station: Any, extra: Callable[[], dict[str, float]], mask: Callable[[str], str]) -> None:
        self.station = station
        self.extra = extra
        self.mask = mask
        self.counters: Callable[[], dict[str, float]] = lambda: {}

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[Any]:
        import time

        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for name, value in self.extra().items():
            g = GaugeMetricFamily(name, _HELP.get(name, name))
            g.add_metric([], value)
            yield g
        for name, value in self.counters().items():
            c = CounterMetricFamily(name, _HELP.get(name, name))
            c.add_metric([], value)
            yield c
        if self.station is None:
            return
        try:
            sources = list(self.station.sources())
            outputs = list(self.station.outputs())
        except Exception:  # noqa: BLE001  (a scrape never fails because the engine hiccups)
            return
        now = time.time()
        fam = {
            "up": GaugeMetricFamily("edgecnn_source_up", "1 while the source is connected and delivering.", labels=["source"]),
            "fps": GaugeMetricFamily("edgecnn_source_fps", "Recent processed frames per second.", labels=["source"]),
            "age": GaugeMetricFamily("edgecnn_source_last_frame_age_seconds", "Seconds since the newest frame "
                                     "(-1 before the first).", labels=["source"]),
            "queue": GaugeMetricFamily("edgecnn_source_queue_depth", "Frames waiting between capture and inference.",
                                       labels=["source"]),
            "dropped": CounterMetricFamily("edgecnn_source_dropped_frames", "Frames dropped to stay current.",
                                           labels=["source"]),
            "reconnects": CounterMetricFamily("edgecnn_source_reconnects", "Reopen attempts of the source.",
                                              labels=["source"]),
        }
        for s in sources:
            lab = [self.mask(s.name)]
            fam["up"].add_metric(lab, 1.0 if s.connected else 0.0)
            fam["fps"].add_metric(lab, float(s.fps))
            fam["age"].add_metric(lab, now - s.last_frame_at if s.last_frame_at else -1.0)
            fam["queue"].add_metric(lab, float(s.queue_depth))
            fam["dropped"].add_metric(lab, float(s.dropped))
            fam["reconnects"].add_metric(lab, float(s.reconnects))
        out = {
            "up": GaugeMetricFamily("edgecnn_output_up", "1 while the output is connected/reachable.",
                                    labels=["output", "kind"]),
            "sent": CounterMetricFamily("edgecnn_output_sent", "Messages delivered.", labels=["output", "kind"]),
            "errors": CounterMetricFamily("edgecnn_output_errors", "Delivery errors.", labels=["output", "kind"]),
            "dropped": CounterMetricFamily("edgecnn_output_dropped", "Messages dropped (bounded queue overflow).",
                                           labels=["output", "kind"]),
            "queue": GaugeMetricFamily("edgecnn_output_queue_depth", "Messages waiting in memory.",
                                       labels=["output", "kind"]),
            "spool": GaugeMetricFamily("edgecnn_output_spool_depth", "Messages waiting in the on-disk spool.",
                                       labels=["output", "kind"]),
        }
        for o in outputs:
            lab = [self.mask(o.name), o.kind]
            out["up"].add_metric(lab, 1.0 if o.connected else 0.0)
            out["sent"].add_metric(lab, float(o.sent))
            out["errors"].add_metric(lab, float(o.errors))
            out["dropped"].add_metric(lab, float(o.dropped))
            out["queue"].add_metric(lab, float(o.queue_depth))
            out["spool"].add_metric(lab, float(o.spool_depth))
        yield from fam.values()
        yield from out.values()
        yield from self._observer_families()

    def _observer_families(self) -> Iterator[Any]:
        """The monitors' figures (drift, health, capture), from ``station.observer_metrics()`` when it has one."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        read = getattr(self.station, "observer_metrics", None)
        if not callable(read):
            return
        try:
            rows = list(read())
        except Exception:  # noqa: BLE001
            return
        families: dict[str, Any] = {}
        for name, labels, value, help_ in rows:
            keys = sorted(labels)
            fam = families.get(name)
            if fam is None:
                if name.endswith("_total"):
                    fam = CounterMetricFamily(name[: -len("_total")], help_, labels=keys)
                else:
                    fam = GaugeMetricFamily(name, help_, labels=keys)
                families[name] = fam
            fam.add_metric([self.mask(labels[k]) if k == "source" else labels[k] for k in keys], value)
        yield from families.values()


_HELP = {
    "edgecnn_predict_queue_depth": "Images waiting for inference in the /predict batcher.",
    "edgecnn_predict_in_progress": "/predict requests being read, decoded or inferred now.",
    "edgecnn_live_viewers": "Live-view MJPEG clients connected.",
    "edgecnn_live_jpegs_sent": "Annotated JPEGs sent to live-view clients.",
    "edgecnn_live_jpegs_skipped": "JPEGs a live-view client missed because it was still reading an older one (each "
                                  "client gets the newest: a slow one drops frames, inference never waits).",
    "edgecnn_up": "1: the process serves (always 1 when scraped).",
}


class Metrics:
    """The server's metrics on its own ``CollectorRegistry`` (:attr:`registry`).

    Args:
        identity: The :class:`~edgecnn.serve.handle.ModelIdentity` of the model (the info metric).
        station: A StationHandle read at scrape time, or None.
        extra: Gauges read at scrape time (name → value): queue depths, viewers.
        mask: Applied to source and output names.
    """

    def __init__(self, identity: Any, station: Any = None, extra: Callable[[], dict[str, float]] | None = None,
                 mask: Callable[[str], str] = str, counters: Callable[[], dict[str, float]] | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, Info

        self.mask = mask
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.frames = Counter("edgecnn_frames", "Frames processed, per source.", ["source"], registry=r)
        self.decisions = Counter("edgecnn_decisions", "Decisions emitted, per source, region and verdict.",
                                 ["source", "region", "verdict"], registry=r)
        self.prediction_latency = Histogram("edgecnn_prediction_latency_seconds", "Capture to prediction.",
                                            ["source"], buckets=LATENCY_BUCKETS, registry=r)
        self.decision_latency = Histogram("edgecnn_decision_latency_seconds", "Capture to decision.", ["source"],
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter("edgecnn_predict_requests", "/predict requests, by HTTP status.", ["code"],
                                registry=r)
        self.request_latency = Histogram("edgecnn_predict_latency_seconds", "/predict request to response "
                                         "(successful ones).", buckets=LATENCY_BUCKETS, registry=r)
        self.images = Counter("edgecnn_predict_images", "Images classified by /predict.", registry=r)
        self.batch_size = Histogram("edgecnn_predict_batch_size", "Images per inference call of /predict.",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.model = Info("edgecnn_model", "The model that answers: name, SHA-256, version, backend.", registry=r)
        self.model.info({"name": identity.name, "sha256": identity.sha256, "version": identity.version or "",
                         "backend": identity.backend or ""})
        collector = StationCollector(station, extra or (lambda: {}), mask)
        if counters is not None:
            collector.counters = counters
        r.register(collector)

    def on_event(self, event: FrameEvent) -> None:
        """Count one frame (engine's thread, via the live view)."""
        src = self.mask(event.source)
        self.frames.labels(src).inc()
        for p in event.predictions:
            if p.latency_ms:
                self.prediction_latency.labels(src).observe(p.latency_ms / 1000.0)
        for d in event.decisions:
            self.decisions.labels(self.mask(d.source), d.region, d.verdict).inc()
            self.decision_latency.labels(self.mask(d.source)).observe(d.latency_ms / 1000.0)

    def on_batch(self, images: int, seconds: float) -> None:
        self.batch_size.observe(images)
        self.images.inc(images)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["Metrics", "StationCollector"]
