"""Issue 25: the Python API is as quiet as the CLI. A script that trains, exports, evaluates, benchmarks and
predicts writes nothing to file descriptors 1 and 2; ``verbose=True`` and the logging levels bring output back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
from pathlib import Path
import numpy as np
import edgecnn
from edgecnn.synthetic import write_dataset

work = Path(sys.argv[1])
data = write_dataset(work / "data", classes=2, per_class=12, size=16, seed=4)  # the model's size: no consumer resizes
run = edgecnn.train(data, img_size=16, epochs=1, batch=8, project=work / "runs", name="q", plots=False)
rep = edgecnn.export(run.run_dir, formats=["tflite", "onnx"], quantize=["none", "int8"])
assert rep.passed
tfl = rep.artifacts()["tflite-int8"]
edgecnn.evaluate(tfl, data, out_dir=work / "eval")
edgecnn.bench(rep.out_dir, runs=3, min_seconds=0, warmup=1, warmup_seconds=0, max_seconds=2)
clf = edgecnn.load(tfl)
p = clf.predict(np.zeros((30, 40, 3), np.uint8))
assert p.label in clf.labels
"""

#: LiteRT prints its XNNPACK line once per process: a fresh one per case.
LOAD = r"""
import sys
import numpy as np
import edgecnn
if sys.argv[2] == "logging":
    import logging
    logging.basicConfig(level=logging.INFO, format="LOG %(name)s: %(message)s")
    edgecnn.export(sys.argv[1], formats=["tflite"], quantize=["none"], out=sys.argv[3])
else:
    clf = edgecnn.load(sys.argv[1], verbose=sys.argv[2] == "verbose")
    clf.predict(np.zeros((30, 40, 3), np.uint8))
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # what a user's shell has
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=900)


def test_the_api_writes_nothing_to_stdout_or_stderr(tmp_path):
    res = _run(SCRIPT, str(tmp_path), "quiet")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout == ""
    assert res.stderr == ""


def test_verbose_and_logging_bring_the_output_back(exported_artifacts, tiny_run, tmp_path):
    model = str(exported_artifacts["tflite-int8"])
    res = _run(LOAD, model, "quiet")
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stderr[-3000:]
    res = _run(LOAD, model, "verbose")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "XNNPACK" in res.stderr  # LiteRT's own line, let through by verbose=True
    res = _run(LOAD, str(tiny_run), "logging", str(tmp_path / "export"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Exporting model-float32.tflite ..." in res.stderr and "LOG edgecnn:" in res.stderr
