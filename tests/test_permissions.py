"""Issue 25: what edgecnn writes follows the umask (0755/0644 under 022), temp files and staging included.

A service running as another user, a web server or ``rsync -a`` must be able to read a run folder, an export
folder and everything in them. Runs in a child process so the umask is 022 whatever pytest's is.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import os, sys
os.umask(0o022)
from pathlib import Path
import edgecnn
from edgecnn.synthetic import write_dataset
work = Path(sys.argv[1])
data = write_dataset(work / "data", classes=2, per_class=10, size=20, seed=3)
run = edgecnn.train(str(data), img_size=16, epochs=1, batch=8, project=str(work / "runs"), name="perm", plots=False)
run = edgecnn.train(str(data), img_size=16, epochs=1, batch=8, project=str(work / "runs"), name="perm", exist_ok=True,
                    plots=False)
edgecnn.export(run.run_dir, formats=["tflite"], quantize=["none"])
edgecnn.export(run.run_dir, formats=["tflite"], quantize=["none"], out=str(work / "out" / "export"))
"""


def _modes(root: Path) -> dict[str, int]:
    out = {}
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        out[str(p.relative_to(root.parent))] = stat.S_IMODE(p.stat().st_mode)
    return out


def test_run_and_export_folders_follow_the_umask(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    for root in (tmp_path / "runs" / "perm", tmp_path / "out" / "export"):
        modes = _modes(root)
        assert len(modes) >= 5
        wrong = {p: oct(m) for p, m in modes.items()
                 if m != (0o755 if (root.parent / p).is_dir() else 0o644)}
        assert wrong == {}, f"not 0755/0644 under umask 022: {wrong}"
