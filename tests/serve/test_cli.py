"""``edgecnn serve`` as a user runs it: a real process, its announced address, SIGTERM; bad binds refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def edgecnn(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGECNN_SERVE_TOKEN": ""}
    env.pop("EDGECNN_SERVE_TOKEN")
    env.update(kw.pop("env", {}))
    return subprocess.Popen([sys.executable, "-m", "edgecnn", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_serve_announces_serves_and_stops_on_sigterm(color_onnx, colour_video):
    proc = edgecnn("serve", str(color_onnx), "--port", "0", "--source", str(colour_video), "--loop",
                   "--max-fps", "20", "--max-batch", "4")
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", line).group(1)
        assert "POST " in line and "batch <= 4" in line
        with urllib.request.urlopen(url + "/healthz", timeout=10) as r:
            assert json.loads(r.read())["status"] == "alive"
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(url + "/api/status", timeout=10) as r:
                if any(s.get("frames") for s in json.loads(r.read())["sources"]):
                    break
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_public_bind_without_token_is_a_usage_error(color_onnx):
    proc = edgecnn("serve", str(color_onnx), "--host", "0.0.0.0", "--port", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "needs a token" in err and "--insecure" in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


def test_a_station_file_or_missing_folder_is_one_line(color_onnx, tmp_path):
    station = tmp_path / "station.toml"
    station.write_text("[serve]\n")
    proc = edgecnn("serve", str(station), "--port", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "station" in err and "Traceback" not in err
    proc = edgecnn("serve", str(color_onnx), "--port", "0", "--allow-dir", str(tmp_path / "nope"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--allow-dir" in err


def test_a_plain_run_imports_no_serve_module(color_onnx, tmp_path):
    from onnxmodels import solid_png

    img = tmp_path / "red.png"
    img.write_bytes(solid_png((200, 0, 0)))
    probe = ("import runpy, sys, json\nsys.argv = ['edgecnn', 'run', sys.argv[1], '--source', sys.argv[2], '-q']\n"
             "try:\n    runpy.run_module('edgecnn', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('MODULES ' + json.dumps(sorted(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", probe, str(color_onnx), str(img)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    mods = json.loads(r.stdout.split("MODULES ", 1)[1])
    assert "red" in r.stdout
    loaded = [m for m in mods if m.split(".")[0] in ("starlette", "uvicorn", "prometheus_client", "multipart",
                                                     "python_multipart") or m.startswith("edgecnn.serve")]
    assert loaded == []


STATION = """\
name = "line9"
model = "{model}"

[run]
duration = {duration}

[[sources]]
name = "cam1"
source = "{video}"

[rules]
threshold = 0.5
votes = 1
window = 1

[serve]
port = 9
max_batch = 4
"""


def test_a_station_files_serve_section_with_flags_on_top(color_onnx, colour_video, tmp_path):
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import station_plan

    f = tmp_path / "station.toml"
    f.write_text(STATION.format(model=color_onnx, video=colour_video, duration=3))
    plan = station_plan(f, {"port": 0})
    serve = plan.sections["serve"]
    assert isinstance(serve, ServeConfig) and (serve.port, serve.max_batch) == (0, 4)
    f.write_text(STATION.format(model=color_onnx, video=colour_video, duration=3).split("[serve]")[0])
    assert station_plan(f, {"port": 0}).sections["serve"].port == 0  # no [serve]: the defaults, flags on top


def test_serve_a_station_file(color_onnx, colour_video, tmp_path):
    """``edgecnn serve STATION.toml`` runs the station and serves it (or says in one line that the engine is not in
    this build)."""
    import importlib.util

    f = tmp_path / "station.toml"
    f.write_text(STATION.format(model=color_onnx, video=colour_video, duration=4))
    proc = edgecnn("serve", str(f), "--port", "0", "--max-delay-ms", "2")
    out, err = proc.communicate(timeout=120)
    if importlib.util.find_spec("edgecnn.station.engine") is None:
        assert proc.returncode == 2 and "station engine" in err and "Traceback" not in err
        return
    assert proc.returncode == 0, err
    assert re.search(r"http://127\.0\.0\.1:\d+", out + err) and "station line9 stopped" in out
