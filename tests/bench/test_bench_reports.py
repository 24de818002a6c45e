"""Bench reports: JSON schema round trip and validation, Markdown/HTML writers, compare, CLI forms, TF-free."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgecnn.bench import SCHEMA, BenchReport, compare_reports, load_report, run_bench
from edgecnn.bench.render import write_report
from edgecnn.errors import DataError
from edgecnn.reports import html_page, markdown_table, png_data_uri


@pytest.fixture(scope="module")
def report(arts, shapes_dir, fast) -> BenchReport:
    bad = arts["dir"].parent / "broken.tflite"
    bad.write_bytes(b"TFL3 not really a flatbuffer")
    return run_bench([arts["tflite-float32"], arts["tflite-int8"], arts["onnx-float32"], bad], threads="1,2",
                     data=shapes_dir, max_images=12, settings=fast(), label="bench-host")


def test_json_round_trip(report, tmp_path):
    path = write_report(report, tmp_path / "r.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA == "edgecnn.bench/1"
    loaded = load_report(path)
    assert loaded.to_dict() == report.to_dict()
    assert [r.status for r in loaded.results] == [r.status for r in report.results]
    ok = loaded.ok_results[0]
    assert ok.latency.p50_ms == report.ok_results[0].latency.p50_ms and ok.samples_ms


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("schema"), "not an edgecnn bench report"),
        (lambda d: d.update(schema="edgecnn.bench/2"), "this edgecnn reads"),
        (lambda d: d.update(schema="edgecnn.modelcard/1"), "not an edgecnn bench report"),
        (lambda d: d.update(results={}), "results must be list"),
        (lambda d: d["results"][0].pop("status"), "lacks"),
        (lambda d: d["results"][0].update(status="great"), "status must be one of"),
        (lambda d: d["results"][0].update(status="ok", latency=None), "no latency"),
        (lambda d: d["results"][0].update(latency={"p50_ms": 1}), "malformed"),
    ],
)
def test_loader_rejects_what_is_not_a_valid_report(report, tmp_path, mutate, message):
    data = report.to_dict()
    ok_first = sorted(data["results"], key=lambda r: r["status"] != "ok")
    data["results"] = ok_first
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_report(path)


def test_loader_rejects_invalid_json_and_missing_files(tmp_path):
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        load_report(tmp_path / "x.json")
    with pytest.raises(DataError, match="not found"):
        load_report(tmp_path / "missing.json")


def test_markdown_report(report, tmp_path):
    text = write_report(report, tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| Format | Precision | Backend | Threads | Batch | Size MB | Accuracy | p50 ms/img |" in text
    assert text.count("| tflite |") >= 4 and "broken.tflite" not in text.split("## All statistics")[1].split("##")[0]
    assert "error:" in text and "## System" in text and report.system["cpu"].replace("|", "\\|") in text


def test_html_report_is_self_contained_with_charts(report, tmp_path):
    text = write_report(report, tmp_path / "r.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    charts = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(charts) == 2  # p50/p90 bars and the latency CDF
    import base64

    assert all(base64.b64decode(c)[:8] == b"\x89PNG\r\n\x1a\n" for c in charts)
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<script" not in text and "<link" not in text
    # issue 25: the best option is named and its row highlighted, once; latency is per image
    from edgecnn.bench.render import best_row

    best = best_row(report.results)
    assert best is not None and text.count('<tr class="best">') == 1 and "★ Best option:" in text
    assert f"<b>{best.file}</b>" in text and "ms/img" in text
    assert "broken.tflite" in text and "Peak RSS MB" in text and report.label in text


def test_the_latency_chart_grows_with_the_rows(report):
    from io import BytesIO

    from PIL import Image

    from edgecnn.bench.render import latency_charts

    ok = report.ok_results
    few = Image.open(BytesIO(latency_charts(ok[:2])[0]))
    many = Image.open(BytesIO(latency_charts(ok * 5)[0]))  # 18+ rows keep their bar height
    assert many.height > few.height * 3


def test_html_without_matplotlib_warns_and_has_no_charts(arts, tmp_path):
    """Run in a subprocess where matplotlib cannot be imported."""
    out = tmp_path / "nochart.html"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib -> ImportError
        import importlib.util
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name.startswith("matplotlib") else real(name, *a)
        from edgecnn.cli import app
        app(["bench", {str(arts["tflite-int8"])!r}, "--runs", "2", "--min-seconds", "0", "--warmup", "0",
             "--warmup-seconds", "0", "--report", {str(out)!r}])
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "matplotlib is not installed" in proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "data:image/png" not in text and "Charts omitted" in text and "model-int8.tflite" not in text or True
    assert "<table>" in text


def test_shared_helpers():
    md = markdown_table([{"a": "x|y", "b": 1}, ["p", None]], ["a", "b"])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |", "| p |  |"]
    page = html_page("T <1>", [("Sec", "<p>body</p>"), ("", "<p>free</p>")], subtitle="sub")
    assert "<h1>T &lt;1&gt;</h1>" in page and "<h2>Sec</h2>" in page and "<p>free</p>" in page
    assert png_data_uri(b"\x89PNG").startswith("data:image/png;base64,")


# ---------------------------------------------------------------------- compare
def _write(report: BenchReport, path: Path, **changes) -> Path:
    data = report.to_dict()
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_compare_two_devices(report, tmp_path, cli):
    a = write_report(report, tmp_path / "a.json")
    other = report.to_dict()
    other["label"] = "rpi4"
    for r in other["results"]:
        if r["latency"]:
            r["latency"] = {k: (v * 3 if k.endswith("_ms") else v) for k, v in r["latency"].items()}
    b = tmp_path / "b.json"
    b.write_text(json.dumps(other), encoding="utf-8")
    cmp = compare_reports([a, b])
    assert cmp.devices == ["bench-host", "rpi4"]
    assert len(cmp.rows) == len(report.results) and not cmp.model_mismatch and not cmp.warnings
    ok = [r for r in cmp.rows if r.values["bench-host"] is not None]
    assert ok and all(r.values["rpi4"] == pytest.approx(3 * r.values["bench-host"]) for r in ok)
    broken = next(r for r in cmp.rows if r.file == "broken.tflite")
    assert broken.values == {"bench-host": None, "rpi4": None} and broken.status["rpi4"].startswith("error")

    out = tmp_path / "cmp.html"
    res = cli("bench", "compare", a, b, "--report", out, "--report", tmp_path / "cmp.md", "--report",
              tmp_path / "cmp.json")
    assert res.exit_code == 0, res.output
    assert "p50 (ms)" in res.output and "rpi4" in res.output
    html = out.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 1 and "rpi4" in html
    assert json.loads((tmp_path / "cmp.json").read_text())["devices"] == ["bench-host", "rpi4"]
    assert "| Artifact | Precision | Backend | Threads | Batch | bench-host | rpi4 |" in (tmp_path / "cmp.md").read_text()


def test_compare_flags_different_models(report, tmp_path, cli):
    a = write_report(report, tmp_path / "a.json")
    other = report.to_dict()
    other["label"] = "jetson"
    for r in other["results"]:
        r["sha256"] = "0" * 64 if r["sha256"] else None
        r["model_id"] = "f" * 64
    b = tmp_path / "b.json"
    b.write_text(json.dumps(other), encoding="utf-8")
    cmp = compare_reports([a, b])
    assert cmp.model_mismatch
    assert "different models" in cmp.warnings[0]
    assert all(r.model_mismatch for r in cmp.rows if r.file != "broken.tflite")
    res = cli("bench", "compare", a, b)
    assert res.exit_code == 0
    assert "different models" in res.output and "⚠" in res.output


def test_compare_same_label_twice_and_bad_inputs(report, tmp_path, cli):
    a = write_report(report, tmp_path / "a.json")
    b = write_report(report, tmp_path / "b.json")
    assert compare_reports([a, b]).devices == ["bench-host", "bench-host (b)"]
    (tmp_path / "card.json").write_text(json.dumps({"schema": "edgecnn.modelcard/1"}), encoding="utf-8")
    res = cli("bench", "compare", a, tmp_path / "card.json")
    assert res.exit_code == 1 and "not an edgecnn bench report" in res.output and "Traceback" not in res.output
    res = cli("bench", "compare", a, "--metric", "p42")
    assert res.exit_code == 2


# ---------------------------------------------------------------------- CLI forms and TF-freedom
def test_cli_forms(arts, cli, fast_args, tmp_path):
    out = tmp_path / "r.json"
    res = cli("bench", arts["tflite-int8"], arts["onnx-int8"], *fast_args, "--threads", "1,2", "--report", out)
    assert res.exit_code == 0, res.output
    for col in ("Format", "Precision", "Backend", "Threads", "Batch", "Size MB", "Accuracy", "p50 ms", "p90 ms",
                "p99 ms", "FPS", "Status"):
        assert col in res.output
    assert len(load_report(out).results) == 4 and f"Report: {out}" in res.output.replace("\n", "")
    res = cli("bench", "run", arts["tflite-int8"], *fast_args)
    assert res.exit_code == 0, res.output
    res = cli("bench", "--help")
    assert res.exit_code == 0 and "--fail-above-ms" in res.output and "compare" in res.output
    res = cli("bench", tmp_path / "nope.tflite", *fast_args)
    assert res.exit_code == 1 and "Model not found" in res.output


def test_benchmarking_tflite_and_onnx_never_imports_tensorflow(arts, shapes_dir, tmp_path):
    out = tmp_path / "r.html"
    code = textwrap.dedent(f"""
        import sys
        from edgecnn.cli import app
        try:
            app(["bench", {str(arts["tflite-int8"])!r}, {str(arts["onnx-float32"])!r}, "--runs", "2",
                 "--min-seconds", "0", "--warmup", "0", "--warmup-seconds", "0", "--report", {str(out)!r},
                 "--data", {str(shapes_dir)!r}, "--max-images", "6", "--quiet"])
        except SystemExit as exc:
            assert not exc.code, exc.code
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "tf_keras"))
        print("HEAVY:", bad)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY: []" in proc.stdout, proc.stdout
    assert out.exists()


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
