"""The live view, /metrics and health on a real server fed by a real source (an OpenCV-written video classified
by edgecnn's Pipeline), read over real HTTP."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from onnxmodels import COLOURS, solid_png


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def status(served):
    return json.loads(get(served.url + "/api/status")[2])


def source_name(served):
    return wait_for(lambda: [s["name"] for s in status(served)["sources"] if s.get("frames")], what="a frame")[0]


def read_parts(conn_resp, n):
    """n JPEG parts of a multipart/x-mixed-replace response."""
    parts = []
    boundary = conn_resp.getheader("content-type").split("boundary=")[1].encode()
    while len(parts) < n:
        line = conn_resp.fp.readline()
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while (h := conn_resp.fp.readline().strip()):
            k, _, v = h.decode().partition(":")
            headers[k.lower()] = v.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(conn_resp.fp.read(int(headers["content-length"])))
    return parts


def open_stream(served, name):
    u = urllib.parse.urlsplit(served.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    conn.request("GET", "/stream/" + urllib.parse.quote(name))
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type").startswith("multipart/x-mixed-replace")
    return conn, resp


def test_status_shows_the_source_its_labels_and_decisions(live_server):
    name = source_name(live_server)
    doc = wait_for(lambda: (d := status(live_server))["decisions"] and d, what="decisions")
    src = next(s for s in doc["sources"] if s["name"] == name)
    assert src["label"] in COLOURS and 0.9 < src["score"] <= 1.0
    assert src["health"]["connected"] and src["health"]["frames"] > 0
    assert {d["verdict"] for d in doc["decisions"]} <= set(COLOURS)
    assert doc["model"]["sha256"] == live_server.state.identity.sha256
    assert doc["ready"] and doc["problems"] == []


def test_mjpeg_stream_sends_fresh_annotated_jpegs(live_server):
    import cv2
    import numpy as np

    name = source_name(live_server)
    conn, resp = open_stream(live_server, name)
    try:
        parts = read_parts(resp, 6)
    finally:
        conn.close()
    assert all(p[:2] == b"\xff\xd8" and p[-2:] == b"\xff\xd9" for p in parts)
    images = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in parts]
    assert images[0].shape[1] >= 320  # small frames are drawn large enough to read
    assert len({p for p in parts}) > 1  # it updates
    snap = get(live_server.url + "/snapshot/" + urllib.parse.quote(name))
    assert snap[0] == 200 and snap[1]["content-type"] == "image/jpeg" and snap[2][:2] == b"\xff\xd8"
    assert get(live_server.url + "/stream/nope")[0] == 404


def test_stalled_viewers_never_slow_the_source_or_other_viewers(live_server):
    """Three clients that never read: frames keep flowing at the same pace and a fourth client is served."""
    name = source_name(live_server)
    feed = live_server.feed

    def rate(seconds=1.5):
        f0, t0 = feed.frames, time.monotonic()
        time.sleep(seconds)
        return (feed.frames - f0) / (time.monotonic() - t0)

    import socket

    alone = rate()
    stalled = []
    u = urllib.parse.urlsplit(live_server.url)
    for _ in range(3):  # tiny receive buffers, never read: the server's sends to them block soon
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.connect((u.hostname, u.port))
        s.sendall(f"GET /stream/{urllib.parse.quote(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        stalled.append((s, None))
    try:
        wait_for(lambda: status(live_server)["sources"][0]["viewers"] >= 3, what="3 viewers")
        time.sleep(2.0)  # their socket buffers fill up
        with_stalled = rate()
        conn, resp = open_stream(live_server, name)
        try:
            assert len(read_parts(resp, 3)) == 3
        finally:
            conn.close()
    finally:
        for c, _ in stalled:
            c.close()
    assert with_stalled > 0.5 * alone, (alone, with_stalled)  # paced at 20 fps either way; a stall would stop it
    assert feed.running


def test_metrics_parse_and_count_what_happened(live_server):
    from prometheus_client.parser import text_string_to_metric_families

    get(live_server.url + "/predict")  # a GET: 405, not counted as a predict request
    req = urllib.request.Request(live_server.url + "/predict", data=solid_png(COLOURS["green"]),
                                 headers={"Content-Type": "image/png"})
    urllib.request.urlopen(req, timeout=20).read()
    code, headers, body = get(live_server.url + "/metrics")
    assert code == 200 and headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    name = live_server.feed.name
    assert value("edgecnn_frames_total", source=name) > 0
    assert sum(v for (n, _), v in samples.items() if n == "edgecnn_decisions_total") > 0
    assert value("edgecnn_source_up", source=name) == 1.0
    assert value("edgecnn_source_fps", source=name) > 0
    for metric in ("edgecnn_source_dropped_frames_total", "edgecnn_source_reconnects_total",
                   "edgecnn_source_queue_depth", "edgecnn_source_last_frame_age_seconds"):
        assert (metric, (("source", name),)) in samples, metric
    assert value("edgecnn_predict_requests_total", code="200") >= 1
    assert value("edgecnn_predict_latency_seconds_count") >= 1
    assert value("edgecnn_predict_batch_size_count") >= 1
    assert "edgecnn_decision_latency_seconds" in fams and "edgecnn_predict_queue_depth" in fams
    assert fams["edgecnn_live_jpegs_skipped"].type == "counter" and "edgecnn_live_jpegs_sent" in fams
    info = next(s for s in fams["edgecnn_model_info"].samples)
    assert info.labels["sha256"] == live_server.state.identity.sha256 and info.labels["name"] == "color"
    for family in ("edgecnn_output_errors", "edgecnn_output_spool_depth", "edgecnn_output_queue_depth"):
        assert family in fams  # declared even with no outputs (a station's outputs fill them)


def test_health_and_readiness(color_onnx, colour_video):
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    with open_server(color_onnx, ServeConfig(port=0, stale_after_s=0.5), source=str(colour_video),
                     loop=False, max_fps=30) as served:
        assert json.loads(get(served.url + "/healthz")[2])["status"] == "alive"
        wait_for(lambda: get(served.url + "/readyz")[0] == 200, what="ready")
        # the video ends (no --loop): the source stops delivering and /readyz says so
        code, _, body = wait_for(lambda: (r := get(served.url + "/readyz"))[0] == 503 and r, what="not ready")
        doc = json.loads(body)
        assert not doc["ready"] and doc["problems"][0]["check"] == "source"
        assert doc["problems"][0]["name"] == served.feed.name and doc["problems"][0]["problem"]
        assert get(served.url + "/healthz")[0] == 200  # alive all the same


def test_a_model_without_source_serves_predict_and_is_ready(color_onnx):
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    with open_server(color_onnx, ServeConfig(port=0)) as served:
        assert get(served.url + "/readyz")[0] == 200
        doc = status(served)
        assert doc["sources"] == [] and doc["predict"]["enabled"]
        assert b"<img" not in get(served.url + "/")[2]  # the page builds its images from /api/status


@pytest.mark.parametrize("where", ["/", "/api/status", "/metrics", "/readyz"])
def test_the_token_guards_everything_and_never_shows(color_onnx, colour_video, where, capfd):
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    token = "tok-" + "x7" * 16
    source = "rtsp://admin:hunter2pass@camera.local:554/line1"  # a password-bearing name never shows either
    config = ServeConfig(port=0, token=token, access_log=True)
    with open_server(color_onnx, config, source=str(colour_video), loop=True, max_fps=20) as served:
        served.feed.name = source
        auth = {"Authorization": f"Bearer {token}"}
        wait_for(lambda: any(s.get("frames") for s in status_with(served, auth)["sources"]), what="a frame")
        code, _, body = get(served.url + where)
        assert code == 401 or (where == "/" and code == 200 and b"Token" in body)  # the login form
        code, _, body = get(served.url + where, auth)
        assert code == 200
        i = body.find(token.encode())
        assert i < 0 and b"hunter2pass" not in body, body[max(0, i - 200):i + 60]
        if where == "/metrics":
            assert b"rtsp://***:***@" in body
        get(served.url + where + "?token=leaked-in-a-url-9q8w", auth)  # a client's mistake is not logged either
    out, err = capfd.readouterr()
    assert where.split("?")[0] in out + err  # the access log ran
    assert "leaked-in-a-url-9q8w" not in out + err
    assert token not in out + err and "hunter2pass" not in out + err


def status_with(served, headers):
    return json.loads(get(served.url + "/api/status", headers)[2])


def test_prometheus_scrapes_it(live_server, tmp_path):
    """A real Prometheus (Debian's package) scrapes /metrics and its query API returns our series."""
    import shutil
    import socket
    import subprocess

    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("Debian's prometheus package is not installed (apt-get install prometheus; make system-deps)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = urllib.parse.urlsplit(live_server.url).netloc
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        f"  - job_name: edgecnn\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{target}']\n")
    proc = subprocess.Popen([exe, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def query(q):
            try:
                r = get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q}))
            except OSError:
                return []
            return json.loads(r[2])["data"]["result"] if r[0] == 200 else []

        up = wait_for(lambda: query("up{job='edgecnn'} == 1"), timeout=60, what="prometheus to scrape")
        assert up[0]["metric"]["instance"] == target
        frames = wait_for(lambda: query("edgecnn_frames_total"), timeout=30, what="edgecnn_frames_total")
        assert float(frames[0]["value"][1]) > 0
        info = query("edgecnn_model_info")
        assert info[0]["metric"]["sha256"] == live_server.state.identity.sha256
    finally:
        proc.terminate()
        proc.wait(10)
