"""Issue 25: one speed vocabulary. Per-image figures everywhere; the inference call of a batch is named as such;
one summary states throughput, the per-image compute split and the capture-to-result p50/p99."""

from __future__ import annotations

import csv

from edgecnn.runtime.runner import RunOptions, run


def test_summary_and_rows_say_per_image_and_name_the_batch(exported_artifacts, shapes_dir, tmp_path):
    out = tmp_path / "rows.csv"
    summary = run(RunOptions(model=exported_artifacts["tflite-int8"], source=str(shapes_dir), batch=8,
                             print_results=False, save_csv=out))
    lines = summary.lines()
    assert any(line.endswith("images/s") and line.startswith("Processed ") for line in lines)
    speed = summary.speed_line()
    assert "per image at shape (8," in speed and "one inference call of 8 images takes" in speed
    latency = summary.latency_line()
    assert "capture to result" in latency and "p50" in latency and "p99" in latency
    assert summary.latency_p99_ms >= summary.latency_p50_ms > 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "ok"]
    assert rows and all(1 <= int(r["batch"]) <= 8 for r in rows)
    assert max(int(r["batch"]) for r in rows) == 8  # inference_ms of these rows is a call of 8 divided by 8
