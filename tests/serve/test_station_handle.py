"""The server over a station handle with a real output (the station's webhook output, pointed at a dead port):
/readyz, /metrics and /api/status report the unreachable output, and its URL's password never shows."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Forward:
    """An observer that hands each decision to the output, as the station engine does."""

    wants_pixels = False

    def __init__(self, output):
        self.output = output

    def on_frame(self, event):
        for d in event.decisions:
            self.output.submit(d)

    def close(self):
        pass


def test_an_unreachable_output_makes_the_station_not_ready(color_onnx, colour_video):
    webhook = pytest.importorskip("edgecnn.station.outputs.webhook", reason="the station's outputs are not here")
    import edgecnn
    from edgecnn.serve.app import build_app
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.feed import PipelineFeed
    from edgecnn.serve.handle import identity_of
    from edgecnn.serve.http import Server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again: nothing listens there
    # follow every decision: this feed's decisions are per source, and a webhook follows the station verdict by default
    config = webhook.Config(url=f"http://hook:s3cretpw@127.0.0.1:{dead}/x", retries=0, timeout_s=1.0, follow="*")
    clf, second = edgecnn.load(color_onnx), edgecnn.load(color_onnx)
    identity = identity_of(clf.path, clf.card, "onnxruntime")
    output = webhook.WebhookOutput(config, station="line1", labels=clf.labels, model_sha256=identity.sha256)

    class Station(PipelineFeed):
        def outputs(self):
            return [output.stats()]

    station = Station(second, str(colour_video), identity, loop=True, max_fps=20)
    station.add_observer(Forward(output))
    output.start()
    station.start()
    app, state = build_app(clf, ServeConfig(port=0), identity, station)
    server = Server(app, port=0).start()
    try:
        deadline = time.monotonic() + 30
        while output.stats().errors == 0:
            assert time.monotonic() < deadline, "the webhook never failed"
            time.sleep(0.1)
        code, body = get(server.url + "/readyz")
        doc = json.loads(body)
        assert code == 503 and not doc["ready"]
        problem = next(p for p in doc["problems"] if p["check"] == "output")
        assert problem["name"] == "webhook" and problem["problem"].startswith("unreachable")
        _, metrics = get(server.url + "/metrics")
        text = metrics.decode()
        assert 'edgecnn_output_up{kind="webhook",output="webhook"} 0.0' in text
        assert 'edgecnn_output_errors_total{kind="webhook",output="webhook"}' in text
        _, status = get(server.url + "/api/status")
        outs = json.loads(status)["outputs"]
        assert outs[0]["name"] == "webhook" and outs[0]["errors"] >= 1 and not outs[0]["connected"]
        for page in (body, metrics, status):
            assert b"s3cretpw" not in page
    finally:
        server.stop()
        station.stop()
        output.close(2.0)
        clf.close()
        second.close()


def test_regions_and_rejects_are_drawn(color_onnx, colour_video):
    """FrameEvents with two regions (classified crops of a real video frame) and a reject decision: the JPEG shows
    both boxes, the reject one in red; the decisions ring keeps them newest first."""
    import cv2
    import numpy as np

    import edgecnn
    from edgecnn.serve.live import LiveView
    from edgecnn.station.events import Decision, FrameEvent, Region, RegionPrediction

    cap = cv2.VideoCapture(str(colour_video))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    regions = (Region("left", 0, 0, w // 2, h), Region("right", w // 2, 0, w, h))
    clf = edgecnn.load(color_onnx)
    now = time.time()
    preds = tuple(RegionPrediction("cam", r.name, 7, now, p.label, p.score, tuple(p.topk), p.class_index, 3.0)
                  for r, p in zip(regions, clf.predict([rgb[r.y0:r.y1, r.x0:r.x1] for r in regions])))
    decisions = (Decision(1, now, "cam", "left", preds[0].label, preds[0].label, preds[0].score, frame=7,
                          captured_at=now - 0.01),
                 Decision(2, now, "cam", "right", "reject", preds[1].label, preds[1].score, frame=7,
                          captured_at=now - 0.01, reject=True))
    live = LiveView(stream_fps=50)
    try:
        live.watch("cam", +1)
        live.on_frame(FrameEvent("cam", 7, now, rgb, regions, preds, decisions, fps=12.5))
        jpeg = live.snapshot("cam")
        assert jpeg is not None
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        scale = img.shape[1] / w
        right_edge = img[img.shape[0] // 2, int((w - 1) * scale) - 1]  # the right box's border (BGR)
        assert right_edge[2] > 150 and right_edge[0] < 100 and right_edge[1] < 100  # drawn red: a reject
        doc = live.status()
        assert [d["seq"] for d in doc["decisions"]] == [2, 1] and doc["decisions"][0]["reject"]
        assert [r["region"] for r in doc["sources"][0]["regions"]] == ["left", "right"]
        assert live.dropped_events == 0 and live.encode_errors == 0
    finally:
        live.close()
        clf.close()


def test_each_viewer_gets_the_newest_frame_and_a_slow_one_skips(colour_video):
    """Two MJPEG clients of one LiveView fed at ~40 FPS from a real video: the fast one gets (nearly) every JPEG,
    the slow one (half a second per part) only the newest each time, the rest counted as skipped; the feeding
    thread goes on meanwhile (on_frame only stores a reference)."""
    import asyncio
    import threading

    import cv2

    from edgecnn.serve.live import LiveView
    from edgecnn.station.events import FrameEvent, Region, RegionPrediction

    cap = cv2.VideoCapture(str(colour_video))
    frames = []
    while len(frames) < 30:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    h, w = frames[0].shape[:2]
    live = LiveView(stream_fps=100)
    stop = threading.Event()
    fed = [0]

    def feed():
        i = 0
        while not stop.is_set():
            img = frames[i % len(frames)]
            pred = RegionPrediction("cam", "frame", i, time.time(), "red", 0.9)
            live.on_frame(FrameEvent("cam", i, time.time(), img, (Region("frame", 0, 0, w, h),), (pred,)))
            fed[0] += 1
            i += 1
            time.sleep(0.025)

    async def client(delay, n):
        got = []
        stream = live.mjpeg("cam")
        async for part in stream:
            got.append(part)
            if len(got) >= n:
                break
            await asyncio.sleep(delay)
        await stream.aclose()
        return got

    async def main():
        live.bind_loop(asyncio.get_running_loop())
        return await asyncio.gather(client(0.0, 40), client(0.5, 4))

    t = threading.Thread(target=feed)
    t.start()
    try:
        fast, slow = asyncio.run(main())
    finally:
        stop.set()
        t.join()
        live.close()
    assert len(fast) == 40 and len(slow) == 4
    assert live.skipped >= 10  # the slow client missed the frames encoded while it slept
    assert fed[0] >= 40 and live.dropped_events == 0  # the feeder went on while the slow client slept
    assert live.sources["cam"].viewers == 0  # both left
