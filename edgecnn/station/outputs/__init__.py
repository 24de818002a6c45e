"""Station outputs: where decisions and alarms go on the line. One module per kind, each imported on use.

Every kind module exposes ``CONFIG`` (a frozen dataclass: its fields, defaults and metadata drive the station file's
validation, JSON schema and docs), ``create(config, *, station, labels, model_sha256, state_dir, name=...,
start_offline=...)`` giving an :class:`edgecnn.station.events.Output`, and ``check(config)`` giving an
:class:`edgecnn.station.events.Reachability` for ``edgecnn station check``. Importing a kind module imports none
of its third-party client (paho-mqtt, asyncua, pymodbus, gpiod): that happens on ``start()`` / ``check()``, and a
missing one is one line naming the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Output kinds in the order a station file lists them: kind -> module (under edgecnn.station.outputs).
KINDS = {"mqtt": "mqtt", "opcua": "opcua", "modbus": "modbus", "gpio": "gpio", "webhook": "webhook"}


def module(kind: str) -> ModuleType:
    """The module of an output kind (``CONFIG``, ``create``, ``check``); ConfigError for an unknown kind."""
    if kind not in KINDS:
        import difflib

        from edgecnn.errors import ConfigError

        near = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"outputs: expected one of {', '.join(KINDS)}; received {kind!r}{hint}")
    return importlib.import_module(f"edgecnn.station.outputs.{KINDS[kind]}")


__all__ = ["KINDS", "module"]
