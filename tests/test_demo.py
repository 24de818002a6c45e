"""`edgecnn demo` end to end (quick settings): every step runs for real and the report holds every part."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from edgecnn.cli import app


def test_demo_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECNN_DATA_DIR", str(tmp_path / "datasets"))
    project = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--project", str(project), "--epochs", "6", "--bench-seconds", "0.05"],
                             env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    for name in ("model-float32.tflite", "model-float16.tflite", "model-int8.tflite", "model-float32.onnx",
                 "model-int8.onnx", "golden.npz", "export_report.json"):
        assert (project / "train" / "export" / name).is_file(), name
    assert (project / "heldout.avi").stat().st_size > 0
    assert (project / "bench_report.json").is_file()
    html = (project / "demo_report.html").read_text(encoding="utf-8")
    for section in ("Training curves", "Confusion matrix", "Parity against the Keras model", "Latency", "System"):
        assert section in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 4  # curves, confusion, 2 latency charts
    assert "http://" not in html and "https://" not in html  # self-contained
    # the table printed at the end has one row per artifact, all ok
    for name in ("model-float32.tflite", "model-int8.tflite", "model-int8.onnx"):
        assert name in res.output
    assert "error" not in res.output.lower()
    # issue 25: the table fits 80 columns and every artifact name is whole (fp32, fp16 and ONNX told apart)
    table = [line for line in res.output.splitlines() if "│" in line or "┃" in line]
    assert table and all(len(line) <= 80 for line in table), "\n".join(table)
    for name in ("model-float32.tflite", "model-float16.tflite", "model-float32.onnx"):
        assert any(name in line for line in table), name
    m = re.search(r"held-out folder: accuracy ([0-9.]+) on (\d+) images", res.output)
    assert m and float(m.group(1)) > 0.8 and int(m.group(2)) > 100
