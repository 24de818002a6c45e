"""What the HTTP server reads from a running station: :class:`StationHandle` (the engine implements it).

The server never reaches into the engine: it attaches its observer (:class:`~edgecnn.serve.live.LiveView`) for
frames and decisions, and asks the handle, at the moment a page or ``/metrics`` is read, for the facts below.
Everything here is pure standard library; :class:`~edgecnn.station.events.OutputStats` comes from the events
contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from edgecnn.station.events import Observer, OutputStats


@dataclass(frozen=True)
class SourceHealth:
    """One source's health as the engine sees it.

    Attributes:
        name: The source's name (from the station file; shown as is: it must not hold a URL's password).
        connected: The source is open and delivering (False while it reconnects or after it gave up).
        fps: Recent processed frames per second.
        last_frame_at: Wall-clock time of the newest frame (``time.time()``), 0 before the first.
        frames: Frames processed since start.
        dropped: Frames dropped to stay current (live sources) since start.
        reconnects: Reopen attempts since start.
        queue_depth: Frames waiting between capture and inference now.
        error: The last error, one line (masked), "" when none.
    """

    name: str
    connected: bool = True
    fps: float = 0.0
    last_frame_at: float = 0.0
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    queue_depth: int = 0
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ModelIdentity:
    """Which model answers: shown on the live view, ``/api/status`` and as the ``edgecnn_model`` info metric."""

    name: str
    sha256: str
    version: str = ""
    backend: str = ""
    labels: tuple[str, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "version": self.version, "backend": self.backend,
                "labels": list(self.labels)}


@runtime_checkable
class StationHandle(Protocol):
    """A running station, as ``edgecnn serve STATION`` needs it. Every method returns at once and never raises.

    The engine of :mod:`edgecnn.station` implements it; :class:`edgecnn.serve.feed.PipelineFeed` is the small
    one-source implementation ``edgecnn serve MODEL --source ...`` uses.
    """

    def sources(self) -> list[SourceHealth]:
        """Health of every source, in the station file's order."""

    def outputs(self) -> list[OutputStats]:
        """Counters of every output (``connected`` False means unreachable now)."""

    def model(self) -> ModelIdentity:
        """The model that makes the decisions."""

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer.on_frame`` for every processed frame from now on (the engine's thread; it returns at
        once)."""

    def remove_observer(self, observer: Observer) -> None:
        """Stop calling it (the server closes)."""


def identity_of(path: Any, card: Any, backend: str = "") -> ModelIdentity:
    """The :class:`ModelIdentity` of a model file: SHA-256 of its bytes, the card's name and version."""
    import hashlib
    from pathlib import Path

    p = Path(path)
    h = hashlib.sha256()
    target = p / "model.keras" if p.is_dir() else p
    with open(target, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    prov = getattr(card, "provenance", {}) or {}
    art = getattr(card, "artifact", {}) or {}
    version = " ".join(str(x) for x in (art.get("format"), art.get("precision"), prov.get("created")) if x)
    name = str(getattr(card, "name", "") or p.stem)
    return ModelIdentity(name=name, sha256=h.hexdigest(), version=version, backend=backend,
                         labels=tuple(getattr(card, "labels", ()) or ()))


__all__ = ["ModelIdentity", "SourceHealth", "StationHandle", "identity_of"]
