"""Decisions from predictions: thresholds, N-of-M debounce, the station verdict, latch and hold.

The rules are pure functions of the recent predictions and the time (:func:`vote`, :func:`debounce`,
:func:`station_verdict`); :class:`Rules` keeps the little state they need per source and region (the last M votes,
the current verdict and since when) and numbers every decision it emits with the station-wide sequence of a
:class:`Sequence`, persisted in the station's state folder so it keeps increasing across restarts. Nothing here
needs a camera, a model or a clock: tests feed predictions and times.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.station.config import RulesConfig
from edgecnn.station.events import STATION, UNSURE, Decision, RegionPrediction

#: Station verdicts (a region's verdict is a label or :data:`UNSURE`).
OK, REJECT = "ok", "reject"


def vote(pred: RegionPrediction, rules: RulesConfig) -> str:
    """One frame's vote for one region: its top-1 label, or :data:`UNSURE` below that label's threshold (or when
    the input could not be read)."""
    if not pred.label:
        return UNSURE
    return pred.label if pred.score >= rules.threshold_of(pred.label) else UNSURE


def debounce(votes: Iterable[str], need: int, previous: str | None) -> tuple[str, int]:
    """(verdict, how many of ``votes`` agree with it) under "N of the last M": the label with at least ``need``
    of the recent votes (the newest wins a tie), else the previous verdict while no other label has a majority,
    else :data:`UNSURE`."""
    recent = list(votes)
    counts = Counter(recent)
    best = [label for label, n in counts.items() if n >= need]
    if best:
        if previous in best:
            return previous, counts[previous]
        newest = next(v for v in reversed(recent) if v in best)
        return newest, counts[newest]
    if previous is not None:
        return previous, counts.get(previous, 0)
    return UNSURE, counts.get(UNSURE, 0)


def station_verdict(verdicts: Iterable[tuple[str, bool]], rules: RulesConfig) -> tuple[str, int]:
    """(station verdict, regions rejecting) from each region's (verdict, rejects): ``reject`` when the rule
    (any / all / at_least) holds; else ``unsure`` if a region is unsure and ``rules.unsure`` is ``wait``
    (``reject`` when it is ``reject``); else ``ok``."""
    items = list(verdicts)
    rejecting = sum(1 for _, r in items if r)
    if items:
        need = {"any": 1, "all": len(items), "at_least": rules.at_least}[rules.verdict]
        if rejecting >= max(1, need):
            return REJECT, rejecting
    if any(v == UNSURE for v, _ in items) or not items:
        if rules.unsure == "reject" and items:
            return REJECT, rejecting
        if rules.unsure == "wait" or not items:
            return UNSURE, rejecting
    return OK, rejecting


class Sequence:
    """The station-wide decision sequence number, kept in ``STATE/sequence`` so that it increases over the life of
    the state folder (a restart continues after the last number written).

    The number is written (temp file + rename) each time :meth:`save` is called (once per engine step) and
    synced to disk at most once a second and on :meth:`close`.
    """

    FILENAME = "sequence"

    def __init__(self, state_dir: str | os.PathLike[str] | None) -> None:
        self.path = Path(state_dir) / self.FILENAME if state_dir is not None else None
        self.last = 0
        self._saved = 0
        self._synced_at = 0.0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.last = int(self.path.read_text(encoding="utf-8").strip() or 0)
            except FileNotFoundError:
                self.last = 0
            except (ValueError, OSError) as exc:
                from edgecnn.errors import ConfigError

                raise ConfigError(f"{self.path}: expected the last decision number (an integer); received "
                                  f"unreadable content ({exc}). Restore it or remove the file to start at 1.") from None
            self._saved = self.last

    def next(self) -> int:
        self.last += 1
        return self.last

    def save(self, now: float, sync: bool = False) -> None:
        """Write the last number (when it moved); fsync when ``sync`` or a second has passed since the last sync."""
        if self.path is None or self.last == self._saved:
            return
        tmp = self.path.with_name(f".{self.FILENAME}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{self.last}\n".encode())
            if sync or now - self._synced_at >= 1.0:
                os.fsync(fd)
                self._synced_at = now
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._saved = self.last

    def close(self) -> None:
        import time

        self.save(time.time(), sync=True)


@dataclass
class _Region:
    history: deque[str]
    verdict: str | None = None
    since: float = 0.0
    decision: Decision | None = None


@dataclass
class Rules:
    """Turns each frame's region predictions into decisions (per region, and the station verdict over all).

    Args:
        config: The ``[rules]`` of the station file.
        sequence: The station-wide sequence numbers.
        model_sha256: Stamped on every decision.
        regions: Every (source, region) the station has, so the station verdict waits for all of them.
    """

    config: RulesConfig
    sequence: Sequence
    model_sha256: str = ""
    regions: tuple[tuple[str, str], ...] = ()
    _state: dict[tuple[str, str], _Region] = field(default_factory=dict)
    _station: Decision | None = None
    _station_raw_reject_at: float = float("-inf")

    def _region(self, key: tuple[str, str]) -> _Region:
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = _Region(deque(maxlen=self.config.window))
        return state

    def decide(self, predictions: Iterable[RegionPrediction], now: float) -> list[Decision]:
        """The decisions due after one frame of one source (its regions' predictions), station verdict last.

        A region's decision is emitted when its verdict changed (or on every frame with ``emit = "every"``);
        the station's when the station verdict changed (or every frame).
        """
        rules = self.config
        out: list[Decision] = []
        latest = None
        for pred in predictions:
            latest = pred
            state = self._region((pred.source, pred.region))
            state.history.append(vote(pred, rules))
            verdict, votes = debounce(state.history, rules.votes, state.verdict)
            latched = False
            if (state.verdict is not None and verdict != state.verdict and rules.hold_s > 0
                    and now - state.since < rules.hold_s):
                verdict, votes, latched = state.verdict, sum(1 for v in state.history if v == state.verdict), True
            changed = verdict != state.verdict
            if changed:
                state.since = now
            state.verdict = verdict
            if changed or rules.emit == "every":
                decision = Decision(seq=self.sequence.next(), time=now, source=pred.source, region=pred.region,
                                    verdict=verdict, label=pred.label, score=pred.score, votes=votes,
                                    window=rules.window, changed=changed, latched=latched, frame=pred.frame,
                                    captured_at=pred.captured_at, model_sha256=self.model_sha256,
                                    reject=verdict in rules.reject)
                out.append(decision)
            state.decision = Decision(seq=0, time=now, source=pred.source, region=pred.region, verdict=verdict,
                                      label=pred.label, score=pred.score, reject=verdict in rules.reject)
        if latest is None:
            return out
        station = self._station_decision(latest, now)
        if station is not None:
            out.append(station)
        return out

    def _station_decision(self, latest: RegionPrediction, now: float) -> Decision | None:
        rules = self.config
        keys = self.regions or tuple(self._state)
        verdicts = []
        for key in keys:
            state = self._state.get(key)
            verdicts.append((state.verdict if state and state.verdict else UNSURE,
                             bool(state and state.verdict in rules.reject)))
        verdict, rejecting = station_verdict(verdicts, rules)
        latched = False
        if verdict == REJECT:
            self._station_raw_reject_at = now
        elif rules.latch_s > 0 and now - self._station_raw_reject_at < rules.latch_s:
            verdict, latched = REJECT, True
        previous = self._station.verdict if self._station else None
        changed = verdict != previous
        if not changed and rules.emit != "every":
            return None
        first = next((self._state[k].decision for k in keys if k in self._state and self._state[k].decision
                      and self._state[k].decision.reject), None)
        decision = Decision(seq=self.sequence.next(), time=now, source=STATION, region=STATION, verdict=verdict,
                            label=first.label if first else "", score=first.score if first else float("nan"),
                            votes=rejecting, window=len(keys), changed=changed, latched=latched,
                            frame=latest.frame, captured_at=latest.captured_at, model_sha256=self.model_sha256,
                            reject=verdict == REJECT)
        self._station = decision
        return decision


__all__ = ["OK", "REJECT", "Rules", "Sequence", "debounce", "station_verdict", "vote"]
