"""GPIO output (libgpiod's ``gpiod`` 2.x binding): a reject or alarm line, as a pulse of a set width or a level.

- ``on = "reject"``, ``mode = "pulse"``: a pulse of ``pulse_ms`` when a followed decision turns to reject
  (``pulse_on = "change"``) or for every reject decision (``pulse_on = "every"``, one pulse per part when the rules
  emit one decision per part); pulses are separated by at least ``gap_ms``.
- ``on = "reject"``, ``mode = "level"``: the line is active while the latest followed decision is a reject.
- ``on = "alarm"``: a pulse when an alarm is raised, or (level) active while any alarm is.

The line is driven from the output's own thread, so a pulse never waits on inference and inference never waits
on a pulse; when rejects come faster than pulses can be made, the queue overflows and the overflow is counted.
``backend = "record"`` drives no hardware: it records each edge (monotonic nanoseconds, level) in memory and in
``gpio-<name>.jsonl`` in the state folder, for tests and for a dry run on a machine without GPIO.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.station import events
from edgecnn.station.outputs.base import QueuedOutput, check_follow, check_ready, field, matches

KIND = "gpio"


@dataclass(frozen=True)
class Config:
    """An ``[[outputs]]`` entry of a station file with ``kind = "gpio"`` (checked on construction)."""

    def __post_init__(self) -> None:
        _validate(self)

    chip: str = field("/dev/gpiochip0", "The GPIO chip device (a Raspberry Pi's 40-pin header is /dev/gpiochip0 "
                                        "on Pi 1-4 and on Pi 5 with kernel 6.6.47 or later; /dev/gpiochip4 before).")
    line: int = field(17, "The line offset on that chip; on a Raspberry Pi the BCM number (17 is header pin 11).",
                      min=0, max=4095)
    on: str = field("reject", "What drives the line: 'reject' decisions or raised 'alarm's.", choices=("reject", "alarm"))
    mode: str = field("pulse", "'pulse': one pulse of pulse_ms per event; 'level': active while the condition "
                               "holds.", choices=("pulse", "level"))
    pulse_on: str = field("change", "Pulse when a decision turns to reject ('change') or on every reject decision "
                                    "('every').", choices=("change", "every"))
    pulse_ms: float = field(200.0, "Pulse width in milliseconds.", min=1.0, max=60_000.0)
    gap_ms: float = field(50.0, "Least time between two pulses, in milliseconds.", min=0.0, max=60_000.0)
    active_low: bool = field(False, "The line is active at 0 V (e.g. a relay board that switches on low).")
    follow: str = field("station", "Which decisions drive the line: 'station' (the station verdict), '*' all, a "
                                   "source name, or 'source/region'.")
    backend: str = field("gpiod", "'gpiod' drives the chip; 'record' only records edges (no hardware).",
                         choices=("gpiod", "record"))
    queue_size: int = field(100, "Events waiting for the line; what overflows is dropped and counted.",
                            min=1, max=100_000)


CONFIG = Config


class RecordingLine:
    """A line that records each edge: ``edges`` is ``[(time.monotonic_ns(), active), ...]``, also appended to
    ``path`` as JSON lines (``{"t_ns": ..., "active": ..., "level": ...}``, level being the pin voltage, 0 or 1)."""

    def __init__(self, path: Path | None, active_low: bool = False) -> None:
        self.edges: list[tuple[int, bool]] = []
        self.active_low = active_low
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the output's life
        self.active = False
        self._record(False)

    def set(self, active: bool) -> None:
        if active != self.active:
            self.active = active
            self._record(active)

    def _record(self, active: bool) -> None:
        t = time.monotonic_ns()
        self.edges.append((t, active))
        if self._fh is not None:
            self._fh.write(json.dumps({"t_ns": t, "active": active, "level": int(active != self.active_low)}) + "\n")
            self._fh.flush()

    def close(self) -> None:
        self.set(False)
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def pulses(self) -> list[float]:
        """Widths in milliseconds of the completed pulses recorded so far."""
        out, start = [], None
        for t, active in self.edges:
            if active and start is None:
                start = t
            elif not active and start is not None:
                out.append((t - start) / 1e6)
                start = None
        return out


class GpiodLine:
    """One output line requested through libgpiod 2.x (``gpiod.request_lines``), inactive at start and on close."""

    def __init__(self, chip: str, line: int, active_low: bool, consumer: str) -> None:
        from edgecnn.errors import EdgeCNNError, require

        gpiod = require("gpiod", "gpio", "for the GPIO output")
        from gpiod.line import Direction, Value

        self._values = (Value.INACTIVE, Value.ACTIVE)
        self.line = line
        settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE, active_low=active_low)
        try:
            self._request = gpiod.request_lines(chip, consumer=consumer, config={line: settings})
        except FileNotFoundError:
            raise EdgeCNNError(f"GPIO chip {chip} not found: list the chips with 'ls /dev/gpiochip*' (or gpiodetect) "
                               "and set the output's chip") from None
        except PermissionError:
            raise EdgeCNNError(f"GPIO chip {chip}: permission denied; add the user to the 'gpio' group "
                               "(sudo usermod -aG gpio $USER) or run the service as a user that has it") from None
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise EdgeCNNError(f"GPIO {chip} line {line}: cannot request it as an output ({why}); is the line "
                               "offset valid and not used by another program (gpioinfo shows its consumer)?") from None
        self.active = False

    def set(self, active: bool) -> None:
        self._request.set_value(self.line, self._values[bool(active)])
        self.active = active

    def close(self) -> None:
        try:
            self.set(False)
        finally:
            self._request.release()


class GPIOOutput(QueuedOutput):
    """Drives one GPIO line from decisions or alarms (see the module's docstring)."""

    kind = KIND

    def __init__(self, config: Config, *, station: str, state_dir: Path, name: str = KIND) -> None:
        super().__init__(name, config.queue_size)
        self.config = config
        self.station = station
        self.state_dir = Path(state_dir)
        self.line: Any = None
        self._alarms: set[tuple[str, str, str]] = set()
        self._last_pulse_end = 0.0
        self._line_lock = threading.Lock()

    def open(self) -> None:
        c = self.config
        if c.backend == "record":
            self.line = RecordingLine(self.state_dir / f"gpio-{self.name}.jsonl", c.active_low)
        else:
            self.line = GpiodLine(c.chip, c.line, c.active_low, f"edgecnn-{self.station}"[:31])
        self.set_connected(True)

    def handle(self, item: events.Decision | events.Alarm) -> None:
        c = self.config
        if isinstance(item, events.Decision):
            if c.on != "reject" or not matches(item, c.follow):
                return
            if c.mode == "level":
                self._set(item.reject)
            elif item.reject and (c.pulse_on == "every" or item.changed):
                self._pulse()
            return
        if c.on != "alarm":
            return
        key = (item.name, item.source, item.region)
        raised = item.active and key not in self._alarms
        (self._alarms.add if item.active else self._alarms.discard)(key)
        if c.mode == "level":
            self._set(bool(self._alarms))
        elif raised:
            self._pulse()

    def _set(self, active: bool) -> None:
        with self._line_lock:
            if self.line.active != active:
                self.line.set(active)
                self.count_sent()

    def _pulse(self) -> None:
        gap = self._last_pulse_end + self.config.gap_ms / 1000.0 - time.monotonic()
        if gap > 0:
            time.sleep(gap)
        end = time.monotonic() + self.config.pulse_ms / 1000.0
        with self._line_lock:
            self.line.set(True)
        while (left := end - time.monotonic()) > 0:  # a pulse is always finished, even while closing
            time.sleep(left)
        with self._line_lock:
            self.line.set(False)
        self._last_pulse_end = time.monotonic()
        self.count_sent()

    def shutdown(self, timeout: float) -> None:
        if self.line is not None:
            with self._line_lock:
                self.line.close()
        self.set_connected(False)

    def describe(self) -> str:
        where = "recording (no hardware)" if self.config.backend == "record" else f"{self.config.chip} line {self.config.line}"
        return f"GPIO {where}: {self.config.on} as {self.config.mode}"


def _validate(config: Config) -> None:
    from edgecnn.errors import ConfigError

    for key, allowed in (("on", ("reject", "alarm")), ("mode", ("pulse", "level")), ("pulse_on", ("change", "every")),
                         ("backend", ("gpiod", "record"))):
        if getattr(config, key) not in allowed:
            raise ConfigError(f"{key}: expected one of {', '.join(allowed)}; "
                              f"received {getattr(config, key)!r}")
    check_follow(config.follow)


def create(config: Config, *, station: str, labels: list[str], model_sha256: str, state_dir: Path,
           name: str = KIND, start_offline: bool = False) -> GPIOOutput:
    """A GPIO output (not started: ``start()`` requests the line)."""
    _validate(config)
    return GPIOOutput(config, station=station, state_dir=state_dir, name=name)


def check(config: Config, name: str = KIND) -> events.Reachability:
    """Whether the chip exists, has the line, and the line is free (nothing is driven)."""
    from edgecnn.errors import require

    if config.backend == "record":
        return events.Reachability(name, True, "GPIO recording backend (no hardware is driven)")
    need = ("gpiod", "gpio", "for the GPIO output")
    failed = check_ready(name, lambda: _validate(config), *need)
    if failed is not None:
        return failed
    gpiod = require(*need)  # imported by check_ready
    if not os.path.exists(config.chip) or not gpiod.is_gpiochip_device(config.chip):
        return events.Reachability(name, False, f"GPIO chip {config.chip} not found (ls /dev/gpiochip*)")
    try:
        with gpiod.Chip(config.chip) as chip:
            lines = chip.get_info().num_lines
            if config.line >= lines:
                return events.Reachability(name, False, f"GPIO chip {config.chip} has lines 0-{lines - 1}; "
                                                        f"received line {config.line}")
            info = chip.get_line_info(config.line)
    except OSError as exc:
        return events.Reachability(name, False, f"GPIO chip {config.chip}: {exc.strerror or exc}")
    if info.used:
        return events.Reachability(name, False, f"GPIO {config.chip} line {config.line} is used by "
                                                f"{info.consumer or 'another program'}")
    return events.Reachability(name, True, f"GPIO {config.chip} line {config.line} is free")
