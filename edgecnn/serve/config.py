"""The options of ``edgecnn serve`` and of a station file's ``serve`` section: one frozen dataclass.

Each field carries its help, bounds and choices in ``dataclasses.field(metadata=...)``; the station file's
validation (helper "station") and the CLI's flags are derived from them, so the two faces never disagree.
``metadata["secret"]`` marks a value that is never printed, logged or exported (the bearer token).

Pure standard library and cheap to import: the station file's checker reads it without the HTTP stack.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError
from edgecnn.station.fields import option as _f

#: Hosts that are this machine only: binding them needs no token.
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
#: Environment variable read for the token when ``--token`` is not given (keeps it out of ``ps`` and unit files).
TOKEN_ENV = "EDGECNN_SERVE_TOKEN"


@dataclass(frozen=True)
class ServeConfig:
    """How ``edgecnn serve`` listens, batches and guards itself. Every field has a safe default."""

    host: str = _f("127.0.0.1", "Address to bind. Anything but loopback needs --token (or --insecure).")
    port: int = _f(8080, "TCP port (0: any free port, printed at start).", min=0, max=65535)
    max_batch: int = _f(8, "Most /predict images per inference call (the model's own limit wins).", min=1, max=1024)
    max_delay_ms: float = _f(5.0, "Longest wait for more /predict requests to fill a batch, in milliseconds.",
                             min=0.0, max=1000.0)
    max_queue: int = _f(64, "Most /predict images waiting for inference; beyond it requests get 503.", min=1,
                        max=100000)
    max_pending: int = _f(128, "Most /predict requests in progress at once; beyond it requests get 429.", min=1,
                          max=100000)
    max_body_mb: float = _f(16.0, "Largest /predict request body (and file read from --allow-dir), in MB.",
                            min=0.001, max=1024.0)
    max_images: int = _f(64, "Most images in one /predict request (multipart parts or JSON paths).", min=1,
                         max=10000)
    topk: int = _f(5, "Labels returned per image.", min=1, max=1000)
    threshold: float = _f(0.0, "A top-1 score below this is returned as the label 'unknown'.", min=0.0, max=1.0)
    token: str | None = _f(None, f"Bearer token every request but /healthz must carry (or set {TOKEN_ENV}).",
                           secret=True, envvar=TOKEN_ENV)
    insecure: bool = _f(False, "Allow binding a non-loopback address without a token (anyone on the network may "
                               "use it).")
    allow_dirs: tuple[Path, ...] = _f((), "Folder whose image files /predict may read by path (repeatable); "
                                          "nothing else is ever read.", multiple=True)
    jpeg_quality: int = _f(80, "JPEG quality of the live view's streams.", min=10, max=100)
    stream_fps: float = _f(15.0, "Most frames per second sent to each live-view client.", min=0.5, max=120.0)
    decisions: int = _f(50, "Recent decisions the live view and /api/status keep.", min=1, max=10000)
    stale_after_s: float = _f(5.0, "/readyz reports a source that delivered no frame for this long.", min=0.1,
                              max=3600.0)
    access_log: bool = _f(False, "Log every request (paths only; tokens travel in headers and are never logged).")

    def __post_init__(self) -> None:
        check_config(self)

    def __repr__(self) -> str:  # the token never shows, even in a traceback or a debug print
        items = ", ".join(f"{f.name}={'***' if f.metadata.get('secret') and getattr(self, f.name) else getattr(self, f.name)!r}"
                          for f in dataclasses.fields(self))
        return f"ServeConfig({items})"

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def replace(self, **changes: Any) -> ServeConfig:
        return dataclasses.replace(self, **changes)


def fields_table() -> list[dataclasses.Field]:
    """The fields of :class:`ServeConfig`, in order (name, default, ``metadata``: help, min, max, choices, secret)."""
    return list(dataclasses.fields(ServeConfig))


def is_loopback(host: str) -> bool:
    """True for an address that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_config(c: ServeConfig) -> None:
    """Bounds of every numeric field and the bind rule, each as one line (``serve.FIELD: expected ...``).

    Raises:
        ConfigError: a value out of its bounds, an empty token, or a non-loopback host without a token or
            ``insecure``.
    """
    for f in dataclasses.fields(c):
        v = getattr(c, f.name)
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(f"serve.{f.name}: expected a number between {lo:g} and {hi:g}; received {v!r}.")
    if c.token is not None and not c.token.strip():
        raise ConfigError("serve.token: expected a non-empty token; received an empty one. Give a long random "
                          "value, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    if not c.host.strip():
        raise ConfigError("serve.host: expected an address such as 127.0.0.1 or 0.0.0.0; received an empty one.")
    if not is_loopback(c.host) and not c.token and not c.insecure:
        raise ConfigError(f"serve.host: binding {c.host} (reachable from other machines) needs a token; received "
                          f"neither --token nor --insecure. Give --token (or set {TOKEN_ENV}), or --insecure to "
                          "serve without one, or bind 127.0.0.1.")


__all__ = ["LOOPBACK_NAMES", "TOKEN_ENV", "ServeConfig", "check_config", "fields_table", "is_loopback"]
