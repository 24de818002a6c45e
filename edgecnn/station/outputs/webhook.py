"""HTTP webhook output: each decision and alarm as a JSON POST, retried with exponential backoff.

Only the standard library (``urllib``) is used: a webhook needs one POST with a timeout, which needs no client
library and so no extra. A delivery that fails with a network error, a timeout, 408, 429 or a 5xx answer is tried
again after ``backoff_s``, doubling up to ``backoff_max_s`` (a ``Retry-After`` in seconds is honoured within that
bound), at most ``retries`` times; then it is given up and counted (``errors``). Other 4xx answers are not retried
(the receiver refuses the request: retrying cannot help). While one delivery waits, new events queue up to
``queue_size``; what overflows is counted (``dropped``). Each POST carries ``Idempotency-Key: <station>-<seq>`` for
decisions, so a receiver can drop the duplicate a retry after a lost answer may cause.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from edgecnn.station import events
from edgecnn.station.outputs.base import (
    QueuedOutput,
    check_connect,
    check_follow,
    check_ready,
    field,
    mask,
    matches,
)

KIND = "webhook"
RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Config:
    """An ``[[outputs]]`` entry of a station file with ``kind = "webhook"`` (checked on construction)."""

    def __post_init__(self) -> None:
        _validate(self)

    url: str = field(MISSING, "The URL that receives a JSON POST per decision and alarm (http:// or https://).")
    token: str = field("", "Sent as 'Authorization: Bearer <token>'; write \"{WEBHOOK_TOKEN}\" to fill it from the environment.",
                       secret=True)
    follow: str = field("station", "Which decisions to send: 'station' (the station verdict), '*' all, a source "
                                   "name, or 'source/region'.")
    changes_only: bool = field(False, "Send only decisions whose verdict changed.")
    alarms: bool = field(True, "Send alarms too.")
    timeout_s: float = field(5.0, "Seconds to wait for the receiver's answer.", min=0.1, max=300.0)
    retries: int = field(5, "Times a failed delivery is tried again before it is given up (and counted).",
                         min=0, max=100)
    backoff_s: float = field(0.5, "Wait before the first retry; doubles on each further one.", min=0.0, max=3600.0)
    backoff_max_s: float = field(30.0, "Longest wait between retries.", min=0.0, max=3600.0)
    queue_size: int = field(1000, "Events waiting for delivery; what overflows is dropped and counted.",
                            min=1, max=1_000_000)
    ca: str = field("", "CA certificates (PEM file) that signed the receiver's HTTPS certificate (a plant's own CA); "
                        "empty: the system's.")
    insecure: bool = field(False, "HTTPS without verifying the receiver's certificate (test receivers only).")


CONFIG = Config


def _validate(config: Config) -> None:
    from urllib.parse import urlsplit

    from edgecnn.errors import ConfigError

    parts = urlsplit(config.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"url: expected an http:// or https:// URL; received {mask(config.url, whole=True)!r}")
    check_follow(config.follow)
    if config.ca and not Path(config.ca).expanduser().is_file():
        raise ConfigError(f"ca: expected a PEM file; received {config.ca!r}, which does not exist")


class WebhookOutput(QueuedOutput):
    """POSTs decisions and alarms as JSON (see the module's docstring)."""

    kind = KIND

    def __init__(self, config: Config, *, station: str, labels: list[str], model_sha256: str, name: str = KIND):
        super().__init__(name, config.queue_size)
        self.config = config
        self.station = station
        self.labels = list(labels)
        self.model_sha256 = model_sha256
        self.url = mask(config.url, whole=True)
        self._ssl: Any = None

    def open(self) -> None:
        if self.config.url.startswith("https:") and (self.config.insecure or self.config.ca):
            import ssl

            if self.config.insecure:
                self._ssl = ssl._create_unverified_context()  # noqa: S323 - asked for by insecure = true
            else:
                self._ssl = ssl.create_default_context(cafile=str(Path(self.config.ca).expanduser()))
        self.set_connected(True)

    def handle(self, item: events.Decision | events.Alarm) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "edgecnn-station"}
        if isinstance(item, events.Decision):
            if not matches(item, self.config.follow) or (self.config.changes_only and not item.changed):
                return
            body = {"type": "decision", "station": self.station, **item.to_json()}
            headers["Idempotency-Key"] = f"{self.station}-{item.seq}"
        else:
            if not self.config.alarms:
                return
            body = {"type": "alarm", "station": self.station, **item.to_json()}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        delay = self.config.backoff_s
        for attempt in range(self.config.retries + 1):
            retry_after, error = self._post(data, headers)
            if error is None:
                self.count_sent()
                self.set_connected(True)
                return
            if retry_after is None or attempt == self.config.retries:
                self.count_error(f"{self.url}: {error}" + ("" if retry_after is None else
                                                           f" (given up after {attempt + 1} tries)"))
                self.warn_once("failed", f"webhook {self.url}: a delivery failed ({error}); failures are counted "
                                         "in the output's stats")
                self.set_connected(retry_after is None)
                return
            self.set_connected(False)
            with self._lock:
                self._stats.retries += 1
            wait = min(self.config.backoff_max_s, max(delay, retry_after))
            delay = min(self.config.backoff_max_s, delay * 2 if delay else 0.0)
            if self._stop.wait(wait):  # closing: what is still failing is given up now
                self.count_error(f"{self.url}: {error} (given up at close)")
                return

    def _post(self, data: bytes, headers: dict[str, str]) -> tuple[float | None, str | None]:
        """POST once: (retry-after seconds or None when not to retry, error text or None on success)."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.config.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s, context=self._ssl) as resp:
                resp.read(65536)
            return None, None
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in RETRY_STATUS:
                after = exc.headers.get("Retry-After", "") if exc.headers else ""
                return (float(after) if after.strip().isdigit() else 0.0), f"HTTP {exc.code} {exc.reason}"
            return None, f"HTTP {exc.code} {exc.reason} (not retried: the receiver refuses the request)"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return 0.0, mask(f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason)

    def describe(self) -> str:
        return f"webhook {self.url}"


def create(config: Config, *, station: str, labels: list[str], model_sha256: str, state_dir: Path,
           name: str = KIND, start_offline: bool = False) -> WebhookOutput:
    """A webhook output (not started). A receiver that is away at start is retried like any other failure."""
    _validate(config)
    return WebhookOutput(config, station=station, labels=labels, model_sha256=model_sha256, name=name)


def check(config: Config, name: str = KIND) -> events.Reachability:
    """Whether the receiver's host accepts a TCP connection now (nothing is POSTed)."""
    from urllib.parse import urlsplit

    failed = check_ready(name, lambda: _validate(config))
    if failed is not None:
        return failed
    parts = urlsplit(config.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = check_connect(parts.hostname or "", port, name, timeout=min(5.0, config.timeout_s))
    return events.Reachability(name, found.ok, f"webhook {mask(config.url, whole=True)}: {found.detail}")
