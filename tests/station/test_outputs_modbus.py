"""The Modbus TCP server output read by pymodbus' own client: coils, registers, counts, heartbeat, read-only."""

from __future__ import annotations

import time

import pytest
from brokers import decision, free_port

from edgecnn.errors import EdgeCNNError
from edgecnn.station import events
from edgecnn.station.outputs import modbus

pytest.importorskip("pymodbus")


def u32(regs, i):
    return (regs[i] << 16) | regs[i + 1]


def test_plc_reads_verdict_counts_and_heartbeat(tmp_path):
    from pymodbus.client import ModbusTcpClient

    port = free_port()
    cfg = modbus.Config(host="127.0.0.1", port=port, unit_id=1)
    assert modbus.check(cfg).ok
    out = modbus.create(cfg, station="line1", labels=["good", "scratch"], model_sha256="", state_dir=tmp_path)
    out.start()
    client = ModbusTcpClient("127.0.0.1", port=port)
    try:
        assert client.connect()
        taken = modbus.check(cfg)
        assert not taken.ok and "cannot listen" in taken.detail
        out.submit(decision(1, source=events.STATION, region=events.STATION, verdict="ok", label="good", score=0.97))
        out.submit(decision(2, source="cam", verdict="scratch", reject=True))  # not followed: station only
        out.submit(decision(3, source=events.STATION, region=events.STATION, verdict="reject", label="scratch",
                            score=0.8123, reject=True))
        out.submit(decision(4, source=events.STATION, region=events.STATION, verdict=events.UNSURE, label="good",
                            score=0.4))
        out.submit(decision(70000, source=events.STATION, region=events.STATION, verdict="reject", label="scratch",
                            score=0.9, reject=True))
        out.alarm(events.Alarm("frozen", "cam", "frame", True, 0.0, 1.0))
        deadline = time.monotonic() + 5
        while out.stats().sent < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        coils = client.read_coils(0, count=4, device_id=1).bits[:4]
        assert coils == [True, False, False, True]  # reject, unsure, ok, alarm
        assert client.read_discrete_inputs(0, count=4, device_id=1).bits[:4] == coils
        assert [client.read_coils(i, count=1, device_id=1).bits[0] for i in range(4)] == coils  # one at a time
        assert client.read_coils(16, count=1, device_id=1).isError()  # beyond the map
        n = 16 + 2 * 5  # 2 labels + unsure/ok/reject
        hr = client.read_holding_registers(0, count=n, device_id=1).registers
        ir = client.read_input_registers(0, count=n, device_id=1).registers
        assert hr[1:] == ir[1:]
        assert hr[1] == 4 and hr[2] == 2 and hr[3] == 9000  # verdict 'reject' = N+2, label 'scratch' = 2
        assert u32(hr, 4) == 70000  # 32-bit, high word first
        assert (u32(hr, 6), u32(hr, 8), u32(hr, 10), u32(hr, 12)) == (4, 2, 1, 1)  # total, reject, unsure, ok
        assert hr[14] == 1 and hr[15] == 5
        assert [u32(hr, 16 + 2 * k) for k in range(5)] == [1, 0, 0, 1, 2]  # unsure, good, scratch, ok, reject
        time.sleep(1.3)
        later = client.read_holding_registers(0, count=1, device_id=1).registers[0]
        assert later > hr[0] or later >= 1  # the heartbeat moves
        refused = client.write_register(1, 0, device_id=1)
        assert refused.isError()  # read-only for clients
        assert client.write_coil(0, False, device_id=1).isError()  # coils too (pymodbus' flag covers registers only)
        assert client.write_coils(0, [False, True], device_id=1).isError()
        assert client.read_coils(0, count=1, device_id=1).bits[0] is True
        assert client.read_holding_registers(1, count=1, device_id=1).registers[0] == 4
        out.alarm(events.Alarm("frozen", "cam", "frame", False, 0.0, 1.0))
        deadline = time.monotonic() + 5
        while client.read_coils(3, count=1, device_id=1).bits[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.read_coils(0, count=4, device_id=1).bits[3] is False
    finally:
        client.close()
        out.close(2)
    assert modbus.check(cfg).ok  # the port is free again


def test_port_in_use_is_one_line(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = modbus.create(modbus.Config(host="127.0.0.1", port=port), station="s", labels=[], model_sha256="",
                            state_dir=tmp_path)
        with pytest.raises(EdgeCNNError, match=f"cannot listen on 127.0.0.1:{port}.*the output's port"):
            out.start()
