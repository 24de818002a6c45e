"""Importing the training API and the ``train`` CLI module must not import TensorFlow (it loads when training runs)."""

from __future__ import annotations

import subprocess
import sys


def test_no_tensorflow_at_import():
    code = (
        "import sys; import edgecnn.cli.train; from edgecnn.training import TrainConfig, build_config, train; "
        "build_config(preset='digits'); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
