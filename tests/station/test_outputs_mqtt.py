"""The MQTT output against a real mosquitto broker: messages, retained state, last will, credentials, TLS, the spool
across broker restarts, a cut network and station restarts, and the 1,000-decision fault test."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from brokers import MOSQUITTO, Mosquitto, Proxy, Subscriber, decision, free_port, self_signed

from edgecnn.errors import ConfigError, EdgeCNNError, SourceError
from edgecnn.station import events
from edgecnn.station.outputs import mqtt
from edgecnn.station.outputs.spool import Spool

pytest.importorskip("paho.mqtt.client")
needs_broker = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed: apt-get install mosquitto "
                                                            "(make system-deps installs it)")


def make(tmp_path: Path, port: int, *, start_offline: bool = False, **kw) -> mqtt.MQTTOutput:
    cfg = mqtt.Config(host="127.0.0.1", port=port, reconnect_max_s=1.0, keepalive=5, **kw)
    out = mqtt.create(cfg, station="line1", labels=["ok", "ng"], model_sha256="ab" * 32, state_dir=tmp_path / "state",
                      start_offline=start_offline)
    out.start()
    return out


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def seqs(sub: Subscriber) -> list[int]:
    return [p["seq"] for p in sub.payloads("/decision")]


@needs_broker
def test_decisions_alarms_state_and_clean_close(tmp_path, broker):
    sub = Subscriber(broker.port, "edgecnn/#")
    out = make(tmp_path, broker.port)
    for i in range(1, 6):
        out.submit(decision(i, source="cam/a+b", verdict="ng" if i == 3 else "ok", reject=i == 3))
    out.alarm(events.Alarm("frozen", "cam", "frame", True, 0.0, 1.0, detail="same frame for 10 s"))
    assert sub.wait_for(lambda: len(seqs(sub)) == 5 and sub.payloads("/alarm/frozen"))
    topics = {t for t, _, _ in sub.messages}
    assert "edgecnn/line1/cam_a_b/frame/decision" in topics  # '/', '+' in a name never add topic levels
    first = sub.payloads("/decision")[0]
    assert first["station"] == "line1" and first["seq"] == 1 and first["model_sha256"] == "ab" * 32
    assert sub.payloads("/decision")[2]["reject"] is True
    assert sub.payloads("/alarm/frozen")[0]["detail"] == "same frame for 10 s"
    assert sub.payloads("/state")[0]["state"] == "online"
    out.close(5)
    st = out.stats()
    assert (st.sent, st.dropped, st.spool_depth, st.errors) == (6, 0, 0, 0)
    assert sub.wait_for(lambda: sub.payloads("/state")[-1]["state"] == "offline")
    sub.close()
    late = Subscriber(broker.port, "edgecnn/line1/state", client_id="late")  # retained: a newcomer sees it
    assert late.wait_for(lambda: late.messages and late.messages[0][2])
    assert json.loads(late.messages[0][1])["state"] == "offline"
    late.close()
    spool = tmp_path / "state" / "mqtt-mqtt.spool"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600


@needs_broker
def test_last_will_marks_the_station_offline_when_the_link_dies(tmp_path, broker):
    sub = Subscriber(broker.port, "edgecnn/line1/state")
    proxy = Proxy(broker.port)
    out = make(tmp_path, proxy.port)
    assert sub.wait_for(lambda: sub.payloads() and sub.payloads()[-1]["state"] == "online")
    proxy.cut()  # no DISCONNECT reaches the broker: it publishes the will
    assert sub.wait_for(lambda: sub.payloads()[-1]["state"] == "offline")
    proxy.restore()
    assert sub.wait_for(lambda: sub.payloads()[-1]["state"] == "online")
    out.close(2)
    proxy.close()
    sub.close()


@needs_broker
def test_credentials_wrong_password_is_one_line_without_the_password(tmp_path, capfd):
    b = Mosquitto(tmp_path / "auth", users={"plc": "s3cr3t-pw"}).start()
    try:
        with pytest.raises(SourceError) as err:
            make(tmp_path, b.port, username="plc", password="wrong-pw-123")
        msg = str(err.value)
        assert "refused" in msg and "wrong-pw-123" not in msg and "mqtt://***:***@127.0.0.1" in msg
        bad = mqtt.Config(host="127.0.0.1", port=b.port, username="plc", password="wrong-pw-123")
        assert "wrong-pw-123" not in repr(bad)
        found = mqtt.check(bad)
        assert not found.ok and "refused" in found.detail and "wrong-pw-123" not in found.detail
        good = mqtt.Config(host="127.0.0.1", port=b.port, username="plc", password="s3cr3t-pw")
        assert mqtt.check(good).ok
        sub = Subscriber(b.port, "edgecnn/#", username="plc", password="s3cr3t-pw")
        out = make(tmp_path, b.port, username="plc", password="s3cr3t-pw")
        out.submit(decision(1))
        assert sub.wait_for(lambda: seqs(sub) == [1])
        assert "s3cr3t-pw" not in out.describe()
        out.close(2)
        sub.close()
    finally:
        b.stop()
    captured = capfd.readouterr()
    assert "s3cr3t-pw" not in captured.out + captured.err and "wrong-pw-123" not in captured.out + captured.err


@needs_broker
def test_tls_with_the_brokers_ca_and_insecure(tmp_path):
    pytest.importorskip("cryptography")
    cert, key = self_signed(tmp_path)
    b = Mosquitto(tmp_path / "tls", tls=(cert, key)).start()
    try:
        sub = Subscriber(b.port, "edgecnn/#", tls_ca=cert)
        assert mqtt.check(mqtt.Config(host="127.0.0.1", port=b.port, tls=True, ca=str(cert))).ok
        unverified = mqtt.check(mqtt.Config(host="127.0.0.1", port=b.port, tls=True))  # system CAs don't know it
        assert not unverified.ok
        out = make(tmp_path, b.port, tls=True, ca=str(cert))
        out.submit(decision(1))
        out2 = make(tmp_path / "2", b.port, tls=True, insecure=True, client_id="second")
        out2.submit(decision(2))
        assert sub.wait_for(lambda: sorted(seqs(sub)) == [1, 2])
        out.close(2)
        out2.close(2)
        sub.close()
    finally:
        b.stop()


def test_bad_config_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^topic: .*unknown placeholder \{camera\}"):
        mqtt.create(mqtt.Config(topic="x/{camera}"), station="s", labels=[], model_sha256="", state_dir=tmp_path)
    with pytest.raises(ConfigError, match="wildcards"):
        mqtt.create(mqtt.Config(topic="x/#"), station="s", labels=[], model_sha256="", state_dir=tmp_path)
    with pytest.raises(ConfigError, match="^ca: .*does not exist"):
        mqtt.create(mqtt.Config(tls=True, ca=str(tmp_path / "nope.pem")), station="s", labels=[], model_sha256="",
                    state_dir=tmp_path)
    with pytest.raises(ConfigError, match="username"):
        mqtt.create(mqtt.Config(password="x"), station="s", labels=[], model_sha256="", state_dir=tmp_path)


@needs_broker
def test_unreachable_at_start_fails_or_spools_with_start_offline(tmp_path):
    port = free_port()
    with pytest.raises(SourceError, match="cannot be reached .*check host, port and network"):
        make(tmp_path, port)
    assert not mqtt.check(mqtt.Config(host="127.0.0.1", port=port)).ok
    out = make(tmp_path, port, start_offline=True)
    for i in range(1, 21):
        out.submit(decision(i))
    deadline = time.monotonic() + 5
    while out.stats().spool_depth < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert out.stats().spool_depth == 20 and not out.stats().connected
    b = Mosquitto(tmp_path / "late", port=port).start()
    try:
        sub = Subscriber(port, "edgecnn/#")
        assert sub.wait_for(lambda: sorted(set(seqs(sub))) == list(range(1, 21)), timeout=20)
        out.close(5)
        assert out.stats().spool_depth == 0
        sub.close()
    finally:
        b.stop()


@needs_broker
def test_spool_carries_messages_over_a_station_restart(tmp_path, broker):
    sub = Subscriber(broker.port, "edgecnn/#")
    broker.stop()
    out = make(tmp_path, broker.port, start_offline=True)
    for i in range(1, 11):
        out.submit(decision(i))
    out.close(1)  # the broker is away: all 10 stay spooled
    assert out.stats().spool_depth == 10
    spool_file = tmp_path / "state" / "mqtt-mqtt.spool"
    left = Spool(spool_file, 10**6)
    assert len(left) == 10
    left.close()
    broker.start()
    out = make(tmp_path, broker.port)  # the next start sends them first
    out.submit(decision(11))
    assert sub.wait_for(lambda: sorted(set(seqs(sub))) == list(range(1, 12)), timeout=20)
    out.close(5)
    assert out.stats().spool_depth == 0
    sub.close()


@needs_broker
def test_full_spool_counts_and_warns_once(tmp_path, capfd):
    out = make(tmp_path, free_port(), start_offline=True, spool_mb=0.002)  # 2,000 bytes: a handful of messages
    for i in range(1, 41):
        out.submit(decision(i))
    out.close(1)
    st = out.stats()
    assert st.spool_depth > 0 and st.spool_dropped > 0 and st.spool_depth + st.spool_dropped == 40
    err = capfd.readouterr().err
    assert err.count("is full") == 1


@needs_broker
def test_qos0_while_the_broker_is_away_is_dropped_and_counted(tmp_path, broker):
    sub = Subscriber(broker.port, "edgecnn/#")
    out = make(tmp_path, broker.port, qos=0)
    out.submit(decision(1))
    assert sub.wait_for(lambda: seqs(sub) == [1])
    broker.stop()
    assert sub.wait_for(lambda: not out.stats().connected, timeout=10)
    for i in range(2, 12):
        out.submit(decision(i))
    out.close(2)
    st = out.stats()
    assert st.dropped == 10 and st.spool_depth == 0 and not (tmp_path / "state" / "mqtt-mqtt.spool").exists()
    sub.close()


def test_spool_file_skips_a_torn_line_and_compacts(tmp_path):
    path = tmp_path / "s.spool"
    sp = Spool(path, 10**6)
    ids = [sp.put("t", json.dumps({"seq": i})) for i in range(5)]
    sp.ack(ids[0])
    sp.ack(ids[1])
    sp.close()
    with open(path, "ab") as fh:
        fh.write(b'{"i": 99, "t": "t", "p": "half')  # a write cut short by a crash
    again = Spool(path, 10**6)
    assert again.ids() == ids[2:] and again.skipped == 1
    assert again.file_bytes == again.pending_bytes  # rewritten at load: acked and torn lines gone
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    nid = again.put("t", "x")
    assert nid > ids[-1]  # ids keep growing across restarts
    again.close()


@needs_broker
def test_fault_1000_decisions_two_broker_restarts_and_a_network_cut(tmp_path, broker):
    """QoS 1: every sequence number arrives although the broker restarts twice and the network is cut once."""
    sub = Subscriber(broker.port, "edgecnn/#")
    proxy = Proxy(broker.port)
    out = make(tmp_path, proxy.port, max_inflight=50)
    n = 1000
    for i in range(1, n + 1):
        out.submit(decision(i))
        if i in (250, 750):
            broker.restart(0.3)
        elif i == 500:
            proxy.cut()
            time.sleep(1.0)
            proxy.restore()
        time.sleep(0.004)
    got_all = sub.wait_for(lambda: set(seqs(sub)) >= set(range(1, n + 1)), timeout=45)
    out.close(5)
    received = seqs(sub)
    missing = sorted(set(range(1, n + 1)) - set(received))
    duplicates = len(received) - len(set(received))
    st = out.stats()
    print(f"\nfault test: {n} decisions, QoS 1, broker restarted twice, network cut once: received "
          f"{len(set(received))}/{n} distinct, {duplicates} duplicate(s), missing {missing[:10]}; output stats "
          f"sent={st.sent} errors={st.errors} dropped={st.dropped} spool_depth={st.spool_depth}; "
          f"proxy connections={proxy.connections}")
    assert got_all and not missing, broker.log()[-2000:]
    assert st.dropped == 0 and st.spool_dropped == 0 and st.spool_depth == 0
    assert proxy.connections >= 4  # first connect + a reconnect after each of the three faults
    proxy.close()
    sub.close()


def test_mosquitto_is_in_the_makefiles_debian_packages():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    line = next(x for x in makefile.splitlines() if x.startswith("DEB_PACKAGES"))
    assert "mosquitto" in line.split()


def _on_disk(path) -> list[str]:
    """Payloads pending in a spool file, read as a restart would (without opening a second Spool on it)."""
    pending: dict[int, str] = {}
    for line in path.read_bytes().splitlines():
        rec = json.loads(line)
        if "a" in rec:
            pending.pop(rec["a"], None)
        else:
            pending[rec["i"]] = rec["p"]
    return list(pending.values())


def test_spool_acks_reach_the_disk_with_the_next_write_or_sync(tmp_path):
    path = tmp_path / "s.spool"
    sp = Spool(path, 10**6)
    ids = sp.put_many([("t", f"m{i}", False) for i in range(4)])
    sp.ack(ids[0])
    assert _on_disk(path) == ["m0", "m1", "m2", "m3"]  # a crash now: m0 is sent again (a QoS 1 duplicate)
    sp.sync()
    assert _on_disk(path) == ["m1", "m2", "m3"]
    sp.ack(ids[1])
    sp.put("t", "m4")  # the ack goes out with the next write
    assert _on_disk(path) == ["m2", "m3", "m4"]
    with pytest.raises(EdgeCNNError, match="in use by another process"):
        Spool(path, 10**6)  # a second station on the same state folder
    sp.close()
    again = Spool(path, 10**6)
    assert [again.get(i).payload for i in again.ids()] == ["m2", "m3", "m4"]
    again.close()
    small = Spool(tmp_path / "small.spool", 120)
    got = small.put_many([("t", "x" * 40, False), ("t", "y" * 40, False), ("t", "z", False)])
    assert got[0] is not None and got[1] is None and got[2] is not None  # what fits goes in, in order


@needs_broker
def test_retained_decisions_reach_a_late_subscriber(tmp_path, broker):
    out = make(tmp_path, broker.port, retain=True)
    out.submit(decision(1, source="cam", region="left", verdict="ng"))
    out.submit(decision(2, source="cam", region="left", verdict="ok"))
    out.close(5)
    assert out.stats().sent == 2
    late = Subscriber(broker.port, "edgecnn/line1/cam/left/decision", client_id="late-retained")
    assert late.wait_for(lambda: late.messages)
    topic, payload, retained = late.messages[0]
    assert retained and json.loads(payload)["seq"] == 2  # the topic's latest
    late.close()


def test_a_disk_that_refuses_the_spool_is_one_line_and_counted(tmp_path):
    """The spool file hits a file-size limit (as a full disk would refuse it): whole lines only, counted, one line."""
    import subprocess
    import sys

    code = f"""
import resource, signal, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pathlib import Path
from brokers import decision, free_port
from edgecnn.station.outputs import mqtt
from edgecnn.station.outputs.spool import Spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
cfg = mqtt.Config(host="127.0.0.1", port=free_port(), reconnect_max_s=1.0)
out = mqtt.create(cfg, station="s", labels=[], model_sha256="", state_dir=Path({str(tmp_path)!r}), start_offline=True)
out.start()
for i in range(1, 41):
    out.submit(decision(i))
    time.sleep(0.002)
out.close(1)
st = out.stats()
print("STATS", st.spool_depth, st.spool_dropped)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    depth, refused = map(int, run.stdout.split("STATS")[1].split())
    assert depth > 0 and refused > 0 and depth + refused == 40
    assert run.stderr.count("cannot write") == 1 and "is full" not in run.stderr and "Traceback" not in run.stderr
    for line in (tmp_path / "mqtt-mqtt.spool").read_bytes().splitlines(keepends=True):
        assert line.endswith(b"\n") and json.loads(line)  # whole lines only
