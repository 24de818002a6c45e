"""Modbus TCP server output (pymodbus 3.x): coils and registers a PLC polls for the verdict, counts and a heartbeat.

The server runs its own asyncio loop in a thread. Every table is read-only for clients (a write is answered with
ILLEGAL ADDRESS); values are taken from the output's state at each request, so a read always sees the latest
decision the worker has applied. Addresses are 0-based (PLC tools that count from 1 show coil 0 as 00001 and
holding register 0 as 40001). 32-bit values are two registers, high word first. The map (also in the README):

Coils (FC1) and discrete inputs (FC2), the same bits in both:

===  ==========================================================
0    reject: the latest followed decision means reject
1    unsure: the latest followed verdict is "unsure"
2    ok: the latest followed decision is neither reject nor unsure
3    alarm: at least one alarm is active
===  ==========================================================

Holding registers (FC3) and input registers (FC4), the same words in both:

=======  ====================================================================================
0        heartbeat: seconds since the output started, wraps at 65536 (stops if the worker dies)
1        verdict code of the latest followed decision (see below)
2        label code: the model's top-1 label index + 1 (0: none)
3        score x 10000 (0-10000)
4-5      last sequence number (u32)
6-7      followed decisions (u32)
8-9      rejects (u32)
10-11    unsure (u32)
12-13    ok: neither reject nor unsure (u32)
14       active alarms
15       number of verdict codes V (= labels + 3)
16+2k    decisions with verdict code k, k = 0 .. V-1 (u32 each)
=======  ====================================================================================

Verdict codes: 0 unsure, 1..N the model's labels in order, N+1 "ok", N+2 "reject", 65535 any other verdict.
"""

from __future__ import annotations

import threading
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

KIND = "modbus"
COILS = ("reject", "unsure", "ok", "alarm")
REG_COUNTS = 16  # first register of the per-verdict counts
OTHER = 0xFFFF


@dataclass(frozen=True)
class Config:
    """An ``[[outputs]]`` entry of a station file with ``kind = "modbus"`` (checked on construction)."""

    def __post_init__(self) -> None:
        _validate(self)

    host: str = field("0.0.0.0", "Address to listen on (0.0.0.0: every interface; 127.0.0.1: this box only).")
    port: int = field(5020, "TCP port; the standard 502 needs root or CAP_NET_BIND_SERVICE (the systemd unit can "
                            "grant it).", min=1, max=65535)
    unit_id: int = field(0, "Modbus unit (slave) id to answer; 0 answers every id.", min=0, max=247)
    follow: str = field("station", "Which decisions set the verdict registers: 'station' (the station verdict), '*' "
                                   "all, a source name, or 'source/region'.")
    queue_size: int = field(1000, "Events waiting to be applied; what overflows is dropped and counted.",
                            min=1, max=1_000_000)


CONFIG = Config


def _u32(value: int) -> list[int]:
    value &= 0xFFFFFFFF
    return [value >> 16, value & 0xFFFF]


class ModbusOutput(ServerOutput):
    """Serves the station's state as Modbus TCP coils and registers (see the module's docstring)."""

    kind = KIND
    needs = ("pymodbus", "modbus", "for the Modbus output")

    def __init__(self, config: Config, *, station: str, labels: list[str], name: str = KIND) -> None:
        super().__init__(name, config.queue_size)
        self.config = config
        self.station = station
        self.labels = list(labels)
        self.codes: dict[str, int] = {events.UNSURE: 0}
        for i, label in enumerate(self.labels):
            self.codes.setdefault(label, i + 1)
        self.codes.setdefault("ok", len(self.labels) + 1)
        self.codes.setdefault("reject", len(self.labels) + 2)
        self.n_codes = len(self.labels) + 3
        self._state_lock = threading.Lock()
        self._coils = [False] * len(COILS)
        self._regs = [0] * (REG_COUNTS + 2 * self.n_codes)
        self._regs[15] = self.n_codes
        self._counts = {"total": 0, "reject": 0, "unsure": 0, "ok": 0}
        self._per_code = [0] * self.n_codes
        self._alarms: set[tuple[str, str, str]] = set()
        self._t0 = time.monotonic()
        self._beat = 0

    # ------------------------------------------------------------------ the server's loop
    def start_error(self, why: str) -> str:
        return (f"Modbus server cannot listen on {self.config.host}:{self.config.port} ({why}): pick a free port "
                "(the output's port), or grant port 502 to the service")

    def _closing(self) -> Any:
        return self._server.shutdown()

    async def _serve(self) -> None:
        import logging

        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        logging.getLogger("pymodbus").setLevel(logging.ERROR)  # its deprecation notices are not the user's business
        n_regs = len(self._regs)
        bits = SimData(0, count=16, values=False, datatype=DataType.BITS, readonly=True)
        regs = SimData(0, count=n_regs, values=0, datatype=DataType.REGISTERS, readonly=True)
        device = SimDevice(id=self.config.unit_id, simdata=([bits], [bits], [regs], [regs]),
                           use_bit_addressing=True, action=self._action)  # coil n is bit n (not register n)
        self._server = ModbusTcpServer(device, address=(self.config.host, self.config.port))
        await self._server.serve_forever(background=True)

    async def _action(self, func_code: int, start: int, address: int, count: int, registers: list[int],
                      values: Any) -> Any:
        """Fill the requested table from the output's state before pymodbus answers (any request, any client);
        refuse every write with ILLEGAL ADDRESS (pymodbus' read-only flag refuses register writes, not coil ones)."""
        if values is not None or func_code in (5, 6, 15, 16):
            from pymodbus.constants import ExcCodes

            return ExcCodes.ILLEGAL_ADDRESS
        with self._state_lock:
            if func_code in (1, 2, 5, 15):
                word = sum(1 << i for i, bit in enumerate(self._coils) if bit)
                registers[0] = word
            else:
                regs = list(self._regs)
                regs[0] = self._beat & 0xFFFF
                registers[: len(regs)] = regs
        return None

    # ------------------------------------------------------------------ the worker
    def idle(self) -> None:
        self._beat = int(time.monotonic() - self._t0)

    def handle(self, item: events.Decision | events.Alarm) -> None:
        self._beat = int(time.monotonic() - self._t0)
        if isinstance(item, events.Alarm):
            key = (item.name, item.source, item.region)
            (self._alarms.add if item.active else self._alarms.discard)(key)
            with self._state_lock:
                self._coils[3] = bool(self._alarms)
                self._regs[14] = min(len(self._alarms), 0xFFFF)
            self.count_sent()
            return
        if not matches(item, self.config.follow):
            return
        unsure = item.verdict == events.UNSURE and not item.reject
        kind = "reject" if item.reject else "unsure" if unsure else "ok"
        code = self.codes.get(item.verdict, OTHER)
        label = self.labels.index(item.label) + 1 if item.label in self.labels else 0
        score = item.score if item.score == item.score else 0.0  # NaN -> 0
        with self._state_lock:
            self._counts["total"] += 1
            self._counts[kind] += 1
            if code != OTHER:
                self._per_code[code] += 1
            self._coils[0:3] = [kind == "reject", kind == "unsure", kind == "ok"]
            r = self._regs
            r[1], r[2], r[3] = code, label, max(0, min(10000, round(score * 10000)))
            r[4:6] = _u32(item.seq)
            r[6:8] = _u32(self._counts["total"])
            r[8:10] = _u32(self._counts["reject"])
            r[10:12] = _u32(self._counts["unsure"])
            r[12:14] = _u32(self._counts["ok"])
            for k, n in enumerate(self._per_code):
                r[REG_COUNTS + 2 * k: REG_COUNTS + 2 * k + 2] = _u32(n)
        self.count_sent()

    def describe(self) -> str:
        return f"Modbus TCP server {self.config.host}:{self.config.port} unit {self.config.unit_id or 'any'}"


def _validate(config: Config) -> None:
    check_follow(config.follow)


def create(config: Config, *, station: str, labels: list[str], model_sha256: str, state_dir: Path,
           name: str = KIND, start_offline: bool = False) -> ModbusOutput:
    """A Modbus TCP server output (not started: ``start()`` binds the port)."""
    _validate(config)
    return ModbusOutput(config, station=station, labels=labels, name=name)


def check(config: Config, name: str = KIND) -> events.Reachability:
    """Whether the server's port can be bound now."""
    return check_server(name, lambda: _validate(config), config.host, config.port, *ModbusOutput.needs)
