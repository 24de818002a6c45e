"""Releases on a box without installing anything: prune's choices, rollback's fallbacks, refusals (fast; the real
installs are in test_install.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgecnn.deploy import releases
from edgecnn.deploy.releases import ReleaseError


def make(prefix: Path, rid: str, passed: bool | None, checked: str) -> None:
    d = prefix / "releases" / rid
    d.mkdir(parents=True)
    (d / "edgecnn.service").write_text("[Service]\n")
    if passed is not None:
        status = {"schema": releases.STATUS_SCHEMA, "id": rid, "passed": passed, "checked_utc": checked,
                  "selfcheck": {"passed": passed, "reason": None if passed else "agreement 0%"}}
        (d / "status.json").write_text(json.dumps(status))


@pytest.fixture()
def prefix(tmp_path) -> Path:
    p = tmp_path / "opt"
    for i in range(1, 6):
        make(p, f"r{i}", True, f"2026-01-0{i}T00:00:00Z")
    make(p, "failed", False, "2026-01-06T00:00:00Z")
    make(p, "incomplete", None, "")
    releases.set_link(p, "current", "r3")
    releases.set_link(p, "previous", "r1")
    (p / "releases" / ".trash-r0-123").mkdir()
    return p


def test_prune_keeps_current_previous_and_the_newest(prefix):
    removed = releases.prune(prefix, keep=3)
    left = sorted(p.name for p in (prefix / "releases").iterdir())
    assert left == ["r1", "r3", "r5"], left  # current, previous, and the newest other that passed
    assert sorted(removed) == ["failed", "incomplete", "r2", "r4"]
    assert releases.link_target(prefix, "current") == "r3"
    with pytest.raises(ReleaseError, match="--keep >= 2"):
        releases.prune(prefix, keep=1)
    assert releases.prune(prefix, keep=2) == ["r5"]


def test_rollback_previous_then_fallback_and_refusals(prefix):
    res = releases.rollback(prefix)
    assert (res["from"], res["to"]) == ("r3", "r1") and res["service"] is None
    assert os.readlink(prefix / "current") == "releases/r1" and releases.link_target(prefix, "previous") == "r3"
    with pytest.raises(ReleaseError, match="did not pass"):
        releases.rollback(prefix, to="failed")
    with pytest.raises(ReleaseError, match="Expected a release id"):
        releases.rollback(prefix, to="nope")
    (prefix / "previous").unlink()  # no previous link: the newest other release that passed
    assert releases.rollback(prefix)["to"] == "r5"
    with pytest.raises(ReleaseError, match="Expected an edgecnn install"):
        releases.rollback(prefix / "elsewhere")


def test_a_held_lock_is_refused_at_once(prefix):
    with releases.locked(prefix), pytest.raises(ReleaseError, match="Another install or rollback"):
        releases.rollback(prefix)
