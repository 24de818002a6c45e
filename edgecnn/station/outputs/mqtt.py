"""MQTT output (paho-mqtt 2.x): decisions and alarms as JSON messages, the station's state retained, a last will.

Topics are templates filled per message: ``{station}``, ``{source}``, ``{region}``, ``{verdict}`` (decisions) and
``{alarm}`` (alarms); a ``/``, ``+`` or ``#`` inside a name becomes ``_``, so a name never changes the topic's
levels. The state topic carries a retained ``{"state": "online", ...}`` while the station runs; the broker
publishes the retained last will ``{"state": "offline", ...}`` when the connection dies without a goodbye, and the
output publishes the same on a clean close.

With QoS 1 every message goes through an on-disk :class:`~edgecnn.station.outputs.spool.Spool` first and leaves it
only when the broker's PUBACK comes back. A broker restart or a dropped network costs nothing: paho resends what
was in flight (flagged DUP) once it reconnects, and the backlog in the spool follows; messages still spooled when
the station stops are sent on the next start. A message can arrive twice only when a PUBACK was lost, as QoS 1
allows; ``seq`` in the payload marks it. A full spool refuses new messages: they are counted
(``OutputStats.spool_dropped``) and one warning line says so. With QoS 0 nothing is spooled and what is published
while the broker is away is dropped and counted.

The password is never printed: the config keeps it out of ``repr()`` and every line names the broker as
``mqtt://***:***@host:port``.
"""

from __future__ import annotations

import json
import string
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.station import events
from edgecnn.station.outputs.base import QueuedOutput, field

KIND = "mqtt"
SYNC_INTERVAL = 0.2  # seconds between fsyncs of the spool (on a thread of its own)
PLACEHOLDERS = {"decision": ("station", "source", "region", "verdict"), "alarm": ("station", "source", "region", "alarm"),
                "state": ("station",)}


@dataclass(frozen=True)
class Config:
    """An ``[[outputs]]`` entry of a station file with ``kind = "mqtt"`` (checked on construction)."""

    def __post_init__(self) -> None:
        _validate(self)

    host: str = field("localhost", "Broker host name or address.")
    port: int = field(1883, "Broker TCP port (1883 plain, 8883 is the usual TLS port).", min=1, max=65535)
    topic: str = field("edgecnn/{station}/{source}/{region}/decision",
                       "Topic template of decision messages; placeholders {station} {source} {region} {verdict}.")
    alarm_topic: str = field("edgecnn/{station}/{source}/{region}/alarm/{alarm}",
                             "Topic template of alarm messages; placeholders {station} {source} {region} {alarm}.")
    state_topic: str = field("edgecnn/{station}/state",
                             "Retained station state ('online' while running, 'offline' as last will and on close).")
    qos: int = field(1, "1: at least once, through the on-disk spool (nothing lost across broker restarts); "
                        "0: at most once, dropped while the broker is away.", choices=(0, 1))
    alarms: bool = field(True, "Publish alarms (drift, frozen, source down ...) on alarm_topic.")
    changes_only: bool = field(False, "Publish only decisions whose verdict changed.")
    retain: bool = field(False, "Publish decisions retained: a subscriber that connects later gets each topic's "
                                "latest decision at once.")
    client_id: str = field("", "MQTT client id; empty: edgecnn-<station>.")
    username: str = field("", "User name for the broker; empty: anonymous.")
    password: str = field("", "Password for the broker; write \"{MQTT_PASSWORD}\" to fill it from the environment.", secret=True)
    tls: bool = field(False, "Connect with TLS.")
    ca: str = field("", "CA certificates (PEM file) that signed the broker's certificate; empty: the system's.")
    cert: str = field("", "Client certificate (PEM file) for brokers that require one.")
    key: str = field("", "The client certificate's private key (PEM file).")
    insecure: bool = field(False, "TLS without verifying the broker's certificate and host name (test brokers only).")
    keepalive: int = field(30, "Seconds between keep-alive pings; a dead link is noticed after 1.5x this.",
                           min=5, max=3600)
    reconnect_max_s: float = field(30.0, "Longest wait between reconnection attempts (starts at 1 s, doubles).",
                                   min=1.0, max=3600.0)
    queue_size: int = field(1000, "Messages held in memory before the worker takes them (overflow is counted).",
                            min=1, max=1_000_000)
    spool_mb: float = field(64.0, "Most megabytes of unacknowledged QoS 1 messages kept on disk (and in memory).",
                            min=0.001, max=1_000_000.0)
    max_inflight: int = field(100, "Most QoS 1 messages sent and not yet acknowledged.", min=1, max=65535)


CONFIG = Config


def _check_template(name: str, template: str, allowed: tuple[str, ...]) -> None:
    from edgecnn.errors import ConfigError

    try:
        used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a topic template like 'edgecnn/{{station}}/state'; "
                          f"received {template!r} ({exc})") from None
    unknown = sorted(used - set(allowed))
    if unknown or not template or "+" in template or "#" in template:
        what = f"unknown placeholder {{{unknown[0]}}}" if unknown else "wildcards (+, #) cannot be published to"
        raise ConfigError(f"{name}: expected a topic with placeholders among "
                          f"{', '.join('{' + a + '}' for a in allowed)}; received {template!r} ({what})")


def _level(name: str) -> str:
    return "".join("_" if c in "/+#" else c for c in str(name)) or "_"


def broker_url(config: Config) -> str:
    """The broker as ``mqtt[s]://***:***@host:port`` (credentials never shown: the user name is half of one)."""
    user = "***:***@" if config.username else ""
    return f"{'mqtts' if config.tls else 'mqtt'}://{user}{config.host}:{config.port}"


def _validate(config: Config) -> None:
    from edgecnn.errors import ConfigError

    _check_template("topic", config.topic, PLACEHOLDERS["decision"])
    _check_template("alarm_topic", config.alarm_topic, PLACEHOLDERS["alarm"])
    _check_template("state_topic", config.state_topic, PLACEHOLDERS["state"])
    if config.qos not in (0, 1):
        raise ConfigError(f"qos: expected 0 or 1; received {config.qos!r}")
    if config.password and not config.username:
        raise ConfigError("password: expected a username with it; received a password alone "
                          "(set username)")
    for key in ("ca", "cert", "key"):
        path = getattr(config, key)
        if path and not Path(path).expanduser().is_file():
            raise ConfigError(f"{key}: expected a PEM file; received {path!r}, which does not exist")
    if bool(config.cert) != bool(config.key):
        raise ConfigError("cert/key: expected both a client certificate and its key; received one")
    if (config.ca or config.cert or config.insecure) and not config.tls:
        raise ConfigError("tls: expected true when ca, cert or insecure are set; received false")


def _client(paho: Any, config: Config, client_id: str) -> Any:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                         protocol=paho.MQTTv311)
    if config.username:
        client.username_pw_set(config.username, config.password or None)
    if config.tls:
        import ssl

        client.tls_set(ca_certs=str(Path(config.ca).expanduser()) if config.ca else None,
                       certfile=str(Path(config.cert).expanduser()) if config.cert else None,
                       keyfile=str(Path(config.key).expanduser()) if config.key else None,
                       cert_reqs=ssl.CERT_NONE if config.insecure else ssl.CERT_REQUIRED)
        if config.insecure:
            client.tls_insecure_set(True)
    return client


def _import_paho() -> Any:
    from edgecnn.errors import require

    return require("paho.mqtt.client", "mqtt", "for the MQTT output")


class MQTTOutput(QueuedOutput):
    """Publishes decisions and alarms to an MQTT broker (see the module's docstring)."""

    kind = KIND
    idle_interval = 0.05
    batch_max = 64  # events waiting are spooled with one write

    def __init__(self, config: Config, *, station: str, labels: list[str], model_sha256: str, state_dir: Path,
                 name: str = KIND, start_offline: bool = False) -> None:
        super().__init__(name, config.queue_size)
        self.config = config
        self.station = station
        self.labels = list(labels)
        self.model_sha256 = model_sha256
        self.state_dir = Path(state_dir)
        self.start_offline = start_offline
        self.url = broker_url(config)
        self.state_topic = config.state_topic.format(station=_level(station))
        self.spool: Any = None
        self._client: Any = None
        self._paho: Any = None
        self._connected = threading.Event()
        self._connack = threading.Event()
        self._backlog: deque[int] = deque()
        self._inflight: dict[int, int] = {}  # paho mid -> spool id
        self._early: dict[int, float] = {}  # PUBACKs that came before publish() returned its mid
        self._spool_dropped = 0
        #: Called on paho's thread with each spooled message once the broker acknowledged it (benchmarks time it).
        self.on_acked: Any = None
        self._disconnects = 0
        self._connect_error = ""

    # ------------------------------------------------------------------ start / stop
    def open(self) -> None:
        from edgecnn.errors import EdgeCNNError, SourceError

        self._paho = _import_paho()
        if self.config.qos == 1:
            from edgecnn.station.outputs.spool import Spool

            path = self.state_dir / f"mqtt-{_level(self.name)}.spool"
            try:
                self.spool = Spool(path, int(self.config.spool_mb * 1_000_000))
            except OSError as exc:
                raise EdgeCNNError(f"MQTT spool {path}: cannot open it ({exc.strerror or exc}); check the state "
                                   "folder's permissions and free space") from None
            self._backlog.extend(self.spool.ids())
            if self.spool.skipped:
                self.warn_once("torn", f"MQTT spool {path}: skipped {self.spool.skipped} unreadable line(s) "
                                       "(a write cut short by a crash)")
        client = _client(self._paho, self.config, self.config.client_id or f"edgecnn-{_level(self.station)}")
        client.will_set(self.state_topic, self._state("offline"), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(self.config.reconnect_max_s)))
        client.max_inflight_messages_set(self.config.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        try:
            client.connect(self.config.host, self.config.port, keepalive=self.config.keepalive)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            if not self.start_offline:
                self._close_spool()
                raise SourceError(f"MQTT broker {self.url} cannot be reached ({reason}): check host, port and "
                                  "network") from None  # the engine adds how to start offline
            self.warn_once("offline", f"MQTT broker {self.url} cannot be reached ({reason}); starting offline, "
                                      "QoS 1 decisions are spooled until it is back")
            client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        client.loop_start()
        if self.spool is not None:
            threading.Thread(target=self._sync_spool, name=f"edgecnn-mqtt-spool-{self.name}", daemon=True).start()
        if not self.start_offline:
            self._connack.wait(10.0)
            if not self._connected.is_set():
                client.loop_stop()
                client.disconnect()
                self._close_spool()
                why = self._connect_error or "no answer within 10 s"
                raise SourceError(f"MQTT broker {self.url} refused the connection ({why}): check the username, "
                                  "password and TLS settings") from None

    def shutdown(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self._client
        if client is None:
            return
        while self._connected.is_set() and (self._backlog or self._inflight) and time.monotonic() < deadline:
            self._pump()
            time.sleep(0.02)
        if self._connected.is_set():
            info = client.publish(self.state_topic, self._state("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.1, min(2.0, deadline - time.monotonic())))
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()
        self.set_connected(False)
        self._close_spool()

    def _sync_spool(self) -> None:
        spool = self.spool
        while not self._stop.wait(SYNC_INTERVAL):
            try:
                spool.sync()
            except (OSError, AssertionError) as exc:  # closed under us, or the disk failed: counted
                self.count_error(exc)

    def _close_spool(self) -> None:
        self._stop.set()  # ends the spool's sync thread
        if self.spool is not None:
            self.spool.close()

    # ------------------------------------------------------------------ paho's thread
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
            self.count_error(f"broker refused the connection: {reason}")
            self._connack.set()
            return
        client.publish(self.state_topic, self._state("online"), qos=1, retain=True)
        if self._disconnects:
            from edgecnn.console import info

            info(f"MQTT broker {self.url}: connected again; resending {len(self._inflight) + len(self._backlog)} "
                 "spooled message(s)")
        self._connected.set()
        self.set_connected(True)
        self._connack.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self.set_connected(False)
        if was:
            self._disconnects += 1
            if reason.is_failure:
                self.count_error(f"connection lost: {reason}")
                from edgecnn.console import warn

                spooled = " (QoS 1: spooling until it is back)" if self.spool is not None else ""
                warn(f"MQTT broker {self.url}: connection lost ({reason}); reconnecting{spooled}")

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if self.spool is None:  # QoS 0: nothing to acknowledge
            return
        with self._lock:
            sid = self._inflight.pop(mid, None)
            if sid is None:
                self._early[mid] = time.monotonic()
                return
            self._stats.sent += 1
        self._acked(sid)

    def _acked(self, sid: int) -> None:
        msg = self.spool.get(sid) if self.on_acked is not None else None
        self.spool.ack(sid)
        if msg is not None:
            try:
                self.on_acked(msg)
            except Exception as exc:  # noqa: BLE001 - an observer's bug never breaks delivery
                self.count_error(exc)

    # ------------------------------------------------------------------ the worker
    def _message(self, item: events.Decision | events.Alarm) -> tuple[str, str, bool] | None:
        """(topic, payload, retain) of an event, or None when the config leaves it out."""
        if isinstance(item, events.Decision):
            if self.config.changes_only and not item.changed:
                return None
            topic = self.config.topic.format(station=_level(self.station), source=_level(item.source),
                                             region=_level(item.region), verdict=_level(item.verdict))
        else:
            if not self.config.alarms:
                return None
            topic = self.config.alarm_topic.format(station=_level(self.station), source=_level(item.source),
                                                   region=_level(item.region), alarm=_level(item.name))
        payload = json.dumps({"station": self.station, **item.to_json()}, ensure_ascii=False, separators=(",", ":"))
        return topic, payload, self.config.retain and isinstance(item, events.Decision)

    def handle(self, item: events.Decision | events.Alarm) -> None:
        self.handle_batch([item])

    def handle_batch(self, items: list[events.Decision | events.Alarm]) -> None:
        messages = [m for m in map(self._message, items) if m is not None]
        if self.spool is None:
            for topic, payload, retain in messages:
                self._publish_qos0(topic, payload, retain)
            return
        if not messages:
            return
        disk_error = False
        try:
            ids = self.spool.put_many(messages)
        except OSError as exc:
            ids, disk_error = [None] * len(messages), True
            self.count_error(exc)
            self.warn_once("disk", f"MQTT spool {self.spool.path}: cannot write ({exc.strerror or exc}); "
                                   "messages that cannot be spooled are dropped and counted")
        refused = sum(1 for sid in ids if sid is None)
        if refused:
            with self._lock:
                self._spool_dropped += refused
        if refused and not disk_error:
            self.warn_once("full", f"MQTT spool {self.spool.path} is full ({self.config.spool_mb:g} MB of "
                                   f"unacknowledged messages; broker {self.url} away?): new messages are dropped "
                                   "and counted until it drains")
        self._backlog.extend(sid for sid in ids if sid is not None)
        self._pump()

    def _publish_qos0(self, topic: str, payload: str, retain: bool = False) -> None:
        if not self._connected.is_set():
            with self._lock:
                self._stats.dropped += 1
            self.warn_once("qos0", f"MQTT broker {self.url} is away: QoS 0 messages published meanwhile are "
                                   "dropped and counted (use qos = 1 to spool them)")
            return
        info = self._client.publish(topic, payload, qos=0, retain=retain)
        if info.rc == 0:
            self.count_sent()
        else:
            with self._lock:
                self._stats.dropped += 1

    def _pump(self) -> None:
        """Hand spooled messages to paho while connected and the in-flight window has room."""
        while self._backlog and self._connected.is_set() and len(self._inflight) < self.config.max_inflight:
            sid = self._backlog.popleft()
            msg = self.spool.get(sid)
            if msg is None:
                continue
            info = self._client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)
            with self._lock:
                if self._early.pop(info.mid, None) is not None:
                    self._stats.sent += 1
                    acked = True
                else:
                    self._inflight[info.mid] = sid
                    acked = False
            if acked:
                self._acked(sid)

    def idle(self) -> None:
        if self.spool is None:
            return
        self._pump()
        self.spool.compact()
        if self._early:
            old = time.monotonic() - 60.0
            with self._lock:
                for mid in [m for m, t in self._early.items() if t < old]:
                    del self._early[mid]

    def fill_stats(self, stats: events.OutputStats) -> None:
        stats.spool_depth = len(self.spool) if self.spool is not None else 0
        stats.spool_dropped = self._spool_dropped

    def _state(self, state: str) -> str:
        return json.dumps({"station": self.station, "state": state, "time": round(time.time(), 3),
                           "model_sha256": self.model_sha256, "labels": self.labels}, separators=(",", ":"))

    def describe(self) -> str:
        return f"MQTT {self.url} qos {self.config.qos}"


def create(config: Config, *, station: str, labels: list[str], model_sha256: str, state_dir: Path,
           name: str = KIND, start_offline: bool = False) -> MQTTOutput:
    """An MQTT output (not started: the engine calls ``start()``)."""
    _validate(config)
    return MQTTOutput(config, station=station, labels=labels, model_sha256=model_sha256, state_dir=state_dir,
                      name=name, start_offline=start_offline)


def check(config: Config, timeout: float = 5.0, name: str = KIND) -> events.Reachability:
    """Connect to the broker with the configured credentials and TLS, wait for its answer, and disconnect."""
    from edgecnn.errors import EdgeCNNError

    try:
        _validate(config)
        paho = _import_paho()
    except EdgeCNNError as exc:
        return events.Reachability(name, False, str(exc))
    url = broker_url(config)
    answer: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        answer["reason"] = reason
        done.set()

    client = _client(paho, config, f"edgecnn-check-{int(time.time() * 1000) % 10**9}")
    client.on_connect = on_connect
    try:
        client.connect(config.host, config.port, keepalive=max(5, int(timeout) + 1))
    except (OSError, ValueError) as exc:
        return events.Reachability(name, False, f"MQTT broker {url}: cannot connect "
                                                f"({getattr(exc, 'strerror', None) or exc})")
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    reason = answer.get("reason")
    if reason is None:
        return events.Reachability(name, False, f"MQTT broker {url}: no answer within {timeout:g} s")
    if reason.is_failure:
        return events.Reachability(name, False, f"MQTT broker {url} refused the connection: {reason}")
    return events.Reachability(name, True, f"MQTT broker {url} accepted the connection")
