"""Alarm hysteresis and the health checks of a camera: frozen, dark, saturated, blurred.

Each check reads the rolling figures of one source/region (:class:`edgecnn.monitor.drift.Window`) and gives a
value; a :class:`Hysteresis` per (check, source, region) turns the values into raise/clear transitions: raised
after ``raise_after`` consecutive evaluations past ``on``, cleared after ``clear_after`` consecutive evaluations
back past ``off`` (between the two the state holds), so a value hovering at the threshold does not chatter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Hysteresis:
    """Raise when the value is past ``on`` for ``raise_after`` evaluations in a row; clear when it is back past
    ``off`` for ``clear_after`` in a row. ``above=False`` for checks whose bad side is low (focus, ...).

    Attributes:
        active: The alarm is raised.
        streak: Consecutive evaluations on the side that would change ``active``.
    """

    on: float
    off: float
    raise_after: int = 3
    clear_after: int = 3
    above: bool = True
    active: bool = False
    streak: int = 0

    def __post_init__(self) -> None:
        if (self.above and self.off > self.on) or (not self.above and self.off < self.on):
            raise ValueError(f"hysteresis off={self.off} must be on the good side of on={self.on}")

    def _bad(self, v: float) -> bool:
        return v > self.on if self.above else v < self.on

    def _good(self, v: float) -> bool:
        return v < self.off if self.above else v > self.off

    def update(self, value: float | None) -> bool | None:
        """Feed one evaluation; returns True when the alarm is raised now, False when cleared now, else None.
        ``None`` values (nothing measured) neither raise nor clear, and break a streak."""
        if value is None:
            self.streak = 0
            return None
        moving = self._good(value) if self.active else self._bad(value)
        self.streak = self.streak + 1 if moving else 0
        if self.streak >= (self.clear_after if self.active else self.raise_after):
            self.active = not self.active
            self.streak = 0
            return self.active
        return None


#: Health checks: name -> (which figure of the window it reads, whether high is bad). The thresholds come from
#: the ``monitor`` section (:class:`edgecnn.monitor.drift.MonitorConfig`).
CHECKS = ("drift", "confidence", "frozen", "dark", "saturated", "blur")


def frozen_value(run: int) -> float:
    """The frozen check's value: consecutive near-identical frames."""
    return float(run)


def focus_ratio(window_focus: float | None, reference_focus: float | None) -> float | None:
    """Window median focus over the reference's (1 = as sharp as training; a blurred lens gives << 1)."""
    if window_focus is None or not reference_focus:
        return None
    return window_focus / reference_focus


__all__ = ["CHECKS", "Hysteresis", "focus_ratio", "frozen_value"]
