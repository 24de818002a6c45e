"""OPC UA server output (asyncua): nodes a PLC or SCADA client reads or subscribes to.

The server runs its own asyncio loop in a thread. Under ``Objects`` it holds one object named after the station,
with string NodeIds in the station's namespace (``ns=<index of namespace>;s=<station>.<path>``), so a client can
address them without browsing:

=====================================  =========  ===============================================================
node                                   type       value
=====================================  =========  ===============================================================
``<station>.Verdict``                  String     verdict of the latest followed decision (``follow``)
``<station>.Reject``                   Boolean    that decision means reject
``<station>.Label`` / ``.Score``       String /   the model's top-1 label and score on that decision's frame
                                       Double
``<station>.LastSeq``                  UInt64     its sequence number
``<station>.Decisions``                UInt64     followed decisions so far
``<station>.Counts.<verdict>``         UInt64     followed decisions per verdict (labels, unsure, ok, reject; others
                                                  are added when first seen)
``<station>.Health``                   String     ``ok``, or the active alarms (``frozen cam/frame; drift ...``)
``<station>.AlarmActive``              Boolean    at least one alarm is active
``<station>.Heartbeat``                UInt32     seconds since the output started (stops if its worker dies)
``<station>.ModelSha256``              String     SHA-256 of the model file making the decisions
``<station>.Labels``                   String[]   the model's labels
``<station>.Sources.<src>.<region>.*`` (same)     Verdict, Reject, Label, Score, LastSeq of every source and region,
                                                  created on their first decision
=====================================  =========  ===============================================================

Nodes hold the latest state. When decisions come faster than the server applies them, the events waiting are
folded into one update (each node written once with its newest value; counts count every decision), so a
client polling or subscribing sees the state as of the newest decision; a consumer that needs every single
decision reads MQTT or the rows. Nodes are read-only for clients. The endpoint has no security (``SecurityPolicy#None``): keep it on the line's
network, as a PLC's own OPC UA server usually is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.station import events
from edgecnn.station.outputs.base import (
    ServerOutput,
    check_follow,
    check_server,
    field,
    matches,
)

KIND = "opcua"


@dataclass(frozen=True)
class Config:
    """An ``[[outputs]]`` entry of a station file with ``kind = "opcua"`` (checked on construction)."""

    def __post_init__(self) -> None:
        _validate(self)

    host: str = field("0.0.0.0", "Address to listen on (0.0.0.0: every interface; 127.0.0.1: this box only).")
    port: int = field(4840, "TCP port (4840 is OPC UA's registered port).", min=1, max=65535)
    path: str = field("/edgecnn", "Path of the endpoint URL: opc.tcp://<host>:<port><path>.")
    namespace: str = field("urn:edgecnn:station", "Namespace URI of the station's nodes.")
    follow: str = field("station", "Which decisions set the top-level nodes (Verdict, Reject, Counts ...): "
                                   "'station' (the station verdict), '*' all, a source name, or 'source/region'.")
    queue_size: int = field(1000, "Events waiting to be applied; what overflows is dropped and counted.",
                            min=1, max=1_000_000)


CONFIG = Config


def endpoint(config: Config) -> str:
    path = config.path if config.path.startswith("/") else "/" + config.path
    return f"opc.tcp://{config.host}:{config.port}{path}"


def _name(text: str) -> str:
    return "".join("_" if c in ".;/ " else c for c in str(text)) or "_"


class OPCUAOutput(ServerOutput):
    """An asyncua server exposing the station's verdict, counts and health (see the module's docstring)."""

    kind = KIND
    needs = ("asyncua", "opcua", "for the OPC UA output")
    serve_timeout = 60.0
    stop_timeout = 10.0
    batch_max = 256  # under a backlog, events taken together are folded: each node is written once

    def __init__(self, config: Config, *, station: str, labels: list[str], model_sha256: str,
                 name: str = KIND) -> None:
        super().__init__(name, config.queue_size)
        self.config = config
        self.station = station
        self.labels = list(labels)
        self.model_sha256 = model_sha256
        self.url = endpoint(config)
        self.root = _name(station)
        self.ns = 0
        self._ua: Any = None
        self._nodes: dict[str, Any] = {}
        self._counts: dict[str, int] = {}
        self._decisions = 0
        self._alarms: dict[tuple[str, str, str], str] = {}
        self._t0 = time.monotonic()
        self._beat = -1

    # ------------------------------------------------------------------ the server's loop
    def start_error(self, why: str) -> str:
        return f"OPC UA server cannot start on {self.url} ({why}): pick a free port (the output's port)"

    def _closing(self) -> Any:
        return self._server.stop()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        assert self._loop is not None
        return self._loop.call(coro, timeout)

    async def _serve(self) -> None:
        import logging

        from asyncua import Server, ua

        for logger in ("asyncua", "asyncua.server", "asyncua.common"):
            logging.getLogger(logger).setLevel(logging.ERROR)  # asyncua logs every session at INFO/WARNING
        self._ua = ua
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name(f"edgecnn station {self.station}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.ns = await server.register_namespace(self.config.namespace)
        obj = await server.nodes.objects.add_object(self._id(""), ua.QualifiedName(self.root, self.ns))
        self._nodes[""] = obj
        V = ua.VariantType
        for path, value, vtype in (("Verdict", "", V.String), ("Reject", False, V.Boolean), ("Label", "", V.String),
                                   ("Score", 0.0, V.Double), ("LastSeq", 0, V.UInt64), ("Decisions", 0, V.UInt64),
                                   ("Health", "ok", V.String), ("AlarmActive", False, V.Boolean),
                                   ("Heartbeat", 0, V.UInt32), ("ModelSha256", self.model_sha256, V.String),
                                   ("Labels", self.labels, V.String)):
            self._nodes[path] = await obj.add_variable(self._id(path), ua.QualifiedName(path, self.ns), value, vtype)
        self._nodes["Counts"] = await obj.add_folder(self._id("Counts"), ua.QualifiedName("Counts", self.ns))
        self._nodes["Sources"] = await obj.add_folder(self._id("Sources"), ua.QualifiedName("Sources", self.ns))
        for verdict in [*self.labels, events.UNSURE, "ok", "reject"]:
            await self._count_node(verdict)
        await server.start()
        self._server = server

    def _id(self, path: str) -> Any:
        return self._ua.NodeId(f"{self.root}.{path}" if path else self.root, self.ns)

    async def _count_node(self, verdict: str) -> Any:
        key = f"Counts.{_name(verdict)}"
        if key not in self._nodes:
            ua = self._ua
            self._nodes[key] = await self._nodes["Counts"].add_variable(
                self._id(key), ua.QualifiedName(_name(verdict), self.ns), 0, ua.VariantType.UInt64)
            self._counts.setdefault(verdict, 0)
        return self._nodes[key]

    async def _region_nodes(self, source: str, region: str) -> str:
        ua = self._ua
        src = f"Sources.{_name(source)}"
        if src not in self._nodes:
            self._nodes[src] = await self._nodes["Sources"].add_object(self._id(src), ua.QualifiedName(_name(source), self.ns))
        key = f"{src}.{_name(region)}"
        if key not in self._nodes:
            obj = await self._nodes[src].add_object(self._id(key), ua.QualifiedName(_name(region), self.ns))
            self._nodes[key] = obj
            V = ua.VariantType
            for path, value, vtype in (("Verdict", "", V.String), ("Reject", False, V.Boolean),
                                       ("Label", "", V.String), ("Score", 0.0, V.Double), ("LastSeq", 0, V.UInt64)):
                self._nodes[f"{key}.{path}"] = await obj.add_variable(self._id(f"{key}.{path}"),
                                                                     ua.QualifiedName(path, self.ns), value, vtype)
        return key

    def _fold(self, item: events.Decision | events.Alarm, writes: dict[str, tuple[Any, Any]],
              regions: dict[tuple[str, str], None]) -> None:
        """Apply one event to the output's state and to ``writes`` (node path -> (value, variant type)): of several
        events taken at once, each node gets its newest value; counts count every one."""
        V = self._ua.VariantType
        if isinstance(item, events.Alarm):
            key = (item.name, item.source, item.region)
            if item.active:
                self._alarms[key] = f"{item.name} {item.source}/{item.region}"
            else:
                self._alarms.pop(key, None)
            writes["Health"] = ("; ".join(self._alarms.values()) or "ok", V.String)
            writes["AlarmActive"] = (bool(self._alarms), V.Boolean)
            return
        score = float(item.score) if item.score == item.score else 0.0
        regions[(item.source, item.region)] = None
        key = f"Sources.{_name(item.source)}.{_name(item.region)}"
        for prefix in ([key, ""] if matches(item, self.config.follow) else [key]):
            dot = f"{prefix}." if prefix else ""
            writes[f"{dot}Verdict"] = (item.verdict, V.String)
            writes[f"{dot}Reject"] = (bool(item.reject), V.Boolean)
            writes[f"{dot}Label"] = (item.label, V.String)
            writes[f"{dot}Score"] = (score, V.Double)
            writes[f"{dot}LastSeq"] = (max(0, int(item.seq)), V.UInt64)
            if not prefix:
                self._decisions += 1
                self._counts[item.verdict] = self._counts.get(item.verdict, 0) + 1
                writes[f"Counts.{_name(item.verdict)}"] = (self._counts[item.verdict], V.UInt64)
                writes["Decisions"] = (self._decisions, V.UInt64)

    async def _apply(self, writes: dict[str, tuple[Any, Any]], regions: dict[tuple[str, str], None]) -> None:
        ua = self._ua
        for source, region in regions:
            await self._region_nodes(source, region)
        for path in writes:
            if path.startswith("Counts.") and path not in self._nodes:
                await self._count_node(path[len("Counts."):])
        for path, (value, vtype) in writes.items():
            await self._server.write_attribute_value(self._nodes[path].nodeid, ua.DataValue(ua.Variant(value, vtype)))

    async def _heartbeat(self, beat: int) -> None:
        ua = self._ua
        await self._server.write_attribute_value(self._nodes["Heartbeat"].nodeid,
                                                 ua.DataValue(ua.Variant(beat, ua.VariantType.UInt32)))

    # ------------------------------------------------------------------ the worker
    def handle_batch(self, items: list[events.Decision | events.Alarm]) -> None:
        writes: dict[str, tuple[Any, Any]] = {}
        regions: dict[tuple[str, str], None] = {}
        for item in items:
            self._fold(item, writes, regions)
        self._call(self._apply(writes, regions))
        self.count_sent(len(items))

    def idle(self) -> None:
        beat = int(time.monotonic() - self._t0)
        if beat != self._beat and self._server is not None:
            self._beat = beat
            self._call(self._heartbeat(beat & 0xFFFFFFFF))

    def describe(self) -> str:
        return f"OPC UA server {self.url} (ns {self.config.namespace}, object {self.root})"


def _validate(config: Config) -> None:
    check_follow(config.follow)


def create(config: Config, *, station: str, labels: list[str], model_sha256: str, state_dir: Path,
           name: str = KIND, start_offline: bool = False) -> OPCUAOutput:
    """An OPC UA server output (not started: ``start()`` binds the port)."""
    _validate(config)
    return OPCUAOutput(config, station=station, labels=labels, model_sha256=model_sha256, name=name)


def check(config: Config, name: str = KIND) -> events.Reachability:
    """Whether the server's port can be bound now."""
    return check_server(name, lambda: _validate(config), config.host, config.port, *OPCUAOutput.needs)
