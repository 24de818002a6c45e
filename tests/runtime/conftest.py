"""Runtime fixtures: real exported artifacts (TFLite fp32/int8, ONNX fp32) with embedded model cards,
real image folders and MJPG videos written with cv2.VideoWriter as camera stand-ins.

Artifacts come from the shared ``exported_artifacts`` fixture (``edgecnn export``'s converters) when it is
defined; otherwise they are converted here directly with TFLiteConverter / tf2onnx and the card is embedded
by the same contract (zip appended to the flatbuffer / ONNX ``metadata_props``).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.imaging import load_image, scan_labelled_folder
from edgecnn.modelcard import ONNX_KEY, TFLITE_MEMBER, ModelCard, Quantization


def _embed_tflite(flat: bytes, card: ModelCard) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(TFLITE_MEMBER, card.to_json())
        zf.writestr("labels.txt", "".join(f"{x}\n" for x in card.labels))
    return flat + buf.getvalue()


def _build_artifacts(run_dir: Path, out: Path) -> dict[str, Path]:
    import keras
    import tensorflow as tf

    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    card = ModelCard.from_json((run_dir / "modelcard.json").read_bytes())
    data = scan_labelled_folder(json.loads((run_dir / "splits.json").read_text())["root"])
    calib = np.stack([load_image(f, 24, 24) for f in data.files[::3]]).astype(np.float32)
    arts: dict[str, Path] = {"dir": out}

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    flat = conv.convert()
    c = card.with_artifact(format="tflite", precision="float32")
    (out / "model_float32.tflite").write_bytes(_embed_tflite(flat, c))
    arts["tflite-float32"] = out / "model_float32.tflite"

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    flat = conv.convert()
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flat)
    qi, qo = it.get_input_details()[0]["quantization"], it.get_output_details()[0]["quantization"]
    c = card.with_artifact(format="tflite", precision="int8")
    c.input.dtype = "uint8"
    c.input.quantization = Quantization(float(qi[0]), int(qi[1]))
    c.output.dtype = "uint8"
    c.output.quantization = Quantization(float(qo[0]), int(qo[1]))
    (out / "model_int8.tflite").write_bytes(_embed_tflite(flat, c))
    arts["tflite-int8"] = out / "model_int8.tflite"

    import tf2onnx

    fn = tf.function(lambda x: model(x, training=False))
    spec = (tf.TensorSpec((None, 24, 24, 3), tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, card.with_artifact(format="onnx", precision="float32").to_json()
    (out / "model_float32.onnx").write_bytes(proto.SerializeToString())
    arts["onnx-float32"] = out / "model_float32.onnx"
    return arts


@pytest.fixture(scope="session")
def artifacts(request, tiny_run, tmp_path_factory) -> dict[str, Path]:
    """Real artifacts of the tiny run: keys tflite-float32, tflite-int8, onnx-float32, dir (+ more when shared)."""
    try:
        shared = request.getfixturevalue("exported_artifacts")
    except pytest.FixtureLookupError:
        shared = None
    if shared:
        return {k: Path(v) if isinstance(v, (str, Path)) else v for k, v in shared.items()}
    return _build_artifacts(tiny_run, tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def tflite_model(artifacts) -> Path:
    return artifacts["tflite-float32"]


@pytest.fixture(scope="session")
def int8_model(artifacts) -> Path:
    return artifacts["tflite-int8"]


@pytest.fixture(scope="session")
def onnx_model(artifacts) -> Path:
    return artifacts["onnx-float32"]


def write_video(path: Path, frames: int = 20, size: tuple[int, int] = (64, 48), fps: float = 30.0) -> Path:
    """An MJPG .avi with a moving pattern, written with cv2.VideoWriter."""
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for i in range(frames):
        vw.write(np.roll(base, i * 3, axis=1))
    vw.release()
    return path


@pytest.fixture()
def video_file(tmp_path) -> Path:
    return write_video(tmp_path / "clip.avi")
