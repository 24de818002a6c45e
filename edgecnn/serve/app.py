"""The routes of ``edgecnn serve``: :func:`build_app` assembles them over a model and, optionally, a station.

=====================  =====================================================================================
``GET /``              the live view (static HTML + JS from this package; no build step, no CDN)
``GET /api/status``    JSON the page polls: sources, recent decisions, model, /predict figures, health
``GET /stream/NAME``   the source's annotated MJPEG stream (``multipart/x-mixed-replace``)
``GET /snapshot/NAME`` its newest annotated JPEG
``POST /predict``      classify image bytes, multipart files, or a JSON list of allowed paths (batched)
``GET /metrics``       Prometheus text
``GET /healthz``       the process is alive (no token needed)
``GET /readyz``        model loaded, every source delivering, every output reachable (503 + what is wrong)
=====================  =====================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.serve.config import ServeConfig
from edgecnn.serve.handle import ModelIdentity
from edgecnn.serve.http import HTTPError, read_body

STATIC = Path(__file__).with_name("static")


def mask(text: str) -> str:
    """Credentials in a name or message hidden (:func:`edgecnn.masking.mask_secrets`, the one masking)."""
    from edgecnn.masking import mask_secrets

    return mask_secrets(text)


@dataclass
class ServeState:
    """What the routes share."""

    config: ServeConfig
    classifier: Any
    identity: ModelIdentity
    station: Any = None
    batcher: Any = None
    live: Any = None
    metrics: Any = None
    started_at: float = field(default_factory=time.time)
    in_progress: int = 0
    served: int = 0


def build_app(classifier: Any, config: ServeConfig, identity: ModelIdentity, station: Any = None) -> tuple[Any, ServeState]:
    """The Starlette app and its state: a batcher over ``classifier``, a live view attached to ``station``.

    Args:
        classifier: The model ``/predict`` runs (None: a station-only server, ``/predict`` answers 503).
        config: Listening, batching and safety options.
        identity: The model's identity (page, ``/metrics``).
        station: A :class:`~edgecnn.serve.handle.StationHandle` or None (then the live view shows no sources).
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from edgecnn.serve.batching import Batcher
    from edgecnn.serve.config import is_loopback
    from edgecnn.serve.http import BearerAuth, LoopbackHosts, error_handlers, login_routes
    from edgecnn.serve.live import LiveView
    from edgecnn.serve.metrics import Metrics

    state = ServeState(config=config, classifier=classifier, identity=identity, station=station)

    def extra() -> dict[str, float]:
        viewers = sum(v.viewers for v in list(state.live.sources.values())) if state.live else 0
        return {"edgecnn_up": 1.0, "edgecnn_predict_in_progress": float(state.in_progress),
                "edgecnn_predict_queue_depth": float(state.batcher.queue_depth if state.batcher else 0),
                "edgecnn_live_viewers": float(viewers)}

    def counters() -> dict[str, float]:
        live = state.live
        return {"edgecnn_live_jpegs_sent": float(live.sent if live else 0),
                "edgecnn_live_jpegs_skipped": float(live.skipped if live else 0)}

    state.metrics = Metrics(identity, station, extra, mask, counters)
    state.live = LiveView(config.jpeg_quality, config.stream_fps, config.decisions, on_event=state.metrics.on_event,
                          mask=mask)
    if classifier is not None:
        state.batcher = Batcher(classifier, config.max_batch, config.max_delay_ms, config.max_queue,
                                on_batch=state.metrics.on_batch)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        state.live.bind_loop(asyncio.get_running_loop())
        if state.batcher is not None:
            state.batcher.start()
        if station is not None:
            station.add_observer(state.live)
        try:
            yield
        finally:
            if station is not None:
                station.remove_observer(state.live)
            state.live.close()
            if state.batcher is not None:
                state.batcher.stop()

    r = _Routes(state)
    routes = [
        Route("/", r.page), Route("/app.js", r.script), Route("/api/status", r.status),
        Route("/stream/{name:path}", r.stream), Route("/snapshot/{name:path}", r.snapshot),
        Route("/predict", r.predict, methods=["POST"]), Route("/metrics", r.metrics_text),
        Route("/healthz", r.healthz), Route("/readyz", r.readyz), *login_routes(config.token),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=error_handlers(),
                    middleware=[Middleware(LoopbackHosts, enabled=config.token is None and is_loopback(config.host)),
                                Middleware(BearerAuth, token=config.token)])
    app.state.serve = state
    return app, state


class _Routes:
    def __init__(self, state: ServeState) -> None:
        self.s = state

    # ------------------------------------------------------------------ pages
    async def page(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse

        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                            headers={"Cache-Control": "no-store"})

    async def script(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response((STATIC / "app.js").read_bytes(), media_type="text/javascript",
                        headers={"Cache-Control": "no-store"})

    def _source_names(self) -> list[str]:
        names = [v for v in self.s.live.sources]
        if self.s.station is not None:
            with contextlib.suppress(Exception):
                names = list(dict.fromkeys([mask(h.name) for h in self.s.station.sources()] + names))
        return names

    async def status(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        live = self.s.live.status()
        health = {mask(h.name): {**h.to_json(), "name": mask(h.name), "error": mask(h.error)}
                  for h in self._health_sources()}
        sources = []
        for view in live["sources"]:
            h = health.pop(view["name"], None)
            sources.append({**view, **({"health": h} if h else {})})
        sources += [{"name": n, "frames": 0, "health": h} for n, h in health.items()]
        b = self.s.batcher
        ready, problems = self._readiness()
        return JSONResponse({
            "model": self.s.identity.to_json(), "sources": sources, "decisions": live["decisions"],
            "outputs": [{**o.to_json(), "name": mask(o.name), "last_error": mask(o.last_error)}
                        for o in self._outputs()],
            "predict": {"enabled": b is not None, "max_batch": b.max_batch if b else 0,
                        "queue_depth": b.queue_depth if b else 0, "batches": b.stats.batches if b else 0,
                        "images": b.stats.images if b else 0, "requests": self.s.served,
                        "mean_batch": round(b.stats.images / b.stats.batches, 2) if b and b.stats.batches else 0},
            "ready": ready, "problems": problems, "uptime_s": round(time.time() - self.s.started_at, 1),
        }, headers={"Cache-Control": "no-store"})

    async def stream(self, request: Any) -> Any:
        from starlette.responses import StreamingResponse

        name = self._known(request.path_params["name"])
        return StreamingResponse(self.s.live.mjpeg(name),
                                 media_type="multipart/x-mixed-replace; boundary=" + _boundary(),
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def snapshot(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        name = self._known(request.path_params["name"])
        jpeg = await run_in_threadpool(self.s.live.snapshot, name)
        if jpeg is None:
            raise HTTPError(503, "no_frame", f"Expected a frame of source {name!r}; none has arrived yet.")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def _known(self, name: str) -> str:
        names = self._source_names()
        if name not in names:
            raise HTTPError(404, "not_found", f"Expected a source name, one of {names}; received {mask(name)!r}.")
        return name

    # ------------------------------------------------------------------ predict
    async def predict(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        s = self.s
        t0 = time.perf_counter()
        code = 200
        if s.in_progress >= s.config.max_pending:
            s.metrics.requests.labels("429").inc()
            raise HTTPError(429, "too_many_requests", f"Expected at most {s.config.max_pending} requests in progress "
                                                      "(--max-pending); received one more. Retry shortly.",
                            {"Retry-After": "1"})
        s.in_progress += 1
        if s.batcher is not None:
            s.batcher.incoming(+1)
        incoming = s.batcher is not None
        try:
            if s.batcher is None:
                raise HTTPError(503, "unavailable", "This server runs a station without a model to serve /predict.")
            topk, threshold = self._query(request)
            payload = await self._payload(request)
            from starlette.concurrency import run_in_threadpool

            tensors, names = await run_in_threadpool(self._prepare, payload.images)
            s.batcher.incoming(-1)
            incoming = False
            from edgecnn.serve.batching import Busy

            try:
                future = s.batcher.submit(tensors, names, topk, threshold)
            except Busy as exc:
                raise HTTPError(503, "busy", f"Expected a free place in the inference queue; the server is busy "
                                             f"({exc}). Retry shortly.", {"Retry-After": "1"}) from None
            preds = await asyncio.wrap_future(future)
            s.served += 1
            s.metrics.request_latency.observe(time.perf_counter() - t0)
            docs = [p.to_dict() for p in preds]
            body = {"predictions": docs, "model_sha256": s.identity.sha256} if payload.many else docs[0]
            return JSONResponse(body)
        except HTTPError as exc:
            code = exc.status
            raise
        except Exception:
            code = 500
            raise
        finally:
            if incoming:
                s.batcher.incoming(-1)
            s.in_progress -= 1
            s.metrics.requests.labels(str(code)).inc()

    def _query(self, request: Any) -> tuple[int, float]:
        q = request.query_params
        try:
            topk = int(q.get("topk", self.s.config.topk))
            threshold = float(q.get("threshold", self.s.config.threshold))
        except ValueError:
            raise HTTPError(400, "bad_request", f"Expected topk an integer and threshold a number; received "
                                                f"topk={q.get('topk')!r}, threshold={q.get('threshold')!r}.") from None
        if topk < 1 or not 0.0 <= threshold <= 1.0:
            raise HTTPError(400, "bad_request", f"Expected topk >= 1 and threshold in 0..1; received topk={topk}, "
                                                f"threshold={threshold}.")
        return topk, threshold

    async def _payload(self, request: Any) -> Any:
        from edgecnn.serve import inputs

        c = self.s.config
        ctype = inputs.media_type(request.headers.get("content-type"))
        if ctype.startswith("image/") or ctype in inputs.RAW_TYPES:
            return inputs.Payload([(await read_body(request, c.max_body_bytes), "<bytes>")], False)
        if ctype == "multipart/form-data":
            from starlette.formparsers import MultiPartException, MultiPartParser

            body = await read_body(request, c.max_body_bytes)

            async def once() -> Any:
                yield body

            try:
                form = await MultiPartParser(request.headers, once(), max_files=c.max_images, max_fields=100,
                                             max_part_size=c.max_body_bytes).parse()
            except MultiPartException as exc:
                raise HTTPError(400, "bad_request", f"Expected a valid multipart/form-data body; received one that "
                                                    f"does not parse ({exc.message}).") from None
            try:
                return inputs.multipart_files(form, c.max_images)
            finally:
                await form.close()
        if ctype == "application/json":
            body = await read_body(request, 1024 * 1024)
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(inputs.json_paths, body, c.allow_dirs, c.max_body_bytes, c.max_images)
        raise HTTPError(415, "unsupported_media_type", f"Expected Content-Type {inputs.ACCEPTED}; received "
                                                       f"{ctype or 'none'!r}.")

    def _prepare(self, images: list[tuple[bytes, str]]) -> tuple[list[Any], list[str]]:
        from edgecnn.serve.inputs import decode

        backend = self.s.classifier.backend
        return [backend.preprocess(decode(data, name)) for data, name in images], [n for _, n in images]

    # ------------------------------------------------------------------ metrics and health
    async def metrics_text(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        text, ctype = await run_in_threadpool(self.s.metrics.render)
        return Response(text, headers={"Content-Type": ctype})

    async def healthz(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "alive", "uptime_s": round(time.time() - self.s.started_at, 1)})

    def _health_sources(self) -> list[Any]:
        if self.s.station is None:
            return []
        try:
            return [h for h in self.s.station.sources()]
        except Exception:  # noqa: BLE001
            return []

    def _outputs(self) -> list[Any]:
        if self.s.station is None:
            return []
        try:
            return list(self.s.station.outputs())
        except Exception:  # noqa: BLE001
            return []

    def _readiness(self) -> tuple[bool, list[dict[str, str]]]:
        problems: list[dict[str, str]] = []
        s = self.s
        if s.classifier is None and s.station is None:
            problems.append({"check": "model", "name": s.identity.name, "problem": "no model loaded"})
        if s.station is not None:
            try:
                sources = list(s.station.sources())
            except Exception as exc:  # noqa: BLE001
                sources = []
                problems.append({"check": "station", "name": "engine", "problem": mask(f"cannot be read: {exc}")})
            now = time.time()
            for h in sources:
                name = mask(h.name)
                if not h.connected:
                    why = f"not connected{': ' + mask(h.error) if h.error else ''}"
                    problems.append({"check": "source", "name": name, "problem": why})
                elif not h.last_frame_at:
                    problems.append({"check": "source", "name": name, "problem": "no frame yet"})
                elif now - h.last_frame_at > s.config.stale_after_s:
                    problems.append({"check": "source", "name": name, "problem": f"no frame for "
                                     f"{now - h.last_frame_at:.1f} s (stale after {s.config.stale_after_s:g} s)"})
            for o in self._outputs():
                if not o.connected:
                    detail = f": {mask(o.last_error)}" if o.last_error else ""
                    problems.append({"check": "output", "name": mask(o.name), "problem": f"unreachable{detail}"})
        return not problems, problems

    async def readyz(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        ready, problems = self._readiness()
        return JSONResponse({"ready": ready, "model": self.s.identity.name, "problems": problems},
                            status_code=200 if ready else 503)


def _boundary() -> str:
    from edgecnn.serve.live import BOUNDARY

    return BOUNDARY


__all__ = ["ServeState", "build_app", "mask"]
