"""What every output kind shares: lazy extras, one-line errors for a missing extra, config metadata the station
validator reads, and an engine thread that is never blocked by an output that is slow or dead."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from brokers import decision

from edgecnn.errors import ConfigError
from edgecnn.station import events
from edgecnn.station.outputs import KINDS, module
from edgecnn.station.outputs.base import QueuedOutput

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = {"mqtt": "paho", "opcua": "asyncua", "modbus": "pymodbus", "gpio": "gpiod"}


def test_importing_every_output_imports_no_client_library():
    code = ("import sys\nfrom edgecnn.station.outputs import KINDS, module\n"
            "for k in KINDS: module(k)\n"
            f"print(sorted(m for m in {sorted(EXTRAS.values())!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", sorted(EXTRAS))
def test_a_missing_extra_is_one_line_naming_the_pip_install(kind, tmp_path):
    blocked = {"mqtt": "paho.mqtt.client", "opcua": "asyncua", "modbus": "pymodbus", "gpio": "gpiod"}[kind]
    code = (f"import sys\nsys.modules[{blocked!r}] = None\n"
            "from pathlib import Path\nfrom edgecnn.errors import EdgeCNNError\n"
            f"from edgecnn.station.outputs import module\nm = module({kind!r})\n"
            f"print(m.check(m.CONFIG()).detail)\n"
            f"o = m.create(m.CONFIG(), station='s', labels=[], model_sha256='', state_dir=Path({str(tmp_path)!r}))\n"
            "try:\n    o.start()\nexcept EdgeCNNError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and all(f"pip install 'edgecnn[{kind}]'" in line for line in lines), lines


@pytest.mark.parametrize("kind", list(KINDS))
def test_config_fields_carry_help_and_defaults(kind):
    mod = module(kind)
    cfg = mod.CONFIG(**({"url": "http://127.0.0.1/hook"} if kind == "webhook" else {}))  # url: required
    assert dataclasses.is_dataclass(cfg) and mod.CONFIG.__dataclass_params__.frozen
    for f in dataclasses.fields(cfg):
        assert len(f.metadata.get("help", "")) > 10, f"{kind}.{f.name} has no help"
        if "choices" in f.metadata:
            assert getattr(cfg, f.name) in f.metadata["choices"]
        if "min" in f.metadata:
            assert f.metadata["min"] <= getattr(cfg, f.name) <= f.metadata["max"]
        if f.metadata.get("secret"):
            assert not f.repr
    assert callable(mod.create) and callable(mod.check)


def test_unknown_kind_suggests_the_near_one():
    with pytest.raises(ConfigError, match="did you mean 'mqtt'"):
        module("mqqt")


class Stuck(QueuedOutput):
    """An output whose receiver hangs until released: the engine's submit must still return at once."""

    kind = "stuck"

    def __init__(self):
        super().__init__("stuck", queue_size=10)
        self.release = threading.Event()
        self.taken = threading.Event()
        self.handled = 0

    def handle(self, item):
        self.taken.set()
        self.release.wait(10)
        self.handled += 1

    def shutdown(self, timeout):
        self.release.set()


def test_a_dead_output_never_blocks_the_caller_and_counts_what_overflows():
    out = Stuck()
    out.start()
    assert isinstance(out, events.Output)
    out.submit(decision(0))
    assert out.taken.wait(5)  # the worker now hangs on its first event
    for i in range(1, 1000):
        out.submit(decision(i))
    out.alarm(events.Alarm("drift", "cam", "frame", True, 1, 0))
    st = out.stats()
    assert st.dropped == 1001 - 10 - 1 and st.queue_depth == 10  # one taken by the stuck worker, ten queued
    out.release.set()
    out.close(5)
    assert out.handled == 11 and out.stats().queue_depth == 0


class Broken(QueuedOutput):
    kind = "broken"

    def handle(self, item):
        raise RuntimeError(f"receiver said no to {item.seq} at http://u:pw@host/x")


def test_an_output_that_raises_counts_errors_and_keeps_going():
    out = Broken("broken", 100)
    out.start()
    for i in range(5):
        out.submit(decision(i))
    out.close(5)
    st = out.stats()
    assert st.errors == 5 and "receiver said no to 4" in st.last_error and "pw" not in st.last_error
