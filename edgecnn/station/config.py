"""What a checked station file holds (:class:`StationConfig` and its parts), as :mod:`edgecnn.station.schema` builds
it: frozen dataclasses whose field metadata gives help, bounds and choices (``edgecnn station schema`` reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError
from edgecnn.station.fields import option as _f


class StationFileError(ConfigError):
    """A station file with problems; ``problems`` holds each as one line (the message joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RulesConfig:
    """How predictions become decisions: thresholds, N-of-M debounce, the station verdict, latch and hold."""

    threshold: float = _f(0.0, "Top-1 score below which a region's prediction is 'unsure' (per-class values in "
                               "thresholds win).", min=0.0, max=1.0)
    thresholds: dict[str, float] | None = _f(None, "Per-class thresholds: label = score (a label missing here uses "
                                            "threshold).", min=0.0, max=1.0)
    votes: int = _f(1, "N of 'N of the last M frames': frames that must agree before a region's verdict changes.",
                    min=1, max=1000)
    window: int = _f(1, "M of 'N of the last M frames' (per source and region).", min=1, max=1000)
    reject: tuple[str, ...] = _f((), "Labels that mean reject (a region decided as one of them rejects).")
    verdict: str = _f("any", "Station verdict over regions: 'any' region rejecting rejects, 'all' must reject, "
                             "'at_least' (at_least regions must reject).", choices=("any", "all", "at_least"))
    at_least: int = _f(1, "Regions that must reject when verdict = 'at_least'.", min=1, max=10000)
    unsure: str = _f("wait", "What an unsure region makes of the station verdict when none rejects: 'wait' "
                             "(station unsure), 'ok', or 'reject'.", choices=("wait", "ok", "reject"))
    latch_s: float = _f(0.0, "A station 'reject' is held this many seconds after the last rejecting frame "
                             "(0: no latch).", min=0.0, max=86400.0)
    hold_s: float = _f(0.0, "A region's new verdict is kept at least this many seconds before it may change "
                            "again (0: no hold).", min=0.0, max=86400.0)
    emit: str = _f("change", "Which decisions go to outputs: 'change' (a verdict that changed, and the first), or "
                             "'every' processed frame.", choices=("change", "every"))

    def __post_init__(self) -> None:
        if self.votes > self.window:
            raise ConfigError(f"rules.votes: expected at most rules.window ({self.window}) agreeing frames; "
                              f"received {self.votes}.")
        if self.thresholds is None:
            object.__setattr__(self, "thresholds", {})

    def threshold_of(self, label: str) -> float:
        return float(self.thresholds.get(label, self.threshold)) if self.thresholds else self.threshold


@dataclass(frozen=True)
class RegionConfig:
    """A named rectangle of a source's frame: ``box = [x0, y0, x1, y1]``, integers in pixels or numbers in
    [0, 1] as fractions of the frame."""

    name: str
    box: tuple[float, float, float, float]
    pixels: bool

    def resolve(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box in pixels of a ``width`` x ``height`` frame (clipped to it)."""
        x0, y0, x1, y1 = self.box
        if not self.pixels:
            x0, x1, y0, y1 = x0 * width, x1 * width, y0 * height, y1 * height
        return (max(0, min(width - 1, int(round(x0)))), max(0, min(height - 1, int(round(y0)))),
                max(1, min(width, int(round(x1)))), max(1, min(height, int(round(y1)))))

    def outside(self, width: int, height: int) -> bool:
        """A pixel box that does not fit a ``width`` x ``height`` frame."""
        return self.pixels and (self.box[2] > width or self.box[3] > height)


@dataclass(frozen=True)
class SourceConfig:
    """One named source of the station, on its own reader."""

    name: str
    source: str | None = None
    camera: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    regions: tuple[RegionConfig, ...] = ()
    secret: bool = False  # the source string came from a placeholder: never printed


@dataclass(frozen=True)
class OutputConfig:
    """One ``[[outputs]]`` entry: its kind, its name, and the kind's own config dataclass."""

    kind: str
    name: str
    config: Any
    follow: str = "station"


@dataclass(frozen=True)
class StationConfig:
    """A checked station file (secrets filled; their environment names in ``secret_names``)."""

    path: Path
    name: str
    model: Path | None
    profile: Path | None
    device: str | None
    state_dir: Path
    run: Mapping[str, Any]
    sources: tuple[SourceConfig, ...]
    rules: RulesConfig
    outputs: tuple[OutputConfig, ...]
    sections: Mapping[str, Any]
    secret_names: tuple[str, ...] = ()


__all__ = ["OutputConfig", "RegionConfig", "RulesConfig", "SourceConfig", "StationConfig", "StationFileError"]
