"""The webhook output against a local HTTP server that fails some requests (retries with backoff), refuses some,
and one that never answers (the queue overflows, counted, without blocking the caller)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from brokers import decision, free_port

from edgecnn.errors import ConfigError
from edgecnn.station import events
from edgecnn.station.outputs import webhook


class Receiver:
    """A real HTTP server on loopback; ``plan(key, attempt) -> (status, headers)`` decides each answer."""

    def __init__(self, plan):
        self.received: list[tuple[dict, dict]] = []
        self.attempts: dict[str, int] = {}
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key") or body.get("alarm", "")
                with lock:
                    n = outer.attempts[key] = outer.attempts.get(key, 0) + 1
                status, headers = plan(key, n)
                if status == 200:
                    with lock:
                        outer.received.append((body, dict(self.headers)))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def make(tmp_path, url, **kw):
    cfg = webhook.Config(url=url, backoff_s=0.01, backoff_max_s=0.05, **{"follow": "*", **kw})
    out = webhook.create(cfg, station="line1", labels=["ok"], model_sha256="", state_dir=tmp_path)
    out.start()
    return out


def test_failures_are_retried_with_backoff_until_delivered(tmp_path):
    def plan(key, n):  # decisions 2 and 4: two 503s, then 200; decision 3: a 429 with Retry-After; alarms: one 502
        if key.endswith(("-2", "-4")) and n <= 2:
            return 503, {}
        if key.endswith("-3") and n == 1:
            return 429, {"Retry-After": "0"}
        if key == "frozen" and n == 1:
            return 502, {}
        return 200, {}

    rx = Receiver(plan)
    out = make(tmp_path, rx.url, token="t0ken-xyz")
    for i in range(1, 6):
        out.submit(decision(i))
    out.alarm(events.Alarm("frozen", "cam", "frame", True, 0, 1))
    out.close(10)
    rx.close()
    st = out.stats()
    assert (st.sent, st.retries, st.errors, st.dropped) == (6, 6, 0, 0)
    bodies = [b for b, _ in rx.received]
    assert sorted(b["seq"] for b in bodies if b["type"] == "decision") == [1, 2, 3, 4, 5]
    assert {b["type"] for b in bodies} == {"decision", "alarm"} and all(b["station"] == "line1" for b in bodies)
    headers = rx.received[0][1]
    assert headers["Authorization"] == "Bearer t0ken-xyz" and headers["Content-Type"] == "application/json"
    assert rx.attempts["line1-2"] == 3


def test_given_up_after_retries_and_4xx_not_retried(tmp_path, capfd):
    rx = Receiver(lambda key, n: (500, {}) if key.endswith("-1") else (400, {}))
    out = make(tmp_path, rx.url, retries=2)
    out.submit(decision(1))
    out.submit(decision(2))
    out.close(10)
    rx.close()
    st = out.stats()
    assert (st.sent, st.errors, st.retries) == (0, 2, 2)
    assert rx.attempts == {"line1-1": 3, "line1-2": 1}
    assert "HTTP 400" in st.last_error and "not retried" in st.last_error
    assert capfd.readouterr().err.count("a delivery failed") == 1


def test_refused_connection_is_retried_then_counted(tmp_path):
    out = make(tmp_path, f"http://127.0.0.1:{free_port()}/hook", retries=3)
    out.submit(decision(1))
    out.close(10)
    st = out.stats()
    assert (st.sent, st.errors, st.retries) == (0, 1, 3) and "refused" in st.last_error.lower()
    assert not webhook.check(webhook.Config(url=f"http://127.0.0.1:{free_port()}/x")).ok


def test_a_receiver_that_never_answers_never_blocks_submit(tmp_path):
    with socket.socket() as hung:  # accepts connections (kernel backlog) and never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        port = hung.getsockname()[1]
        out = make(tmp_path, f"http://127.0.0.1:{port}/hook", timeout_s=1.0, retries=0, queue_size=5)
        for i in range(200):
            out.submit(decision(i))  # the worker is stuck on the first POST: the rest queue up, then overflow
        st = out.stats()
        assert st.dropped >= 200 - 5 - 1 and st.queue_depth <= 5 and st.sent == 0
        out.close(0.2)
    out._thread.join(5)  # the stuck POST times out (1 s); leave no thread behind


def test_credentials_in_the_url_are_masked(tmp_path):
    url = f"http://user:hunter22@127.0.0.1:{free_port()}/hook?token=abc123"
    out = make(tmp_path, url, retries=0)
    out.submit(decision(1))
    out.close(5)
    text = out.describe() + out.stats().last_error
    assert "hunter22" not in text and "abc123" not in text and "***" in text
    assert "t0" not in repr(webhook.Config(url="http://x/", token="t0"))
    with pytest.raises(ConfigError, match="^url: expected an http"):
        webhook.create(webhook.Config(url="ftp://user:pw@x/"), station="s", labels=[], model_sha256="",
                       state_dir=tmp_path)


def test_https_with_the_receivers_ca(tmp_path):
    pytest.importorskip("cryptography")
    import ssl

    from brokers import self_signed

    cert, key = self_signed(tmp_path)
    rx = Receiver(lambda key_, n: (200, {}))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    rx.server.socket = ctx.wrap_socket(rx.server.socket, server_side=True)
    url = rx.url.replace("http://", "https://")
    out = make(tmp_path, url, ca=str(cert), retries=0)
    out.submit(decision(1))
    out.close(5)
    unverified = make(tmp_path, url, retries=0)  # the system's CAs do not know the receiver: refused, counted
    unverified.submit(decision(2))
    unverified.close(5)
    rx.close()
    assert out.stats().sent == 1 and [b["seq"] for b, _ in rx.received] == [1]
    assert unverified.stats().errors == 1 and "CERTIFICATE_VERIFY_FAILED" in unverified.stats().last_error
