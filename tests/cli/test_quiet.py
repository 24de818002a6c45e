"""Quiet by default: third-party native log lines (absl, oneDNN, cuInit, the TFLite converter, LiteRT's XNNPACK
line) are filtered from file descriptor 2 unless ``--verbose``; a real native error still shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_native_noise_is_dropped_and_everything_else_kept():
    code = (
        "import os, sys\nfrom edgecnn.console import quiet_native_stderr, restore_native_stderr\n"
        "quiet_native_stderr()\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1795488393.302755   29451 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'E0000 00:00:1795488404.759921   29451 cuda_platform.cc:52] failed call to cuInit\\n')\n"
        "os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "os.write(2, b'fully_quantize: 0, inference_type: 6, input_inference_type: INT8\\n')\n"
        "os.write(2, b'native: a real error\\n')\n"
        "print('python line', file=sys.stderr)\n"
        "restore_native_stderr()\n"
        "os.write(2, b'after restore\\n')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    # Python's lines go straight to the terminal, native ones through the filter thread: compare as a set
    assert sorted(res.stderr.splitlines()) == ["after restore", "native: a real error", "python line"]


def test_run_prints_no_xnnpack_line_unless_verbose(exported_artifacts, shapes_dir):
    model = str(exported_artifacts["tflite-int8"])
    args = ["run", model, "--source", str(shapes_dir), "--max-frames", "2"]
    quiet = subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, env=_env(),
                           timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "XNNPACK" not in quiet.stderr and "Processed 2 inputs" in quiet.stdout
    verbose = subprocess.run([sys.executable, "-m", "edgecnn", "--verbose", *args], capture_output=True, text=True,
                             env=_env(), timeout=120)
    assert verbose.returncode == 0, verbose.stderr
    assert "XNNPACK delegate" in verbose.stderr  # the filter, not LiteRT, is what hid it
