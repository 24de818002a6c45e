"""Regressions found by the user-path audit of `edgecnn bench` (one test per defect)."""

from __future__ import annotations

import json
import os

from edgecnn.bench import compare_reports, run_bench
from edgecnn.bench.render import write_report


def test_nothing_benchmarked_exits_non_zero_and_still_writes_report(tmp_path, cli, fast_args):
    """`edgecnn bench broken.tflite` printed an error row and exited 0, as if the benchmark had passed."""
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(os.urandom(2048))
    out = tmp_path / "r.json"
    res = cli("bench", bad, *fast_args, "--report", out)
    assert res.exit_code == 1, res.output
    assert "Nothing was benchmarked" in res.output and "Traceback" not in res.output
    assert json.loads(out.read_text())["results"][0]["status"] == "error"


def test_compare_lines_up_devices_benched_at_their_own_thread_counts(arts, tmp_path, fast):
    """rpi4 benched at 4 threads and a server at auto gave a diagonal table: rows were keyed on threads."""
    a = write_report(run_bench([arts["tflite-int8"]], threads="1", settings=fast(), label="rpi4"), tmp_path / "a.json")
    b = write_report(run_bench([arts["tflite-int8"]], settings=fast(), label="server"), tmp_path / "b.json")
    cmp = compare_reports([a, b])
    assert len(cmp.rows) == 1 and cmp.rows[0].threads == "1 / auto"
    assert all(v is not None for v in cmp.rows[0].values.values()) and not cmp.warnings

    # A report that sweeps threads keeps them apart; nothing in common is said, not silently diagonal.
    c = write_report(run_bench([arts["onnx-float32"]], threads="1,2", settings=fast(), label="sweep"),
                     tmp_path / "c.json")
    cmp = compare_reports([a, c])
    assert any("nothing lines up" in w for w in cmp.warnings)
