"""The decision rules without a camera: thresholds, N-of-M debounce, station verdicts, latch, hold, sequence."""

from __future__ import annotations

import pytest

from edgecnn.station.events import STATION, UNSURE, RegionPrediction
from edgecnn.station.rules import OK, REJECT, Rules, Sequence, debounce, station_verdict, vote
from edgecnn.station.schema import RulesConfig


def pred(label: str, score: float = 0.9, source: str = "cam", region: str = "a", frame: int = 0) -> RegionPrediction:
    return RegionPrediction(source=source, region=region, frame=frame, captured_at=100.0 + frame, label=label,
                            score=score, class_index=0 if label else -1)


def test_vote_uses_per_class_thresholds():
    rules = RulesConfig(threshold=0.5, thresholds={"ng": 0.8})
    assert vote(pred("ok", 0.6), rules) == "ok"
    assert vote(pred("ok", 0.4), rules) == UNSURE
    assert vote(pred("ng", 0.7), rules) == UNSURE
    assert vote(pred("ng", 0.85), rules) == "ng"
    assert vote(pred("", 0.0), rules) == UNSURE  # unreadable input


def test_debounce_n_of_m():
    assert debounce(["ng", "ok", "ng"], 2, None) == ("ng", 2)
    assert debounce(["ng", "ok", "x"], 2, None) == (UNSURE, 0)
    assert debounce(["ng", "ok", "x"], 2, "ok") == ("ok", 1)  # no majority: the verdict holds
    assert debounce(["ok", "ng", "ng"], 2, "ok") == ("ng", 2)
    assert debounce(["ok", "ok", "ng", "ng"], 2, "ok") == ("ok", 2)  # a tie keeps the current verdict


@pytest.mark.parametrize(("verdicts", "kw", "expected"), [
    ([("ok", False), ("ng", True)], {}, (REJECT, 1)),
    ([("ok", False), ("ng", True)], {"verdict": "all"}, (OK, 1)),
    ([("ng", True), ("ng", True)], {"verdict": "all"}, (REJECT, 2)),
    ([("ng", True), ("ok", False), ("ng", True)], {"verdict": "at_least", "at_least": 3}, (OK, 2)),
    ([("ok", False), (UNSURE, False)], {}, (UNSURE, 0)),
    ([("ok", False), (UNSURE, False)], {"unsure": "ok"}, (OK, 0)),
    ([("ok", False), (UNSURE, False)], {"unsure": "reject"}, (REJECT, 0)),
])
def test_station_verdict(verdicts, kw, expected):
    assert station_verdict(verdicts, RulesConfig(reject=("ng",), **kw)) == expected


def test_rules_emit_changes_with_a_station_verdict(tmp_path):
    rules = Rules(RulesConfig(votes=2, window=3, reject=("ng",)), Sequence(tmp_path), "abc",
                  regions=(("cam", "a"), ("cam", "b")))
    first = rules.decide([pred("ok", region="a"), pred("ok", region="b")], 1.0)
    assert [(d.region, d.verdict) for d in first] == [("a", UNSURE), ("b", UNSURE), (STATION, UNSURE)]
    second = rules.decide([pred("ok", region="a", frame=1), pred("ng", region="b", frame=1)], 2.0)
    assert [(d.region, d.verdict, d.changed) for d in second] == [("a", "ok", True)]  # b: 1 of 2 votes; station unchanged
    third = rules.decide([pred("ok", region="a", frame=2), pred("ng", region="b", frame=2)], 3.0)
    assert [(d.source, d.verdict, d.reject) for d in third] == [("cam", "ng", True), (STATION, REJECT, True)]
    seqs = [d.seq for d in first + second + third]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] == 1
    assert third[-1].model_sha256 == "abc" and third[-1].votes == 1 and third[-1].window == 2
    assert third[0].captured_at == 102.0 and third[0].frame == 2


def test_every_emits_each_frame(tmp_path):
    rules = Rules(RulesConfig(emit="every"), Sequence(None))
    out = [d for i in range(3) for d in rules.decide([pred("ok", frame=i)], float(i))]
    assert [d.source for d in out] == ["cam", STATION] * 3 and [d.seq for d in out] == list(range(1, 7))


def test_latch_holds_a_reject_and_hold_keeps_a_verdict(tmp_path):
    rules = Rules(RulesConfig(reject=("ng",), latch_s=5.0), Sequence(None))
    assert rules.decide([pred("ng")], 0.0)[-1].verdict == REJECT
    held = rules.decide([pred("ok", frame=1)], 2.0)
    assert held[0].verdict == "ok" and len(held) == 1  # the station stays rejected (latched): no new decision
    released = rules.decide([pred("ok", frame=2)], 6.0)
    assert released[-1].source == STATION and released[-1].verdict == OK
    hold = Rules(RulesConfig(hold_s=10.0), Sequence(None))
    hold.decide([pred("ok")], 0.0)
    assert hold.decide([pred("ng", frame=1)], 1.0) == []  # within the hold: still ok
    late = hold.decide([pred("ng", frame=2)], 11.0)
    assert late[0].verdict == "ng" and late[0].changed


def test_sequence_survives_a_restart(tmp_path):
    seq = Sequence(tmp_path)
    assert [seq.next() for _ in range(3)] == [1, 2, 3]
    seq.close()
    again = Sequence(tmp_path)
    assert again.next() == 4
    (tmp_path / "sequence").write_text("garbage")
    with pytest.raises(Exception, match="expected the last decision number"):
        Sequence(tmp_path)
