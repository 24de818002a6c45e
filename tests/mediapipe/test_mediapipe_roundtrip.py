"""The standard consumer: MediaPipe Tasks' ``ImageClassifier`` on every ``.tflite`` that
``edgecnn export --format tflite --quantize all`` writes with default flags (float32, float16, dynamic, int8).

MediaPipe runs in its own venv (``make mediapipe-venv``, which ``make test`` builds: mediapipe's pins are its
own), through ``mp_classify.py``; edgecnn's side is the real ``edgecnn run`` CLI. On a held-out folder
(48 px images, so both sides resize to the model's 24 px, each with its own resampler: edgecnn the one training
used, MediaPipe its bilinear warp) MediaPipe's top-1 label names must agree with ``edgecnn run`` on at least 99 %
of the images, and be the real labels. The model is trained to 100 % test accuracy on its learnable toy data:
a barely trained one (67 %) agrees on 100 % of 24 px images but only ~77 % of 48 px ones, because its
decisions hang on how pixels are resampled.

Grayscale: MediaPipe 1.2.2 refuses any 1-channel image model ("Only RGB color space is supported for now" when the
metadata says GRAYSCALE, and "depth = 3 or 4" when it says nothing); that is shown here, not hidden.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.synthetic import write_dataset

ROOT = Path(__file__).resolve().parents[2]
MP_PYTHON = Path(os.environ.get("EDGECNN_MEDIAPIPE_PYTHON") or ROOT / ".venv-mediapipe" / "bin" / "python")
WORKER = Path(__file__).with_name("mp_classify.py")
PRECISIONS = ("float32", "float16", "dynamic", "int8")
LABELS = ["cat", "dog", "bird"]

pytestmark = pytest.mark.skipif(
    not MP_PYTHON.exists(), reason=f"no MediaPipe venv at {MP_PYTHON}: `make mediapipe-venv` builds it (make test does)")


def _edgecnn(*args: object) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _mediapipe(tmp: Path, models: list[Path] = (), images: list[str] = (), metadata: list[Path] = ()) -> dict:
    request, answer = tmp / "mp_request.json", tmp / "mp_answer.json"
    request.write_text(json.dumps({"models": [str(m) for m in models], "images": list(images),
                                   "metadata": [str(m) for m in metadata]}), encoding="utf-8")
    res = subprocess.run([str(MP_PYTHON), str(WORKER), str(request), str(answer)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "GLOG_minloglevel": "2", "PYTHONPATH": ""})
    # a crash (MediaPipe segfaulted, exit 139, on an unreferenced associated file) fails here
    assert res.returncode == 0, f"MediaPipe exited {res.returncode}:\n{res.stderr[-3000:]}"
    return json.loads(answer.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """Tiny trained RGB and grayscale runs, each exported with ``--format tflite --quantize all`` and default flags."""
    from tinymodels import make_tiny_run

    root = tmp_path_factory.mktemp("mediapipe")
    train = write_dataset(root / "train", classes=LABELS, per_class=40, size=32, seed=0)
    heldout = write_dataset(root / "heldout", classes=LABELS, per_class=50, size=48, seed=11)
    models = {}
    for channels in (3, 1):
        run = make_tiny_run(train, root / f"run{channels}", epochs=15, channels=channels)
        out = root / f"export{channels}"
        _edgecnn("export", run, "--format", "tflite", "--quantize", "all", "--out", out)
        models[channels] = {p: out / f"model-{p}.tflite" for p in PRECISIONS}
        assert all(m.exists() for m in models[channels].values())
    return {"heldout": heldout, "models": models, "root": root}


def _edgecnn_labels(model: Path, folder: Path, tmp: Path) -> dict[str, str]:
    out = tmp / f"{model.stem}.csv"
    _edgecnn("run", model, "--source", folder, "--save-csv", out, "--top-k", "1")
    with out.open(encoding="utf-8") as fh:
        return {row["source"]: row["label"] for row in csv.DictReader(fh) if row["status"] == "ok"}


def test_mediapipe_classifies_every_default_rgb_tflite_like_edgecnn_run(exported, tmp_path):
    folder = exported["heldout"]
    images = sorted(str(p) for p in folder.rglob("*.png"))
    models = exported["models"][3]
    answer = _mediapipe(tmp_path, list(models.values()), images)
    agreement = {}
    for precision, model in models.items():
        got = answer[str(model)]
        assert "error" not in got, f"MediaPipe refused {model.name}: {got.get('error')}"
        mp_names = {img: r[0] for img, r in got["results"].items()}
        assert set(mp_names.values()) <= set(LABELS), f"category_name is not a real label: {set(mp_names.values())}"
        ours = _edgecnn_labels(model, folder, tmp_path)
        assert set(ours) == set(images)
        agreement[precision] = sum(mp_names[i] == ours[i] for i in images) / len(images)
    print("\nMediaPipe ImageClassifier vs edgecnn run, top-1 agreement on", len(images), "held-out images (RGB):",
          json.dumps(agreement))
    assert all(v >= 0.99 for v in agreement.values()), agreement


def test_mediapipe_cannot_take_one_channel_models_at_all(exported, tmp_path):
    models = exported["models"][1]
    answer = _mediapipe(tmp_path, list(models.values()), [])
    for precision, model in models.items():
        assert "Only RGB color space is supported" in answer[str(model)].get("error", ""), (precision, answer[str(model)])
    # not our metadata's doing: the same int8 model with labels-only metadata (no ImageProperties) is refused for
    # its 1-channel input tensor
    from converters.tflite_metadata import AssociatedFile, ModelInfo, TensorInfo, populate

    bare = tmp_path / "gray-labels-only.tflite"
    labels = AssociatedFile("labels.txt", "labels", 2, "\n".join(LABELS).encode())
    info = ModelInfo(name="gray", description="", version="1", inputs=[TensorInfo("image", content=False)],
                     outputs=[TensorInfo("probabilities", files=[labels])])
    bare.write_bytes(populate(models["int8"].read_bytes(), info))
    error = _mediapipe(tmp_path, [bare], [])[str(bare)].get("error", "")
    assert "depth = 3 or 4" in error, error
    # and edgecnn runs that labels-only file with its real labels
    ours = _edgecnn_labels(bare, exported["heldout"], tmp_path)
    assert set(ours.values()) <= set(LABELS) and len(ours) == 150


def test_metadata_reads_back_with_mediapipes_generated_schema_code(exported, tmp_path):
    """What Netron and every metadata reader see: MediaPipe's generated object API decodes the TFLITE_METADATA
    buffer that TensorFlow's generated TFLite schema code finds in the model."""
    from tensorflow.lite.python import schema_py_generated as schema

    files = []
    for channels, models in exported["models"].items():
        for precision, model in models.items():
            buf = model.read_bytes()
            tfl = schema.Model.GetRootAsModel(buf, 0)
            entries = {tfl.Metadata(i).Name().decode(): tfl.Metadata(i).Buffer() for i in range(tfl.MetadataLength())}
            assert "TFLITE_METADATA" in entries and "min_runtime_version" in entries  # the converter's entry is kept
            graph = tfl.Subgraphs(0)
            assert graph.Tensors(graph.Inputs(0)).Name() == b"image"
            assert graph.Tensors(graph.Outputs(0)).Name() == b"probabilities"
            out = tmp_path / f"meta-{channels}-{precision}.bin"
            out.write_bytes(tfl.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy().tobytes())
            files.append((channels, precision, out))
    answer = _mediapipe(tmp_path, metadata=[f for _, _, f in files])
    for channels, _precision, f in files:
        meta = answer[str(f)]
        enums = meta["enums"]
        assert meta["name"] == "tiny" and meta["min_parser_version"] == "1.0.0" and meta["version"]
        assert "image classifier over 3 classes" in meta["description"]
        [inp], [out] = meta["inputs"], meta["outputs"]
        assert inp["name"] == "image" and out["name"] == "probabilities"
        assert inp["content_type"] == enums["ImageProperties"] and inp["default_size"] == [24, 24]
        assert inp["color_space"] == enums["RGB" if channels == 3 else "GRAYSCALE"]
        assert (inp["mean"], inp["std"]) == ([0.0], [1.0])  # the graph takes 0..255 and rescales
        assert out["files"] == [{"name": "labels.txt", "type": enums["TENSOR_AXIS_LABELS"],
                                 "description": "Labels of the output's classes, one per line."}]
        assert [f["name"] for f in meta["files"]] == ["modelcard.json"]  # the card: referenced, so MediaPipe is safe
        assert meta["files"][0]["type"] == enums["DESCRIPTIONS"]


def test_mediapipe_names_both_classes_of_a_sigmoid_binary_model(tmp_path):
    """edgecnn's default head for two classes is one sigmoid unit; its artifacts carry [1 - p, p], so MediaPipe
    reports either label (a one-value output would make it answer labels[1] for every image)."""
    import keras
    import numpy as np

    import converters
    from edgecnn.imaging import load_image, scan_labelled_folder
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec
    from edgecnn.runtime.backends import load_backend

    kinds = ["ok", "defect"]  # write_dataset draws each class's pattern from its position in this list
    data = scan_labelled_folder(write_dataset(tmp_path / "train", classes=kinds, per_class=40, size=24, seed=0))
    labels = data.labels  # sorted, as the trainer orders them
    x = np.stack([load_image(f, 24, 24) for f in data.files]).astype(np.float32)
    keras.utils.set_random_seed(0)
    inp = keras.Input((24, 24, 3), name="image")
    h = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inp))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(16, 3, activation="relu")(keras.layers.MaxPooling2D()(h)))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    model.fit(x, np.asarray(data.targets, np.float32)[:, None], epochs=30, batch_size=16, verbose=0)
    card = ModelCard(labels=labels, input=InputSpec(24, 24, 3), output=OutputSpec("sigmoid", units=1), name="binary")
    models = [converters.convert(model, "tflite", p, tmp_path / f"model-{p}.tflite", calibration=x[::2],
                                 metadata=card.to_dict(), labels=labels).path for p in ("float32", "int8")]
    heldout = write_dataset(tmp_path / "heldout", classes=kinds, per_class=40, size=24, seed=5)
    images = sorted(str(p) for p in heldout.rglob("*.png"))
    answer = _mediapipe(tmp_path, models, images)
    for model_path in models:
        mp_names = [answer[str(model_path)]["results"][i][0] for i in images]
        with load_backend(model_path) as backend:
            probs = backend.predict(np.stack([load_image(i, 24, 24) for i in images]))
        ours = [labels[k] for k in probs.argmax(1)]
        assert np.mean([o == Path(i).parent.name for o, i in zip(ours, images)]) >= 0.9, "the toy model did not learn"
        assert set(mp_names) == set(labels), set(mp_names)  # both classes named
        agreement = float(np.mean([a == b for a, b in zip(mp_names, ours)]))
        print(f"\nMediaPipe vs edgecnn, binary sigmoid model {model_path.name}: top-1 agreement {agreement:.4f}")
        assert agreement >= 0.99
