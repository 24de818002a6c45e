"""The GPIO output on its recording backend (this machine has no GPIO): pulse widths, gaps, levels, alarms."""

from __future__ import annotations

import json

import pytest
from brokers import decision

from edgecnn.errors import ConfigError
from edgecnn.station import events
from edgecnn.station.outputs import gpio


def run(tmp_path, cfg, items):
    out = gpio.create(cfg, station="line1", labels=["ok", "ng"], model_sha256="", state_dir=tmp_path)
    out.start()
    for item in items:
        (out.alarm if isinstance(item, events.Alarm) else out.submit)(item)
    out.close(10)
    return out


def station(seq, reject, changed=True):
    return decision(seq, source=events.STATION, region=events.STATION, verdict="reject" if reject else "ok",
                    reject=reject, changed=changed)


def test_reject_pulses_have_the_set_width_and_gap(tmp_path):
    cfg = gpio.Config(backend="record", pulse_ms=40, gap_ms=30)
    items = [station(1, False), station(2, True), station(3, True, changed=False), station(4, False),
             station(5, True), decision(6, source="cam", reject=True, changed=True)]  # not followed
    out = run(tmp_path, cfg, items)
    widths = out.line.pulses()
    assert len(widths) == 2  # seq 2 and 5 turn to reject; 3 is no change; 6 is a region, not the station
    assert all(40 <= w < 40 + 150 for w in widths), widths  # never shorter; longer only by scheduling
    edges = out.line.edges
    rises = [t for t, a in edges if a]
    falls = [t for t, a in edges if not a][1:]  # the first edge is the line set inactive at start
    assert (rises[1] - falls[0]) / 1e6 >= 30  # the gap between pulses
    assert edges[-1][1] is False  # inactive after close
    rec = [json.loads(x) for x in (tmp_path / "gpio-gpio.jsonl").read_text().splitlines()]
    assert [r["active"] for r in rec] == [a for _, a in edges] and rec[1]["level"] == 1
    assert out.stats().sent == 2


def test_every_reject_pulses_and_active_low_is_recorded_as_level_0(tmp_path):
    cfg = gpio.Config(backend="record", pulse_ms=5, gap_ms=0, pulse_on="every", active_low=True, follow="*")
    out = run(tmp_path, cfg, [station(1, True), station(2, True, changed=False),
                              decision(3, source="cam", reject=True, changed=False)])
    assert len(out.line.pulses()) == 3
    rec = [json.loads(x) for x in (tmp_path / "gpio-gpio.jsonl").read_text().splitlines()]
    assert rec[0] == {"t_ns": rec[0]["t_ns"], "active": False, "level": 1}
    assert rec[1]["active"] is True and rec[1]["level"] == 0  # active low: 0 V while active


def test_level_follows_the_latest_decision_and_alarms(tmp_path):
    out = run(tmp_path, gpio.Config(backend="record", mode="level"),
              [station(1, True), station(2, True, changed=False), station(3, False), station(4, True)])
    assert [a for _, a in out.line.edges] == [False, True, False, True, False]  # last: released at close
    alarm = lambda active, name="frozen": events.Alarm(name, "cam", "frame", active, 0, 1)  # noqa: E731
    out = run(tmp_path / "a", gpio.Config(backend="record", mode="level", on="alarm"),
              [alarm(True), alarm(True, "dark"), alarm(False), station(5, True), alarm(False, "dark")])
    assert [a for _, a in out.line.edges] == [False, True, False]
    out = run(tmp_path / "p", gpio.Config(backend="record", on="alarm", pulse_ms=5, gap_ms=0),
              [alarm(True), alarm(True), alarm(False), alarm(True)])
    assert len(out.line.pulses()) == 2  # raised twice; a repeat of an active alarm is no new pulse


def test_a_burst_of_rejects_overflows_the_queue_counted_not_blocking(tmp_path):
    cfg = gpio.Config(backend="record", pulse_ms=200, gap_ms=0, pulse_on="every", queue_size=3)
    out = gpio.create(cfg, station="line1", labels=[], model_sha256="", state_dir=tmp_path)
    out.start()
    for i in range(50):
        out.submit(station(i, True))  # returns at once although each pulse takes 200 ms
    st = out.stats()
    assert st.dropped >= 50 - 3 - 1 and st.queue_depth <= 3
    out.close(5)


def test_real_gpiod_backend_says_what_is_wrong_on_a_machine_without_the_chip(tmp_path):
    pytest.importorskip("gpiod")
    cfg = gpio.Config(chip=str(tmp_path / "gpiochip9"))
    found = gpio.check(cfg)
    assert not found.ok and "not found" in found.detail
    out = gpio.create(cfg, station="s", labels=[], model_sha256="", state_dir=tmp_path)
    with pytest.raises(Exception, match="GPIO chip .*gpiochip9 not found: list the chips"):
        out.start()
    assert gpio.check(gpio.Config(backend="record")).ok
    with pytest.raises(ConfigError, match="mode: expected one of pulse, level; received 'blink'"):
        gpio.create(gpio.Config(mode="blink"), station="s", labels=[], model_sha256="", state_dir=tmp_path)
    with pytest.raises(ConfigError, match="follow"):
        gpio.create(gpio.Config(follow="a/b/c"), station="s", labels=[], model_sha256="", state_dir=tmp_path)
