"""The reusable HTTP pieces (edgecnn.serve.http, .config) on a real uvicorn server on a free loopback port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'edgecnn[serve]'")

from edgecnn.errors import ConfigError  # noqa: E402
from edgecnn.serve.config import ServeConfig, fields_table, is_loopback  # noqa: E402

TOKEN = "s3cret-token-value"


def call(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def server():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from edgecnn.serve.http import BearerAuth, HTTPError, Server, error_handlers, login_routes, read_body

    async def ok(request):
        return JSONResponse({"ok": True})

    async def boom(request):
        raise RuntimeError("a bug with a secret path /etc/x")

    async def echo(request):
        body = await read_body(request, 100)
        return JSONResponse({"n": len(body)})

    async def teapot(request):
        raise HTTPError(418, "teapot", "Expected coffee; received tea.")

    app = Starlette(routes=[Route("/healthz", ok), Route("/ok", ok), Route("/boom", boom),
                            Route("/echo", echo, methods=["POST"]), Route("/teapot", teapot), *login_routes(TOKEN)],
                    exception_handlers=error_handlers(), middleware=[Middleware(BearerAuth, token=TOKEN)])
    with Server(app, port=0) as srv:
        yield srv


def test_bearer_token_is_required_except_on_open_paths(server):
    assert call(server.url + "/healthz")[0] == 200
    status, headers, body = call(server.url + "/ok")
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(body)["error"] == "unauthorized" and TOKEN not in body.decode()
    assert call(server.url + "/ok", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert call(server.url + "/ok", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_browser_login_sets_a_session_cookie_that_is_not_the_token(server):
    status, headers, _ = call(server.url + "/login", "POST", b"token=wrong")
    assert status == 401
    req = urllib.request.Request(server.url + "/login", data=f"token={TOKEN}".encode(), method="POST")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as exc:
        opener.open(req, timeout=10)
    assert exc.value.code == 303
    cookie = exc.value.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    session = cookie.split(";")[0]
    assert call(server.url + "/ok", headers={"Cookie": session})[0] == 200
    assert call(server.url + "/ok", headers={"Cookie": session[:-2] + "00"})[0] == 401


def test_errors_are_one_json_line_never_a_traceback(server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path, status, code in (("/boom", 500, "internal"), ("/nope", 404, "not_found"), ("/teapot", 418, "teapot")):
        s, h, body = call(server.url + path, headers=auth)
        assert s == status and h["content-type"] == "application/json", path
        doc = json.loads(body)
        assert doc["error"] == code and "Traceback" not in doc["message"] and "/etc/x" not in doc["message"]
    s, _, body = call(server.url + "/ok", "POST", b"x", auth)
    assert s == 405 and json.loads(body)["error"] == "method_not_allowed"


def test_body_limit_gives_413(server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert json.loads(call(server.url + "/echo", "POST", b"x" * 100, auth)[2]) == {"n": 100}
    s, _, body = call(server.url + "/echo", "POST", b"x" * 101, auth)
    assert s == 413 and json.loads(body)["error"] == "too_large"


def test_a_taken_port_is_one_clear_error(server):
    from edgecnn.errors import EdgeCNNError
    from edgecnn.serve.http import Server

    with pytest.raises(EdgeCNNError, match="address already in use. Choose another port with --port"):
        from starlette.applications import Starlette

        Server(Starlette(), port=server.port).start(timeout=5)


def test_bind_rule_loopback_or_token_or_insecure():
    assert ServeConfig().host == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with pytest.raises(ConfigError, match="needs a token"):
        ServeConfig(host="0.0.0.0")
    assert ServeConfig(host="0.0.0.0", token=TOKEN).token == TOKEN
    assert ServeConfig(host="0.0.0.0", insecure=True).insecure
    with pytest.raises(ConfigError, match="serve.max_batch"):
        ServeConfig(max_batch=0)
    assert TOKEN not in repr(ServeConfig(token=TOKEN))


def test_every_field_has_a_default_and_help():
    for f in fields_table():
        assert f.metadata["help"], f.name
    assert [f.name for f in fields_table() if f.metadata.get("secret")] == ["token"]
