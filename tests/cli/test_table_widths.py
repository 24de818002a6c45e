"""Issue 25: every table fits the terminal from 80 columns up; no word is split, names are never cut; what is left
out of the terminal is named under the table and kept in the written report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.tables import KEEP, Col, fit_table, shorten

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--runs", "3", "--min-seconds", "0", "--warmup", "1", "--warmup-seconds", "0", "--max-seconds", "2"]
BOX = set("│┃┏┓┗┛┡┩└┘┌┐├┤┬┴┼━─╇╈┳┻╋ ")


def _cli(width: int, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS=str(width), TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _table_lines(text: str, names: list[str]) -> list[str]:
    """Lines drawn by a table: box characters, or a row naming an artifact (not a path, a command or progress)."""
    return [line for line in text.splitlines() if any(ch in line for ch in "│┃━─")
            or (any(n in line for n in names) and "/" not in line and not line.lstrip().startswith(("[", "edgecnn")))]


def _fits(text: str, width: int, names: list[str]) -> None:
    lines = _table_lines(text, names)
    assert lines, text
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, f"{len(too_wide)} table lines wider than {width}:\n" + "\n".join(too_wide)
    for name in names:  # names are whole on one line
        assert any(name in line for line in lines), f"{name} cut or missing:\n{text}"
    for word in ("float32", "Precision", "skipped"):  # never split across lines (the "float3/2", "Precis/ion")
        broken = [(a, b) for a, b in zip(lines, lines[1:]) for i in range(2, len(word) - 1)
                  if re.search(re.escape(word[:i]) + r"\s*[│┃]?\s*$", a) and word[i:] in b and word not in a]
        assert not broken, broken


@pytest.mark.parametrize("width", [80, 120])
def test_export_parity_bench_pick_and_evaluate_fit(width, tiny_run, shapes_dir, tmp_path):
    out = tmp_path / "export"
    text = _cli(width, "export", str(tiny_run), "--format", "all", "--quantize", "all", "--out", str(out))
    names = ["model-float32.tflite", "model-float16.tflite", "model-int8.tflite", "model-float32.onnx",
             "model-int8.onnx"]
    _fits(text, width, names)
    if width == 80:
        assert "Not shown at this width:" in text
    text = _cli(width, "parity", *(str(out / n) for n in names), "--golden", str(out / "golden.npz"))
    _fits(text, width, names)
    text = _cli(width, "bench", str(out), *FAST, "--batch", "1,8", "--data", str(shapes_dir), "--max-images", "20",
                "--pick", str(tmp_path / "deploy.json"), "--report", str(tmp_path / "bench.md"))
    _fits(text, width, ["tflite", "onnx"])
    assert "Skipped" in text or "skipped" not in text  # fixed-batch rows are one line under the table
    report = (tmp_path / "bench.md").read_text()
    assert "p90 ms/img" in report and "Batch p50 ms" in report  # every column stays in the written report
    text = _cli(width, "evaluate", str(out / "model-int8.tflite"), "--data", str(shapes_dir), "--out",
                str(tmp_path / f"e{width}"))
    _fits(text, width, ["precision" if width == 120 else "prec"])


def test_train_epoch_rows_fit_80_columns(tmp_path):
    from edgecnn.synthetic import write_dataset

    data = write_dataset(tmp_path / "d", classes=3, per_class=10, size=20, seed=5)
    text = _cli(80, "train", "--data", str(data), "--img-size", "16", "--epochs", "2", "--batch", "8", "--no-plots",
                "--project", str(tmp_path / "runs"), "--name", "w")
    rows = [line for line in text.splitlines() if re.match(r"\s*\d+/2 ", line)]
    assert len(rows) == 2 and all(len(line) <= 80 for line in rows), text
    header = next(line for line in text.splitlines() if line.strip().startswith("epoch"))
    assert "v_acc" in header and len(header) <= 80


def test_fit_table_drops_by_priority_and_never_cuts_names():
    from rich.console import Console

    cols = [Col("Artifact", priority=KEEP), Col("Precision", "Prec", 60), Col("Size MB", "MB", 10, right=True),
            Col("Status", priority=70, text=True, max_chars=20)]
    rows = [{"Artifact": "model-float32_saved_model", "Precision": "float32", "Size MB": "0.61",
             "Status": "skipped: model has a fixed batch of 1; re-export with a dynamic batch"}]
    for width in (40, 60, 80, 120):
        console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
        console.print(fit_table(cols, rows, width, console=console))
        text = console.export_text()
        assert all(len(line) <= width for line in text.splitlines()), (width, text)
        assert "model-float32_saved_model" in text
    assert shorten("skipped: model has a fixed batch of 1", 20) == "skipped: model has …"
    assert shorten("averyveryverylongwordthatcannotbreak tail", 10) == "averyveryverylongwordthatcannotbreak …"
