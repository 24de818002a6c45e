"""The station engine: many named sources and their regions in one process, one batch, decisions, outputs.

Each source runs on its own reader thread (:class:`SourceReader`) over the runtime's sources (live ones keep the
newest frame and reconnect as ``edgecnn run`` does; a file is read as fast as the engine takes it, every frame
classified, unless the source sets ``fps``: then a video is paced like a camera). The reader crops the source's
regions and resizes each to the model's input on its own thread, then leaves the newest frame in its slot; a frame
the engine had not taken yet is counted as dropped (a file's reader waits instead). The engine's loop
takes every ready slot, classifies all their regions in one batch (split to the model's fixed batch where it has
one), applies the rules (:mod:`edgecnn.station.rules`), and hands out what came of it: rows to the sinks, a
:class:`~edgecnn.station.events.FrameEvent` to every observer, each emitted decision and each alarm to every
output. A source that stalls or drops only empties its own slot: the loop never waits on one source.

>>> from edgecnn.station.plan import resolve
>>> summary = run_station(resolve(station="station.toml"))

:class:`Station` is also the handle ``edgecnn serve`` reads (sources' health, outputs' counters, the model).
The reader of each source is :mod:`edgecnn.station.reader`.
"""

from __future__ import annotations

import inspect
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecnn.console import info, warn
from edgecnn.errors import ConfigError, EdgeCNNError
from edgecnn.station.events import (
    STATION,
    WHOLE_FRAME,
    Alarm,
    Decision,
    FrameEvent,
    Observer,
    Output,
    OutputStats,
    RegionPrediction,
)
from edgecnn.station.reader import STALL_S, Ready, SourceReader

if TYPE_CHECKING:
    from edgecnn.runtime.backends import Backend
    from edgecnn.station.plan import Plan


@dataclass
class StationSummary:
    """What a station run did (printed by the CLI like a run's summary)."""

    name: str
    model: str
    elapsed_s: float = 0.0
    frames: int = 0
    batches: int = 0
    decisions: int = 0
    alarms: int = 0
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: list[OutputStats] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    #: ``""`` when the percentiles cover every decision, else ``" of the last N"``
    latency_scope: str = ""
    stopped_by: str = "end"
    last_seq: int = 0

    def lines(self) -> list[str]:
        out = [f"Station {self.name}: model {self.model}; {self.frames} frames in {self.batches} batches over "
               f"{self.elapsed_s:.1f}s; {self.decisions} decisions (last #{self.last_seq}), {self.alarms} alarms; "
               f"capture to decision{self.latency_scope} p50 {self.latency_p50_ms:.1f} ms p99 "
               f"{self.latency_p99_ms:.1f} ms"]
        for name, s in self.sources.items():
            line = (f"  source {name}: {s['frames']} frames, {s['fps']:.1f} fps, {s['dropped']} dropped, "
                    f"{s['reconnects']} reconnects")
            out.append(line + (f"; {s['error']}" if s["error"] else ""))
        for o in self.outputs:
            out.append(f"  output {o.name} ({o.kind}): {'connected' if o.connected else 'not connected'}, {o.sent} "
                       f"sent, {o.errors} errors, {o.dropped} dropped" + (f", {o.spool_depth} spooled"
                                                                          if o.spool_depth else "")
                       + (f", {o.spool_dropped} refused by a full spool" if getattr(o, "spool_dropped", 0) else "")
                       + (f", {o.retries} retries" if getattr(o, "retries", 0) else "")
                       + (f"; {o.last_error}" if o.last_error else ""))
        if self.stopped_by != "end":
            out.append(f"Stopped by {self.stopped_by}.")
        if self.rows:
            out.append("Rows saved to " + ", ".join(self.rows))
        return out

    def failure(self) -> str | None:
        if self.frames == 0 and self.stopped_by == "end":
            errors = "; ".join(s["error"] for s in self.sources.values() if s["error"])
            return f"Nothing was classified: no source delivered a frame{': ' + errors if errors else ''}."
        return None

    @property
    def exit_code(self) -> int:
        return {"SIGTERM": 143, "SIGINT": 130}.get(self.stopped_by, 1 if self.failure() else 0)


def _call(factory: Any, config: Any, **kwargs: Any) -> Any:
    """``factory(config, **kwargs)`` with the keyword arguments it takes (kinds differ in the extras they accept)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(config, **kwargs)
    return factory(config, **{k: v for k, v in kwargs.items() if k in params})


class Station:
    """A running station: readers, the model, rules, sinks, observers and outputs (see the module's docstring).

    Use :func:`run_station`, or ``with Station(plan) as st: st.run()``; ``stop()`` ends it from any thread.
    """

    def __init__(self, plan: Plan, stall_s: float = STALL_S) -> None:
        self.plan = plan
        self.stall_s = stall_s
        self.options = plan.run_options()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self.stop_reason = ""
        self._alarms: queue.SimpleQueue[Alarm] = queue.SimpleQueue()
        self._observers: list[Observer] = []
        self._outs: list[Output] = []
        self.readers: list[SourceReader] = []
        self.backend: Backend | None = None
        self.rules: Any = None
        self.sequence: Any = None
        self.sinks: list[Any] = []
        self.model_sha256 = ""
        from edgecnn.runtime.pipeline import LatencyWindow

        self._latencies = LatencyWindow()  # bounded: a station runs for months
        self._down: set[str] = set()
        self.summary = StationSummary(name=plan.name, model=str(self.options.model))

    # ------------------------------------------------------------------ the handle edgecnn serve reads
    def sources(self) -> list[Any]:
        from edgecnn.serve.handle import SourceHealth

        return [SourceHealth(name=r.name, connected=r.connected and not r.done, fps=r.fps,
                             last_frame_at=r.last_frame_at, frames=r.frames, dropped=r.total_dropped,
                             reconnects=r.reconnects, queue_depth=int(r.slot is not None), error=r.error)
                for r in self.readers]

    def outputs(self) -> list[OutputStats]:
        """Counters of every output (``connected`` False: unreachable now)."""
        out = []
        for o in self._outs:
            try:
                out.append(o.stats())
            except Exception as exc:  # noqa: BLE001  (a broken output's counters must not break a page)
                out.append(OutputStats(name=o.name, kind=o.kind, last_error=str(exc)))
        return out

    def model(self) -> Any:
        from edgecnn.serve.handle import ModelIdentity

        b = self.backend
        card = b.card if b is not None else None
        return ModelIdentity(name=str(getattr(card, "name", "") or Path(str(self.options.model)).stem),
                             sha256=self.model_sha256, backend=str((b.info() if b else {}).get("runtime", "")),
                             labels=tuple(b.labels) if b else ())

    def observer_metrics(self) -> list[tuple[str, dict[str, str], float, str]]:
        """(name, labels, value, help) of every observer that reports figures (the drift monitor, capture) for
        ``/metrics``; an observer whose ``metrics()`` fails is left out."""
        out: list[tuple[str, dict[str, str], float, str]] = []
        for obs in self._observers:
            fn = getattr(obs, "metrics", None)
            if callable(fn):
                try:
                    out.extend(fn())
                except Exception:  # noqa: BLE001  (a scrape never fails because a monitor hiccups)
                    pass
        return out

    def add_observer(self, observer: Observer) -> None:
        self._observers = [*self._observers, observer]

    def remove_observer(self, observer: Observer) -> None:
        self._observers = [o for o in self._observers if o is not observer]

    def raise_alarm(self, alarm: Alarm) -> None:
        """Queue an alarm (any thread); the engine's loop writes it and hands it to every output."""
        self._alarms.put(alarm)

    # ------------------------------------------------------------------ start, run, stop
    def start(self) -> None:
        """Load the model, open the state, sinks, outputs and observers, then start every reader.

        Raises:
            EdgeCNNError: a bad model, an unwritable row file, an output that cannot start (unless the plan
                starts offline), a region outside the frame a source states.
        """
        from edgecnn.fileio import sha256_file
        from edgecnn.runtime.backends import load_backend
        from edgecnn.runtime.options import check_run_outputs
        from edgecnn.station.rules import Rules, Sequence

        o, plan = self.options, self.plan
        check_run_outputs(o)
        from edgecnn.runtime.options import conventions_of

        self.backend = load_backend(o.model, backend=o.backend or "auto", threads=o.threads, delegate=o.delegate,
                                    delegate_options=o.delegate_options, providers=o.providers, unsafe=o.unsafe,
                                    conventions=conventions_of(o))
        model_file = Path(o.model)
        self.model_sha256 = sha256_file(model_file) if model_file.is_file() else ""
        labels = list(self.backend.labels)
        unknown = sorted({*plan.rules.reject, *plan.rules.thresholds} - set(labels))
        if unknown:
            raise ConfigError(f"{plan.station_file}: rules: expected labels of the model {labels}; received "
                              f"{unknown} (in reject or thresholds).")
        state = Path(plan.state_dir or f"{plan.name}.state")
        state.mkdir(parents=True, exist_ok=True)
        self.sequence = Sequence(state)
        regions = tuple((s.name, r.name) for s in plan.sources for r in (s.regions or ()))
        regions += tuple((s.name, WHOLE_FRAME) for s in plan.sources if not s.regions)
        self.rules = Rules(plan.rules, self.sequence, self.model_sha256, regions)
        self._open_sinks()
        common = {"station": plan.name, "labels": labels, "model_sha256": self.model_sha256}
        try:
            self._start_outputs(common, state)
            self._start_observers(common, state)
        except BaseException:
            self.close()
            raise
        keep = True  # observers may ask for pixels; a frame's image is shared, never copied
        self.readers = [SourceReader(s, self.backend, o, self._wake, keep) for s in plan.sources]
        for r in self.readers:
            r.start()
        def count(n: int, what: str) -> str:
            return f"{n} {what}{'s' * (n != 1)}"

        info(f"Station {plan.name}: {count(len(self.readers), 'source')} "
             f"({', '.join(r.describe() for r in self.readers)}), {count(len(regions), 'region')}, "
             f"{count(len(self._outs), 'output')}, model {model_file.name} "
             f"(max batch {self.backend.max_batch or 'any'})")

    def _open_sinks(self) -> None:
        from edgecnn.station.rows import StationParquetWriter, StationRowWriter

        o = self.options
        for path, fmt in ((o.save_csv, "csv"), (o.save_jsonl, "jsonl")):
            if path:
                self.sinks.append(StationRowWriter(path, fmt))
                self.summary.rows.append(str(path))
        if o.save_parquet:
            self.sinks.append(StationParquetWriter(o.save_parquet))
            self.summary.rows.append(str(o.save_parquet))

    def _start_outputs(self, common: dict[str, Any], state: Path) -> None:
        from edgecnn.station.schema import output_module

        for cfg in self.plan.outputs:
            module = output_module(cfg.kind)
            out = _call(module.create, cfg.config, **common, state_dir=state / cfg.name, name=cfg.name,
                        start_offline=self.plan.start_offline)
            self._outs.append(out)
            try:
                out.start()
            except EdgeCNNError as exc:
                if not self.plan.start_offline:
                    raise EdgeCNNError(f"outputs.{cfg.name}: {exc} (give --start-offline to start anyway)") from None
                warn(f"outputs.{cfg.name}: {exc}; starting offline.")

    def _start_observers(self, common: dict[str, Any], state: Path) -> None:
        from edgecnn.station.schema import OBSERVERS, load_target

        for name, config in self.plan.sections.items():
            target = OBSERVERS.get(name)
            if target is None or not getattr(config, "enabled", True):
                continue
            factory = load_target(target)
            observer = _call(factory, config, **common, state_dir=state / name, raise_alarm=self.raise_alarm,
                             card=self.backend.card if self.backend else None)
            self.add_observer(observer)

    def stop(self, reason: str = "stop()") -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()
        with self._wake:
            self._wake.notify_all()

    def run(self) -> StationSummary:
        """Process frames until every source ended, ``duration``/``max_frames`` is reached, or :meth:`stop`."""
        o = self.options
        t0 = time.perf_counter()
        deadline = t0 + o.duration if o.duration else None
        previous = self._install_signals()
        try:
            while not self._stop.is_set():
                with self._wake:
                    ready = [(r, r.take()) for r in self.readers]
                    ready = [(r, x) for r, x in ready if x is not None]
                    if ready:
                        self._wake.notify_all()  # readers of files wait for their slot to empty
                    if not ready:
                        fatal = next((r.fatal for r in self.readers if r.fatal), None)
                        if fatal is not None:
                            raise fatal
                        if all(r.done for r in self.readers):
                            break
                        self._wake.wait(0.05)
                self._health()
                self._drain_alarms()
                if ready:
                    self._process(ready)
                if deadline and time.perf_counter() >= deadline:
                    self.stop("duration")
                if o.max_frames and self.summary.frames >= o.max_frames:
                    self.stop("max_frames")
        except KeyboardInterrupt:
            self.stop("SIGINT")
        finally:
            self._restore_signals(previous)
            self.summary.elapsed_s = time.perf_counter() - t0
        if self.stop_reason in ("SIGINT", "SIGTERM"):
            self.summary.stopped_by = self.stop_reason
        elif self.stop_reason not in ("", "duration", "max_frames", "stop()"):
            self.summary.stopped_by = self.stop_reason
        return self.summary

    def _process(self, ready: list[tuple[SourceReader, Ready]]) -> None:
        assert self.backend is not None
        tensors = [t for _, x in ready for t in x.tensors]
        probs = self.backend.predict(np.stack(tensors))
        self.summary.batches += 1
        labels = self.backend.labels
        k = min(self.options.topk, len(labels))
        now = time.time()
        i = 0
        for reader, x in ready:
            preds = []
            for region in x.regions:
                p = probs[i]
                i += 1
                order = np.argsort(-p, kind="stable")[:k]
                top = int(order[0])
                preds.append(RegionPrediction(
                    source=reader.name, region=region.name, frame=x.frame, captured_at=x.captured_at,
                    label=labels[top], score=float(p[top]), topk=tuple((labels[j], float(p[j])) for j in order),
                    class_index=top, latency_ms=max(0.0, (now - x.captured_at) * 1000.0), probs=p))
            decisions = self.rules.decide(preds, time.time())
            self.summary.frames += 1
            self._emit(reader, x, preds, decisions)
        self.sequence.save(time.time())

    def _emit(self, reader: SourceReader, x: Ready, preds: list[RegionPrediction], decisions: list[Decision]) -> None:
        from edgecnn.station.rows import Row

        for sink in self.sinks:
            for p in preds:
                sink.write(Row.prediction(p))
            for d in decisions:
                sink.write(Row.decision(d))
        for d in decisions:
            self.summary.decisions += 1
            self.summary.last_seq = d.seq
            if d.source != STATION:
                self._latencies.append(d.latency_ms)
            for out in self._outs:
                out.submit(d)
        if self._observers:
            event = FrameEvent(source=reader.name, frame=x.frame, captured_at=x.captured_at, image=x.image,
                               regions=x.regions, predictions=tuple(preds), decisions=tuple(decisions), fps=reader.fps)
            for obs in self._observers:
                try:
                    obs.on_frame(event)
                except Exception as exc:  # noqa: BLE001  (the contract says never raise; a bug must not stop a line)
                    warn(f"observer {type(obs).__name__} failed: {exc}")

    def _health(self) -> None:
        now = time.time()
        for r in self.readers:
            down = bool(r.done and r.error) or (r.captured > 0 and not r.done and now - r.last_frame_at > self.stall_s)
            if down and r.name not in self._down:
                self._down.add(r.name)
                detail = r.error or f"{r.name} delivered no frame for {now - r.last_frame_at:.1f} s"
                self.raise_alarm(Alarm("source_down", r.name, WHOLE_FRAME, True, now - r.last_frame_at, self.stall_s,
                                       detail=detail))
            elif not down and r.name in self._down:
                self._down.discard(r.name)
                self.raise_alarm(Alarm("source_down", r.name, WHOLE_FRAME, False, 0.0, self.stall_s,
                                       detail=f"{r.name} delivers again"))

    def _drain_alarms(self) -> None:
        from edgecnn.station.rows import Row

        while True:
            try:
                alarm = self._alarms.get_nowait()
            except queue.Empty:
                return
            self.summary.alarms += 1
            (warn if alarm.active else info)(f"alarm {alarm.name} {'raised' if alarm.active else 'cleared'} on "
                                             f"{alarm.source}/{alarm.region}: {alarm.detail}")
            for sink in self.sinks:
                sink.write(Row.alarm(alarm))
            for out in self._outs:
                out.alarm(alarm)

    def close(self) -> None:
        """Stop the readers, flush the sinks and outputs, save the sequence number."""
        for r in self.readers:
            r.stop()
        for obs in self._observers:  # first: what they raise while finishing still reaches the rows and outputs
            try:
                obs.close()
            except Exception as exc:  # noqa: BLE001  (one observer's failure must not lose the rows)
                warn(f"observer {type(obs).__name__}: {exc}")
        self._drain_alarms()
        self.summary.outputs = self.outputs()
        for out in self._outs:
            try:
                out.close()
            except Exception as exc:  # noqa: BLE001  (one output's failure to flush must not lose the rows)
                warn(f"output {out.name}: {exc}")
        for sink in self.sinks:
            sink.close()
        self.sinks = []
        if self.sequence is not None:
            self.sequence.close()
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        if self._latencies:
            self.summary.latency_p50_ms, self.summary.latency_p99_ms = self._latencies.percentiles(50, 99)
            self.summary.latency_scope = self._latencies.scope()
        self.summary.sources = {r.name: {"frames": r.frames, "fps": r.frames / max(self.summary.elapsed_s, 1e-9),
                                         "dropped": r.total_dropped, "reconnects": r.reconnects, "error": r.error}
                                for r in self.readers}

    def __enter__(self) -> Station:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _install_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, _frame: Any) -> None:
            self.stop("SIGTERM")

        return signal.signal(signal.SIGTERM, handler)

    @staticmethod
    def _restore_signals(previous: Any) -> None:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def run_station(plan: Plan) -> StationSummary:
    """Run a station plan to its end (sources ended, ``duration``, ``max_frames``, SIGINT/SIGTERM).

    Raises:
        EdgeCNNError: what :meth:`Station.start` refuses; a region outside the frame a source delivers.
    """
    if not plan.is_station:
        raise ConfigError("Expected a station plan (a station file with [[sources]]); received a plain run.")
    station = Station(plan)
    station.start()
    served = None
    try:
        if "serve" in plan.sections:
            served = serve_station(station)
        return station.run()
    finally:
        if served is not None:
            served.close()
        station.close()


def serve_station(station: Station) -> Any:
    """Start ``edgecnn serve`` for a running station from its ``[serve]`` section (live view, ``/metrics``,
    ``/healthz``, ``/predict``); the caller closes what it returns."""
    from edgecnn.serve.server import open_server

    o = station.options
    served = open_server(o.model, station.plan.sections["serve"], backend=o.backend or "auto", threads=o.threads,
                         providers=o.providers, station=station).start()
    info(f"Station {station.plan.name} serves {served.url}")
    return served


__all__ = ["STALL_S", "SourceReader", "Station", "StationSummary", "run_station", "serve_station"]
