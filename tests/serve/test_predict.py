"""POST /predict on a real server: every input kind, every refusal as one JSON line, and real dynamic batching."""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.error
import urllib.request
import uuid

import pytest
from onnxmodels import COLOURS, solid_png


def post(url, data, ctype=None, headers=None):
    h = dict(headers or {})
    if ctype is not None:
        h["Content-Type"] = ctype
    req = urllib.request.Request(url, data=data, method="POST", headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        assert e.headers["content-type"] == "application/json", body[:200]
        return e.code, json.loads(body)


def reply_of(sock) -> str:
    """One whole HTTP response read from a raw socket (headers, then Content-Length bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(v for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                      if k.strip().lower() == b"content-length"))
    while len(body) < length:
        body += sock.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


def multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_raw_bytes_give_the_python_apis_prediction(live_server, color_onnx):
    import edgecnn

    png = solid_png(COLOURS["red"])
    status, doc = post(live_server.url + "/predict", png, "image/png")
    assert status == 200
    expected = edgecnn.load(color_onnx).predict(png).to_dict()
    assert set(doc) == set(expected)
    assert doc["label"] == expected["label"] == "red"
    assert doc["score"] == pytest.approx(expected["score"], abs=1e-6)
    assert [lbl for lbl, _ in doc["topk"]] == [lbl for lbl, _ in expected["topk"]]
    assert post(live_server.url + "/predict", png, "application/octet-stream")[1]["label"] == "red"
    assert len(post(live_server.url + "/predict?topk=1", png, "image/png")[1]["topk"]) == 1


def test_multipart_files_in_order(live_server):
    body, ctype = multipart({"a.png": solid_png(COLOURS["green"]), "b.png": solid_png(COLOURS["blue"])})
    status, doc = post(live_server.url + "/predict", body, ctype)
    assert status == 200
    assert [(p["source"], p["label"]) for p in doc["predictions"]] == [("a.png", "green"), ("b.png", "blue")]
    assert len(doc["model_sha256"]) == 64


def test_json_paths_inside_the_allowed_folder(live_server, allowed_dir):
    paths = ["red.png", str(allowed_dir / "green.png"), (allowed_dir / "sub" / "blue.png").as_uri()]
    status, doc = post(live_server.url + "/predict", json.dumps(paths).encode(), "application/json")
    assert status == 200, doc
    assert [p["label"] for p in doc["predictions"]] == ["red", "green", "blue"]
    status, doc = post(live_server.url + "/predict", json.dumps({"paths": ["sub/blue.png"]}).encode(),
                       "application/json")
    assert status == 200 and doc["predictions"][0]["label"] == "blue"


def test_paths_outside_the_allowed_folder_are_refused(live_server, allowed_dir, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(solid_png((1, 2, 3)))
    link = allowed_dir / "link-out.png"
    if not link.exists():
        link.symlink_to(secret)
    fifo = allowed_dir / "fifo.png"
    if not fifo.exists():
        os.mkfifo(fifo)
    cases = {
        "../" + secret.parent.name + "/secret.png": 403,
        "sub/../../" + secret.name: 403,
        str(secret): 403,
        secret.as_uri(): 403,
        "link-out.png": 403,  # a symlink pointing out
        "fifo.png": 403,  # not a regular file (never opened: a FIFO would block)
        "sub": 403,  # a folder
        "missing.png": 404,
        "http://example.com/x.png": 400,
        "": 400,
    }
    for item, code in cases.items():
        status, doc = post(live_server.url + "/predict", json.dumps([item]).encode(), "application/json")
        assert status == code, (item, doc)
        assert set(doc) == {"error", "message"} and "\n" not in doc["message"]
        assert str(secret.parent) not in doc["message"] or item.startswith(("/", "file:"))
    status, doc = post(live_server.url + "/predict", b"[1, 2]", "application/json")
    assert status == 400


def test_every_refusal_is_one_clear_json_error(live_server):
    url = live_server.url + "/predict"
    cases = [
        (b"not an image at all", "image/png", 422, "not_an_image"),
        (b"", "image/jpeg", 422, "not_an_image"),
        (solid_png(COLOURS["red"])[:60], "image/png", 422, "not_an_image"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
        (b"hello", None, 415, "unsupported_media_type"),
        (b"{not json", "application/json", 400, "bad_request"),
    ]
    for data, ctype, code, error in cases:
        status, doc = post(url, data, ctype)
        assert (status, doc["error"]) == (code, error), (ctype, doc)
        assert doc["message"] and "Traceback" not in doc["message"]
    body, ctype = multipart({"bad.png": b"garbage"})
    status, doc = post(url, body, ctype)
    assert status == 422 and "bad.png" in doc["message"]
    status, doc = post(url + "?topk=zero", solid_png(COLOURS["red"]), "image/png")
    assert status == 400


def test_an_oversized_body_is_refused_before_it_is_read(live_server):
    """Content-Length over the limit: 413 at once, the body never sent."""
    host, port = live_server.server.host, live_server.server.port
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 999999999\r\n\r\n")
        reply = reply_of(s)
    assert reply.startswith("HTTP/1.1 413") and '"too_large"' in reply


def test_too_many_requests_in_progress_get_429(color_onnx):
    """max_pending=1: while one request is still sending its body, the next one is refused with 429."""
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    with open_server(color_onnx, ServeConfig(port=0, max_pending=1)) as served:
        png = solid_png(COLOURS["blue"])
        with socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as slow:
            slow.sendall(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                         f"Content-Length: {len(png)}\r\n\r\n".encode() + png[:10])
            for _ in range(100):  # the slow request is in progress once the server has read its headers
                if served.state.in_progress:
                    break
                threading.Event().wait(0.02)
            status, doc = post(served.url + "/predict", png, "image/png")
            assert status == 429 and doc["error"] == "too_many_requests"
            slow.sendall(png[10:])
            assert '"label":"blue"' in reply_of(slow)
        assert post(served.url + "/predict", png, "image/png")[0] == 200


def test_a_full_queue_refuses_at_once(color_onnx):
    """The batcher's bounded queue: a job that does not fit raises Busy (the app answers 503)."""
    import numpy as np

    import edgecnn
    from edgecnn.serve.batching import Batcher, Busy

    clf = edgecnn.load(color_onnx)
    b = Batcher(clf, max_batch=4, max_queue=3)  # not started: nothing drains the queue
    x = np.zeros((32, 32, 3), np.uint8)
    b.submit([x, x], ["a", "b"], 3, 0.0)
    with pytest.raises(Busy):
        b.submit([x, x], ["c", "d"], 3, 0.0)
    f = b.submit([x], ["e"], 3, 0.0)
    assert b.queue_depth == 3 and b.stats.refused == 1
    b.start()
    assert f.result(10)[0].source == "e"
    b.stop()


def test_concurrent_requests_are_batched(live_server):
    """16 clients at once: fewer inference calls than images, every answer right."""
    url = live_server.url + "/predict"
    stats = live_server.state.batcher.stats
    before = (stats.batches, stats.images)
    results: list = []

    def client(colour):
        for _ in range(4):
            results.append((colour, post(url, solid_png(COLOURS[colour]), "image/png")))

    threads = [threading.Thread(target=client, args=(c,)) for c in list(COLOURS) * 6]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 72
    assert all(status == 200 and doc["label"] == colour for colour, (status, doc) in results)
    batches, images = stats.batches - before[0], stats.images - before[1]
    assert images == 72 and batches < images, (batches, images)


def test_no_allowed_folder_means_no_file_is_read(color_onnx, allowed_dir):
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    with open_server(color_onnx, ServeConfig(port=0)) as served:
        status, doc = post(served.url + "/predict", json.dumps([str(allowed_dir / "red.png")]).encode(),
                           "application/json")
        assert status == 403 and "--allow-dir" in doc["message"]


def test_a_token_less_loopback_server_answers_only_loopback_hosts(live_server):
    """DNS rebinding: a page of evil.example whose name points at 127.0.0.1 must not drive the server."""
    for host, code in (("evil.example:8080", 421), ("evil.example", 421), ("127.0.0.1:1", 200), ("localhost", 200),
                       ("[::1]:8080", 200)):
        with socket.create_connection(("127.0.0.1", live_server.server.port), timeout=10) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            reply = reply_of(s)
        assert reply.startswith(f"HTTP/1.1 {code}"), (host, reply[:200])


def test_a_pixel_bomb_is_refused_before_decoding(live_server):
    """A PNG whose header claims 60000x60000 pixels: 422 from the one decoder's pixel limit, nothing decoded."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    status, doc = post(live_server.url + "/predict", bomb, "image/png")
    assert status == 422 and "pixels" in doc["message"], doc


def test_a_chunked_body_over_the_limit_gets_413(color_onnx):
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    with open_server(color_onnx, ServeConfig(port=0, max_body_mb=0.01)) as served:
        with socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(4):
                s.sendall(b"1000\r\n" + b"x" * 4096 + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            reply = reply_of(s)
        assert reply.startswith("HTTP/1.1 413") and '"too_large"' in reply
