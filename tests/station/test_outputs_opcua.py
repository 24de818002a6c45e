"""The OPC UA server output read and subscribed to by asyncua's own client."""

from __future__ import annotations

import asyncio
import time

import pytest
from brokers import decision, free_port

from edgecnn.station import events
from edgecnn.station.outputs import opcua

pytest.importorskip("asyncua")


def test_scada_client_reads_and_subscribes(tmp_path):
    from asyncua import Client

    port = free_port()
    cfg = opcua.Config(host="127.0.0.1", port=port)
    assert opcua.check(cfg).ok
    out = opcua.create(cfg, station="line1", labels=["good", "scratch"], model_sha256="cd" * 32, state_dir=tmp_path)
    out.start()

    class Handler:
        def __init__(self):
            self.values = []

        def datachange_notification(self, node, val, data):
            self.values.append(val)

    async def client_side():
        async with Client(f"opc.tcp://127.0.0.1:{port}/edgecnn", timeout=10) as client:
            ns = await client.get_namespace_index("urn:edgecnn:station")
            node = lambda path: client.get_node(f"ns={ns};s=line1.{path}")  # noqa: E731
            assert await node("ModelSha256").read_value() == "cd" * 32
            assert await node("Labels").read_value() == ["good", "scratch"]
            handler = Handler()
            sub = await client.create_subscription(50, handler)
            await sub.subscribe_data_change(node("Verdict"))
            await asyncio.sleep(0.3)
            out.submit(decision(1, source=events.STATION, region=events.STATION, verdict="ok", label="good"))
            out.submit(decision(2, source="cam", region="left", verdict="scratch", label="scratch", score=0.7,
                                reject=True))
            out.submit(decision(3, source=events.STATION, region=events.STATION, verdict="reject", label="scratch",
                                score=0.8, reject=True))
            out.alarm(events.Alarm("drift", "cam", "frame", True, 0.3, 0.2))
            deadline = time.monotonic() + 10
            while "reject" not in handler.values and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert "reject" in handler.values  # the subscription saw the change
            assert await node("Verdict").read_value() == "reject"
            assert await node("Reject").read_value() is True
            assert await node("LastSeq").read_value() == 3
            assert await node("Decisions").read_value() == 2  # station verdicts only (follow = station)
            assert await node("Counts.reject").read_value() == 1 and await node("Counts.ok").read_value() == 1
            assert abs(await node("Score").read_value() - 0.8) < 1e-9
            assert await node("Sources.cam.left.Verdict").read_value() == "scratch"
            assert await node("Sources.cam.left.LastSeq").read_value() == 2
            deadline = time.monotonic() + 5
            while await node("Health").read_value() == "ok" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert await node("Health").read_value() == "drift cam/frame"
            assert await node("AlarmActive").read_value() is True
            beat = await node("Heartbeat").read_value()
            await asyncio.sleep(1.2)
            assert await node("Heartbeat").read_value() > beat
            await sub.delete()

    try:
        asyncio.run(client_side())
    finally:
        out.close(2)
    st = out.stats()
    assert st.sent == 4 and st.errors == 0 and st.dropped == 0
    assert opcua.check(cfg).ok
