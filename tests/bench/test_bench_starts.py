"""bench reports the model's cold and warm starts (init + first inference), with the init cache used."""

from __future__ import annotations

from edgecnn.bench.render import DETAIL_COLUMNS
from edgecnn.bench.runner import run_bench
from edgecnn.bench.schema import BenchReport


def test_bench_reports_cold_and_warm_starts(exported_artifacts, fast, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path / "cache"))
    arts = exported_artifacts
    report = run_bench([arts["onnx-int8"], arts["tflite-int8"]], threads="1", settings=fast())
    rows = {r.format: r for r in report.ok_results}
    assert set(rows) == {"onnx", "tflite"}
    for r in rows.values():
        for name in ("init_cold_ms", "first_cold_ms", "init_warm_ms", "first_warm_ms"):
            assert getattr(r, name) is not None and getattr(r, name) > 0, name
    assert rows["onnx"].init_cache == "hit"  # the warm start loaded ONNX Runtime's saved optimized model
    assert rows["tflite"].init_cache == "off"  # LiteRT's Interpreter has no init cache
    assert (tmp_path / "cache" / "runtime" / "ort").is_dir()

    again = BenchReport.from_dict(report.to_dict())  # the columns survive the JSON report
    assert {r.init_cache for r in again.ok_results} == {"hit", "off"}
    assert {"Init cold ms", "Init warm ms", "First cold ms", "First warm ms", "Init cache"} <= set(DETAIL_COLUMNS)
    from edgecnn.bench.render import report_markdown

    text = report_markdown(report)
    assert "Init warm ms" in text and "hit" in text
