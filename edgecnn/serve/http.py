"""The reusable HTTP pieces of edgecnn's servers (``edgecnn serve``, the monitor's review page).

- :func:`json_error` and :func:`error_handlers`: every error is one JSON object ``{"error": CODE, "message":
  LINE}`` with the right 4xx status; an unexpected exception is a 500 with the same shape and no traceback.
- :class:`BearerAuth`: an ASGI middleware that requires ``Authorization: Bearer TOKEN`` (or the session cookie that
  ``POST /login`` sets for browsers), compared in constant time (:func:`hmac.compare_digest`).
- :class:`LoopbackHosts`: a token-less loopback server answers only requests addressed to loopback (DNS rebinding).
- :func:`read_body`: a request body read up to a limit (413 past it, before reading it all).
- :class:`Server`: uvicorn serving an app, blocking (:meth:`Server.run`, Ctrl-C/SIGTERM stop it) or in a
  background thread (:meth:`Server.start`/:meth:`Server.stop`, for tests and embedding), on a given or free port.

The bind rule (loopback unless a token or ``insecure``) lives in :func:`edgecnn.serve.config.check_config`.
Needs the ``serve`` extra; :func:`require_stack` says how to install it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from edgecnn.errors import EdgeCNNError, require

#: The cookie a browser gets from ``POST /login``: an HMAC of the token, never the token itself.
SESSION_COOKIE = "edgecnn_session"

log = logging.getLogger("edgecnn.serve")


def require_stack(purpose: str = "to serve HTTP") -> None:
    """Import the serve extra's modules or raise one line naming ``pip install 'edgecnn[serve]'``."""
    for module in ("starlette", "uvicorn", "prometheus_client", "python_multipart"):
        require(module, "serve", purpose)


class HTTPError(EdgeCNNError):
    """An error answered as ``{"error": code, "message": message}`` with ``status`` (raise it in a handler)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    """A ``JSONResponse`` ``{"error": code, "message": message}``."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


_REASONS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 422: "unprocessable",
            429: "too_many_requests", 503: "unavailable"}


def error_handlers() -> dict[Any, Callable[..., Awaitable[Any]]]:
    """Starlette ``exception_handlers``: HTTPError, Starlette's HTTPException (404, 405...), user errors
    (``EdgeCNNError``: 422) and anything else (500), all as one JSON line without a traceback."""
    from starlette.exceptions import HTTPException

    async def http_error(request: Any, exc: HTTPError) -> Any:
        return json_error(exc.status, exc.code, str(exc), exc.headers)

    async def starlette_error(request: Any, exc: HTTPException) -> Any:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = f"No such page: {request.url.path}. See / for the live view, /predict, /metrics, /healthz."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: {exc.headers.get('Allow', '')}."
        return json_error(exc.status_code, _REASONS.get(exc.status_code, "error"), detail, exc.headers)

    async def user_error(request: Any, exc: EdgeCNNError) -> Any:
        return json_error(422, "unprocessable", str(exc))

    async def internal(request: Any, exc: Exception) -> Any:
        log.error("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return json_error(500, "internal", f"Internal error ({type(exc).__name__}); the server log has the detail.")

    return {HTTPError: http_error, HTTPException: starlette_error, EdgeCNNError: user_error, Exception: internal}


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (by Content-Length first)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise HTTPError(400, "bad_request", f"Expected a numeric Content-Length; received {declared!r}.") from None
        if n > limit:
            raise HTTPError(413, "too_large", f"Expected a body of at most {limit} bytes; received Content-Length "
                                              f"{n}. Send a smaller image or raise --max-body-mb.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "too_large", f"Expected a body of at most {limit} bytes; received more. Send a "
                                              "smaller image or raise --max-body-mb.")
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------- auth
def session_value(token: str) -> str:
    """The session cookie's value for ``token`` (an HMAC: the cookie never holds the token)."""
    return hmac.new(token.encode(), b"edgecnn-serve-session", hashlib.sha256).hexdigest()


def token_ok(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class BearerAuth:
    """ASGI middleware: every request outside ``open_paths`` needs ``Authorization: Bearer TOKEN`` or the session
    cookie; otherwise 401 JSON (a browser asking for a page is sent to the login form instead).

    Args:
        app: The wrapped ASGI app.
        token: The token, or None (then every request passes: loopback or ``--insecure``).
        open_paths: Paths served without a token (``/healthz``, ``/login``).
    """

    def __init__(self, app: Any, token: str | None, open_paths: Iterable[str] = ("/healthz", "/login")) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token) if token else ""
        self.open_paths = frozenset(open_paths)

    def allowed(self, headers: dict[bytes, bytes]) -> bool:
        if self.token is None:
            return True
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and token_ok(value.strip(), self.token):
            return True
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE and hmac.compare_digest(value.encode(), self.session.encode()):
                return True
        return False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        if self.allowed(headers):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "GET" and b"text/html" in headers.get(b"accept", b"") and scope["path"] == "/":
            from starlette.responses import RedirectResponse

            response: Any = RedirectResponse("/login", status_code=303)
        else:
            response = json_error(401, "unauthorized", "Expected 'Authorization: Bearer TOKEN' (the token given to "
                                  "--token); received none or a wrong one.", {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


class LoopbackHosts:
    """ASGI middleware for a server bound to loopback without a token: requests must name this machine in their
    ``Host`` header (``127.0.0.1``, ``localhost``, ``[::1]``), so a web page of another site that re-points its
    name at 127.0.0.1 (DNS rebinding) cannot read or drive it through a browser; 421 JSON otherwise."""

    ALLOWED = frozenset({"127.0.0.1", "localhost", "::1"})

    def __init__(self, app: Any, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self.enabled and scope["type"] == "http":
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1").strip().lower()
            name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            if name not in self.ALLOWED and not name.startswith("127."):
                response = json_error(421, "misdirected", f"Expected a Host header naming this machine (127.0.0.1, "
                                      f"localhost or [::1]); received {host[:80]!r}. Without --token the server "
                                      "answers only requests addressed to loopback.")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>edgecnn: sign in</title>
<style>body{font:15px system-ui,sans-serif;background:#111;color:#eee;display:grid;place-items:center;height:90vh}
form{background:#1c1c1c;padding:2em;border-radius:8px}input{font:inherit;padding:.4em;margin:.4em 0;width:18em}
.err{color:#f66}</style></head><body><form method="post" action="/login"><h2>edgecnn</h2>
<div>Token</div><input type="password" name="token" autofocus autocomplete="current-password">%s
<div><input type="submit" value="Sign in"></div></form></body></html>"""


def login_routes(token: str | None) -> list[Any]:
    """``GET /login`` (the form) and ``POST /login`` (checks the token, sets an HttpOnly SameSite=Strict session
    cookie, sends the browser to ``/``). The token is never echoed."""
    from starlette.responses import HTMLResponse, RedirectResponse
    from starlette.routing import Route

    async def form(request: Any) -> Any:
        return HTMLResponse(LOGIN_PAGE % "")

    async def submit(request: Any) -> Any:
        body = await read_body(request, 4096)
        from urllib.parse import parse_qs

        given = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0]
        if token is None:
            return RedirectResponse("/", status_code=303)
        if not token_ok(given, token):
            return HTMLResponse(LOGIN_PAGE % '<div class="err">Wrong token.</div>', status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(SESSION_COOKIE, session_value(token), httponly=True, samesite="strict")
        return response

    return [Route("/login", form, methods=["GET"]), Route("/login", submit, methods=["POST"])]


def new_token() -> str:
    """A random token for ``--token`` (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


# ---------------------------------------------------------------------------------------------- server
class MaskingFilter(logging.Filter):
    """Masks credentials (:func:`edgecnn.masking.mask_secrets`) in every record of the server's loggers: a token
    or password a client puts in a URL (``?token=...``, ``user:pw@``) never reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        from edgecnn.masking import mask_secrets

        if isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in record.args)
        return True


def mask_server_logs() -> None:
    """Attach :class:`MaskingFilter` to uvicorn's loggers and ours (once)."""
    for name in ("uvicorn.access", "uvicorn.error", "edgecnn.serve"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskingFilter) for f in logger.filters):
            logger.addFilter(MaskingFilter())


class _HeldErrors(logging.Filter):
    """Holds uvicorn's error records while the server starts (a failed start is reported as one line)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            self.records.append(record)
            return False
        return True

    def reason(self) -> str:
        from edgecnn.masking import mask_secrets

        if not self.records:
            return ""
        text = self.records[-1].getMessage()
        text = text.split("): ", 1)[-1] if "error while attempting to bind" in text else text
        return mask_secrets(text.strip().rstrip("."))


class Server:
    """uvicorn serving ``app`` on ``host:port`` (port 0: a free one, see :attr:`port` once started).

    Args:
        app: An ASGI app.
        host, port: Where to listen.
        access_log: Log each request line (paths only).
        log_level: uvicorn's log level.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, access_log: bool = False,
                 log_level: str = "warning") -> None:
        import uvicorn

        mask_server_logs()
        self.host = host
        self.config = uvicorn.Config(app, host=host, port=port, access_log=access_log,
                                     log_level="info" if access_log else log_level,
                                     lifespan="on", timeout_graceful_shutdown=2, server_header=False)
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked), once started."""
        for srv in getattr(self.server, "servers", []) or []:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return int(self.config.port)

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve in this thread until Ctrl-C or SIGTERM (uvicorn's own handlers finish the open requests)."""
        self.server.run()

    def start(self, timeout: float = 20.0) -> Server:
        """Serve in a daemon thread; returns once the socket listens.

        Raises:
            EdgeCNNError: the server did not start (e.g. the port is taken).
        """
        held = _HeldErrors()  # uvicorn's start-up errors become part of our one line instead of lines of their own
        errors = logging.getLogger("uvicorn.error")
        errors.addFilter(held)
        try:
            self._thread = threading.Thread(target=self._serve_quietly, name="edgecnn-http", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + timeout
            while not self.server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    why = held.reason() or "it did not answer in time"
                    hint = (" Choose another port with --port." if "in use" in why else
                            " Bind an address of this machine with --host (0.0.0.0: all of them)."
                            if "assign" in why else "")
                    raise EdgeCNNError(f"The HTTP server did not start on {self.host}:{self.config.port}: {why}.{hint}")
                time.sleep(0.01)
        finally:
            errors.removeFilter(held)
            for record in held.records if self.server.started else ():
                errors.handle(record)  # started after all: what it said is logged as usual
        return self

    def _serve_quietly(self) -> None:
        import asyncio

        try:
            # not run(): signal handlers belong to the main thread, and the caller's loop is not ours
            asyncio.run(self.server.serve())
        except SystemExit:  # uvicorn exits when it cannot bind; start() reports it
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait for its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["BearerAuth", "HTTPError", "LoopbackHosts", "MaskingFilter", "mask_server_logs", "SESSION_COOKIE", "Server", "error_handlers", "json_error", "login_routes",
           "new_token", "read_body", "require_stack", "session_value", "token_ok"]
