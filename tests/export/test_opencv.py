"""edgecnn's artifacts in OpenCV DNN (issue 23): every OpenCV version of the matrix × every artifact edgecnn exports.

Each OpenCV version is installed from PyPI by pip into its own folder (``pip install --no-deps --target``), cached
outside the repository (``$EDGECNN_TEST_CACHE`` or ``~/.cache/edgecnn-tests``), and run in a subprocess whose
``PYTHONPATH`` puts it before the environment's own OpenCV. The model is a tiny trained CNN with a Flatten head
(the layer whose run-time SHAPE op OpenCV cannot import), exported twice: the default export (TFLite float32,
float16, dynamic, int8; ONNX float32, int8) and ``--target opencv``. OpenCV gets the pixels ``edgecnn run``
preprocessed, so top-1 agreement measures the runtimes, not two resize filters.

What must work: the ``--target opencv`` artifacts (float32 and float16 TFLite, float32 ONNX, int8 ONNX with uint8
weights) in every version, top-1 agreement ≥ 99 % with ``edgecnn run``. What cannot (OpenCV's own errors) is
recorded in the printed matrix and in README's table: dynamic-range and int8 TFLite, the default int8 ONNX
(int8 weights) on OpenCV 5.x, and the SavedModel folder (OpenCV 4.x reads frozen GraphDefs only, 5.x removed its
TensorFlow importer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

#: OpenCV releases on PyPI the matrix covers (``pip index versions opencv-python-headless``: 4.12, 4.13, 5.0, 5.1).
OPENCV_VERSIONS = ("4.12.0.88", "4.13.0.92", "5.0.0.93", "5.1.0.95")

#: What OpenCV is asked to run: (export, artifact key) → must it load and agree (True) or is it a known limit.
MUST_RUN = {("opencv", "tflite-float32"), ("opencv", "tflite-float16"), ("opencv", "onnx-float32"),
            ("opencv", "onnx-int8"), ("default", "tflite-float32"), ("default", "tflite-float16"),
            ("default", "onnx-float32")}

_SCRIPT = r"""
import json, sys
import numpy as np
import cv2
spec = json.load(open(sys.argv[1]))
pixels = np.load(spec["pixels"])  # uint8 N×H×W×C, as edgecnn preprocessed them
out = {"version": cv2.__version__, "file": cv2.__file__, "results": {}}
for name, path in spec["artifacts"].items():
    try:
        net = cv2.dnn.readNet(path + "/saved_model.pb" if path.endswith("_saved_model") else path)
        top1 = []
        for img in pixels.astype(np.float32):
            # the TFLite importer takes an NCHW blob (it keeps TFLite's layout inside); edgecnn's ONNX takes NHWC
            blob = img.transpose(2, 0, 1)[None] if path.endswith(".tflite") else img[None]
            net.setInput(np.ascontiguousarray(blob))
            top1.append(int(np.asarray(net.forward()).reshape(-1).argmax()))
        out["results"][name] = {"top1": top1}
    except Exception as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        out["results"][name] = {"error": lines[-1][:300] if lines else type(exc).__name__}
print(json.dumps(out))
"""


def _cache_root() -> Path:
    return Path(os.environ.get("EDGECNN_TEST_CACHE") or Path.home() / ".cache" / "edgecnn-tests") / "opencv"


def _opencv(version: str) -> Path:
    """A folder holding ``cv2`` of this OpenCV version (installed once, then reused)."""
    target = _cache_root() / version
    if (target / "cv2").is_dir():
        return target
    staging = target.with_name(f".{version}.partial")
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                          "--target", str(staging), f"opencv-python-headless=={version}"],
                         capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"opencv-python-headless {version} could not be installed from PyPI (no network?): "
                    f"{res.stderr.strip().splitlines()[-1:] or res.returncode}")
    staging.rename(target)
    return target


@pytest.fixture(scope="module")
def exports(tmp_path_factory, shapes_dir):
    """A tiny trained Flatten-head model exported by default and with ``target="opencv"``, plus edgecnn's top-1 on
    its held-out split."""
    from tinymodels import make_tiny_run

    from edgecnn.export import export

    root = tmp_path_factory.mktemp("opencv")
    run = make_tiny_run(shapes_dir, root / "run", head="flatten")
    default = export(run, formats=["tflite", "onnx", "saved_model"], quantize=["all"], out=root / "default")
    default.raise_for_gates()
    opencv = export(run, target="opencv")
    opencv.raise_for_gates()
    return {"default": default.artifacts(), "opencv": opencv.artifacts(), "run": run}


def test_the_opencv_target_writes_what_opencv_reads(exports):
    """No SHAPE op in any TFLite (Flatten is a constant-shape reshape), uint8 weights in the int8 ONNX."""
    import onnx
    from onnx import numpy_helper

    from edgecnn.runtime.backends import load_backend

    assert set(exports["opencv"]) == {"tflite-float32", "tflite-float16", "onnx-float32", "onnx-int8"}
    assert Path(exports["opencv"]["onnx-int8"]).parent.name == "export-opencv"
    for key, path in [*exports["default"].items(), *exports["opencv"].items()]:
        if key.startswith("tflite"):  # (saved_model: OpenCV reads frozen GraphDefs, 5.x no TensorFlow at all)
            with load_backend(path) as be:
                ops = {op["op_name"] for op in be.interpreter._get_ops_details()}
            assert "SHAPE" not in ops and "RESHAPE" in ops, (key, ops)
    model = onnx.load(str(exports["opencv"]["onnx-int8"]))
    inits = {i.name: numpy_helper.to_array(i).dtype for i in model.graph.initializer}
    weights = [inits[n.input[0]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert weights and all(d != np.int8 for d in weights)
    with load_backend(exports["opencv"]["onnx-int8"]) as be:
        assert be.card.artifact["target"] == "opencv" and "u8u8" in be.card.artifact["quantization"]


def test_opencv_dnn_runs_every_artifact_and_agrees_with_edgecnn_run(exports, tmp_path):
    import edgecnn
    from edgecnn.runs import load_split

    split = load_split(exports["run"], "test")
    files = [str(f) for f in split.files]
    artifacts = {f"{export}/{key}": str(path) for export in ("default", "opencv")
                 for key, path in exports[export].items() if key != "golden"}
    expected_of = {name: path for name, path in artifacts.items() if not name.endswith("saved_model-float32")}
    clf = edgecnn.load(exports["opencv"]["tflite-float32"])
    pixels = np.stack([clf.backend.preprocess(clf_rgb) for clf_rgb in (_rgb(f) for f in files)])
    np.save(tmp_path / "pixels.npy", pixels)
    expected = {name: [p.class_index for p in edgecnn.load(path).predict(files)] for name, path in expected_of.items()}
    expected.update({n: expected["default/tflite-float32"] for n in artifacts if n not in expected_of})
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"pixels": str(tmp_path / "pixels.npy"), "artifacts": artifacts}))
    script = tmp_path / "opencv_run.py"
    script.write_text(_SCRIPT)

    matrix: dict[str, dict[str, str]] = {}
    failures = []
    for version in OPENCV_VERSIONS:
        folder = _opencv(version)
        env = {**os.environ, "PYTHONPATH": str(folder), "OPENCV_LOG_LEVEL": "ERROR"}
        res = subprocess.run([sys.executable, str(script), str(spec)], capture_output=True, text=True, env=env,
                             timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["version"].startswith(version.rsplit(".", 1)[0]) and str(folder) in out["file"]
        row = matrix.setdefault(out["version"], {})
        for name, result in out["results"].items():
            export, key = name.split("/")
            if "error" in result:
                row[name] = f"error: {result['error']}"
                if (export, key) in MUST_RUN:
                    failures.append(f"OpenCV {out['version']} {name}: {result['error']}")
                continue
            agreement = float(np.mean(np.asarray(result["top1"]) == np.asarray(expected[name])))
            row[name] = f"{agreement:.1%} of {len(files)}"
            if (export, key) in MUST_RUN and agreement < 0.99:
                failures.append(f"OpenCV {out['version']} {name}: top-1 agreement {agreement:.1%} < 99 %")
    print(json.dumps(matrix, indent=1))  # the matrix of the closing note (pytest -s shows it)
    (Path(os.environ.get("EDGECNN_OPENCV_MATRIX", tmp_path / "matrix.json"))).write_text(json.dumps(matrix, indent=1))
    assert not failures, failures


def _rgb(path: str) -> np.ndarray:
    from edgecnn.imaging import decode_image

    return decode_image(path)
