"""Issue 12: what a one-image ``edgecnn run`` imports, and batched folder runs giving batch-1 results.

Behaviour only (no timings): the cold-start figures themselves come from ``benchmarks/cold_start.py``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.console import set_quiet
from edgecnn.runtime.runner import FINITE_BATCH, RunOptions, run
from edgecnn.synthetic import pattern_image

ROOT = Path(__file__).resolve().parents[2]

#: Imports a one-image run on a piped terminal needs none of: Typer and Click (the direct parser reads its line),
#: OpenCV, Rich, Pydantic (Typer's coercion),
#: TensorFlow/Keras, the converters (but their registry, the pure-Python leaf of names ARCHITECTURE.md lets the
#: edge side read), onnxruntime (a .tflite model), the training/export/bench layers.
NOT_NEEDED = ("typer", "click", "cv2", "rich", "pydantic", "tensorflow", "keras", "tf2onnx", "onnxruntime", "edgecnn.training",
              "edgecnn.export", "edgecnn.bench", "edgecnn.cli.train", "edgecnn.cli.export")
REGISTRY_LEAF = ("converters", "converters.registry", "converters.errors")

PROBE = """
import json, sys
from edgecnn.cli import main
sys.argv = ["edgecnn", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("MODULES " + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def _run_cli(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("FORCE_COLOR", None)
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120)
    line = next((x for x in res.stdout.splitlines() if x.startswith("MODULES ")), None)
    assert line is not None, res.stdout + res.stderr
    return res, set(json.loads(line[len("MODULES "):]))


def _loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.fixture()
def one_png(tmp_path) -> Path:
    path = tmp_path / "one.png"  # 37x41: the 24 px model needs a (non-integer) INTER_AREA downscale
    Image.fromarray(pattern_image("disc", 41, np.random.default_rng(0))[:37]).save(path)
    return path


def test_one_image_run_imports_only_what_it_needs(int8_model, one_png):
    res, modules = _run_cli("run", str(int8_model), "--source", str(one_png), "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Processed 1 input (1 classified" in res.stdout
    loaded = [name for name in NOT_NEEDED if _loaded(modules, name)]
    loaded += sorted(m for m in modules if m.split(".")[0] == "converters" and m not in REGISTRY_LEAF)
    assert loaded == [], f"a one-image run imported {loaded}"


@pytest.fixture(scope="module")
def gray_tflite(tmp_path_factory, shapes_dir) -> Path:
    """A grayscale tiny run exported to float32 TFLite by ``edgecnn export`` (card embedded: color grayscale)."""
    from tinymodels import make_tiny_run

    from edgecnn.export import export

    base = tmp_path_factory.mktemp("gray")
    run_dir = make_tiny_run(shapes_dir, base / "run", epochs=2, channels=1)
    report = export(run_dir, formats=["tflite"], quantize=["none"], out=base / "export")
    return report.artifacts()["tflite-float32"]


def test_one_image_run_of_a_grayscale_model_needs_no_opencv(gray_tflite, one_png):
    """Issue 25: the RGB-to-gray conversion is numpy (OpenCV's exact pixels), so a gray preset's cold start
    pays no OpenCV import."""
    res, modules = _run_cli("run", str(gray_tflite), "--source", str(one_png), "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Processed 1 input (1 classified" in res.stdout
    assert not _loaded(modules, "cv2"), "a grayscale one-image run imported OpenCV"


def test_the_probe_sees_opencv_when_a_folder_needs_it(int8_model, shapes_dir):
    """Folders decode on worker threads with OpenCV (GIL-free): the same probe must then find cv2 loaded."""
    res, modules = _run_cli("run", str(int8_model), "--source", str(shapes_dir), "--quiet", "--workers", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _loaded(modules, "cv2")


def test_one_image_gives_the_same_result_with_or_without_opencv(int8_model, one_png, tmp_path):
    """The numpy INTER_AREA and Pillow decode used for one image give the folder path's (OpenCV) result."""
    set_quiet(True)
    single = run(RunOptions(model=int8_model, source=str(one_png), save_csv=tmp_path / "one.csv"))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "one.png").write_bytes(one_png.read_bytes())
    many = run(RunOptions(model=int8_model, source=str(folder), workers=2, save_csv=tmp_path / "many.csv"))
    assert single.ok == many.ok == 1
    assert single.input_shape[0] == 1  # a one-image source is not reported as a batch of 16
    a, b = _rows(tmp_path / "one.csv"), _rows(tmp_path / "many.csv")
    assert [r["label"] for r in a] == [r["label"] for r in b]
    assert [r["topk"] for r in a] == [r["topk"] for r in b]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


RESULT_COLUMNS = ("source", "index", "label", "score", "topk", "status", "error")


@pytest.mark.parametrize("key", ["tflite-int8", "tflite-float32", "tflite-float16", "onnx-float32"])
def test_batched_folder_run_gives_batch_1_rows(artifacts, mixed_dir, tmp_path, key):
    """Default batching on a folder (and an explicit large batch) changes no label, score or skip."""
    from edgecnn.runtime.backends import load_backend

    set_quiet(True)
    model = artifacts[key]
    with load_backend(model) as be:
        dynamic = be.max_batch is None
    one = run(RunOptions(model=model, source=str(mixed_dir), batch=1, save_csv=tmp_path / "b1.csv"))
    default = run(RunOptions(model=model, source=str(mixed_dir), save_csv=tmp_path / "bd.csv"))
    big = run(RunOptions(model=model, source=str(mixed_dir), batch=7, workers=3, save_csv=tmp_path / "b7.csv"))
    assert one.input_shape[0] == 1
    assert default.input_shape[0] == (FINITE_BATCH if dynamic else 1)  # batched by default where the model allows
    assert big.input_shape[0] == (7 if dynamic else 1)
    if key.startswith("tflite"):
        assert dynamic  # LiteRT resizes the batch dimension of our exports
    rows = [_rows(tmp_path / f) for f in ("b1.csv", "bd.csv", "b7.csv")]
    assert len(rows[0]) == one.count > 0 and any(r["status"] == "skipped" for r in rows[0])
    projected = [[{c: r[c] for c in RESULT_COLUMNS} for r in rs] for rs in rows]
    assert projected[1] == projected[0]
    assert projected[2] == projected[0]


def test_live_sources_are_not_batched_by_default(int8_model):
    set_quiet(True)
    summary = run(RunOptions(model=int8_model, source="synthetic:200:64x48", max_frames=10))
    assert summary.input_shape[0] == 1
