"""Standard metadata both ways: what edgecnn writes is readable by any TFLite/ONNX tool, and models other tools
made (standard metadata only, no edgecnn card) run in ``edgecnn run``/``info`` with their real labels and
normalization. The foreign files are written here as those tools write them: the TFLite metadata flatbuffer
packed with its labels file (MediaPipe Model Maker's layout), an ONNX file with Ultralytics-style ``names``.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from converters.tflite_metadata import AssociatedFile, ModelInfo, TensorInfo, populate
from edgecnn.cli import app
from edgecnn.modelcard import load_card
from edgecnn.standard_metadata import read_tflite

runner = CliRunner()
FOREIGN_LABELS = ["daisy", "rose", "tulip"]
SIZE = 16


def _labels_file() -> AssociatedFile:
    return AssociatedFile("labels.txt", "Labels for categories that the model can recognize.", 2,
                          "\n".join(FOREIGN_LABELS).encode())


def _folder(tmp_path, pixels):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(pixels[:12]):
        Image.fromarray(img).save(folder / f"img{i:02d}.png")
    return folder, pixels[:12]


def _run_csv(model, folder, tmp_path) -> list[dict]:
    out = tmp_path / f"{model.stem}.csv"
    res = runner.invoke(app, ["run", str(model), "--source", str(folder), "--save-csv", str(out)])
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: r["source"])


def test_model_maker_style_tflite_runs_with_its_labels_and_normalization(tiny_model, pixels, tmp_path):
    """A graph that takes (x - 127.5) / 127.5, as MediaPipe Model Maker's classifiers do, with only standard metadata:
    edgecnn must normalize as NormalizationOptions says and name the classes from the TENSOR_AXIS_LABELS file."""
    import keras

    from converters import to_tflite

    inp = keras.Input((SIZE, SIZE, 3), name="input_1")
    graph = keras.Model(inp, tiny_model(keras.layers.Rescaling(127.5, offset=127.5)(inp)))  # [-1, 1] → 0..255 → model
    info = ModelInfo(
        name="flowers", description="Identify the most prominent object in the image.", version="v1",
        author="MediaPipe Model Maker", license="Apache",
        inputs=[TensorInfo("image", "Input image to be classified.", image=("rgb", SIZE, SIZE), mean=[127.5], std=[127.5],
                           stats_min=[-1.0], stats_max=[1.0])],
        outputs=[TensorInfo("probability", "Probabilities of the labels.", stats_min=[0.0], stats_max=[1.0],
                            files=[_labels_file()])])
    model = tmp_path / "flowers.tflite"
    model.write_bytes(populate(to_tflite.convert(graph, "float32"), info))

    card = load_card(model)
    assert card.labels == FOREIGN_LABELS and card.name == "flowers"
    assert (card.preprocessing.mean, card.preprocessing.std) == ([127.5], [127.5]) and card.preprocessing.normalizes
    assert card.provenance["source"] == "tflite-metadata" and card.provenance["author"] == "MediaPipe Model Maker"
    assert card.artifact == {"format": "tflite", "precision": "float32"}

    folder, imgs = _folder(tmp_path, pixels)
    rows = _run_csv(model, folder, tmp_path)
    expected = np.asarray(tiny_model(imgs.astype(np.float32), training=False))
    assert [r["label"] for r in rows] == [FOREIGN_LABELS[i] for i in expected.argmax(1)]
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected.max(1), atol=1e-4)

    res = runner.invoke(app, ["info", str(model), "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["card"]["labels"] == FOREIGN_LABELS and shown["inputs"][0]["name"] == "image"


def test_labels_only_int8_tflite_runs_with_real_labels(tiny_model, pixels, tmp_path):
    """Only a labels file in the metadata (uint8 model, no ImageProperties/normalization): real labels, not class_0."""
    from converters import to_tflite

    info = ModelInfo(name="", description="", version="", inputs=[TensorInfo("input", content=False)],
                     outputs=[TensorInfo("output", files=[_labels_file()])])
    model = tmp_path / "labels_only.tflite"
    model.write_bytes(populate(to_tflite.convert(tiny_model, "int8", pixels[:30].astype(np.float32), "uint8"), info))
    assert load_card(model).artifact["precision"] == "int8"  # read from the tensors
    folder, imgs = _folder(tmp_path, pixels)
    rows = _run_csv(model, folder, tmp_path)
    expected = np.asarray(tiny_model(imgs.astype(np.float32), training=False)).argmax(1)
    got = [r["label"] for r in rows]
    assert set(got) <= set(FOREIGN_LABELS)
    assert np.mean([g == FOREIGN_LABELS[e] for g, e in zip(got, expected)]) >= 0.9  # int8 vs float Keras


def test_labels_file_that_contradicts_the_output_is_one_clear_error(tiny_model, tmp_path):
    from converters import to_tflite

    two = AssociatedFile("labels.txt", "", 2, b"a\nb\n")
    info = ModelInfo(name="m", description="", version="", inputs=[TensorInfo("image", image=("rgb", SIZE, SIZE),
                                                                              mean=[0.0], std=[1.0])],
                     outputs=[TensorInfo("probabilities", files=[two])])
    model = tmp_path / "bad.tflite"
    model.write_bytes(populate(to_tflite.convert(tiny_model, "float32"), info))
    res = runner.invoke(app, ["run", str(model), "--source", "synthetic", "--max-frames", "1"])
    assert res.exit_code != 0 and "lists 2 labels but the output has 3 values" in res.output


def test_edgecnn_tflite_carries_standard_metadata(exported_artifacts):
    """Every exported .tflite: TFLITE_METADATA with name/description/version, RGB ImageProperties at the model's
    size, NormalizationOptions mean 0 std 1, labels as TENSOR_AXIS_LABELS, the card referenced; tensors named
    image/probabilities as in ONNX."""
    for key in ("tflite-float32", "tflite-float16", "tflite-dynamic", "tflite-int8"):
        meta = read_tflite(exported_artifacts[key].read_bytes())
        assert meta.has_metadata and meta.name == "tiny" and meta.version and meta.min_parser_version == "1.0.0"
        assert "image classifier over 3 classes (alpha, beta, gamma)" in meta.description
        [im] = meta.input_metadata
        assert (im.content, im.color_space, im.default_size, im.mean, im.std) == ("image", "rgb", (24, 24), [0.0], [1.0])
        assert meta.labels() == ["alpha", "beta", "gamma"]
        assert sorted(meta.referenced_files()) == sorted(meta.packed) == ["labels.txt", "modelcard.json"]
        assert [t.name for t in meta.inputs] == ["image"] and [t.name for t in meta.outputs] == ["probabilities"]
    int8 = read_tflite(exported_artifacts["tflite-int8"].read_bytes())
    assert (int8.inputs[0].dtype, int8.inputs[0].scale, int8.inputs[0].zero_point) == ("uint8", 1.0, 0)


def test_onnx_carries_doc_string_graph_name_producer(exported_artifacts):
    import onnxruntime as ort

    for key in ("onnx-float32", "onnx-int8"):
        meta = ort.InferenceSession(str(exported_artifacts[key]), providers=["CPUExecutionProvider"]).get_modelmeta()
        assert meta.producer_name == "edgecnn" and meta.graph_name == "tiny"
        assert "image classifier over 3 classes (alpha, beta, gamma)" in meta.description
        assert meta.custom_metadata_map["labels"] == "alpha\nbeta\ngamma"
        assert json.loads(meta.custom_metadata_map["edgecnn.modelcard"])["labels"] == ["alpha", "beta", "gamma"]


def test_onnx_made_elsewhere_runs_with_its_names(tiny_model, pixels, tmp_path):
    """An ONNX classifier with Ultralytics-style ``names`` metadata and no edgecnn card: real labels."""
    import onnx

    from converters import to_onnx

    proto = to_onnx.to_onnx(tiny_model)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "names", "{0: 'daisy', 1: 'rose', 2: 'tulip'}"
    model = tmp_path / "foreign.onnx"
    onnx.save(proto, model)
    assert load_card(model) is None  # no edgecnn card: the backend builds one from the tensors and the names
    folder, imgs = _folder(tmp_path, pixels)
    rows = _run_csv(model, folder, tmp_path)
    expected = np.asarray(tiny_model(imgs.astype(np.float32), training=False)).argmax(1)
    assert [r["label"] for r in rows] == [FOREIGN_LABELS[i] for i in expected]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_sigmoid_head_is_written_as_two_probabilities(fmt, pixels, tmp_path):
    """A one-unit sigmoid head (edgecnn's default for two classes) is written as [1 - p, p]: one score per label,
    as MediaPipe and every classifier consumer read it; the labels file lists both labels."""
    import keras

    import converters
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec
    from edgecnn.runtime.backends import load_backend

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inp))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x))
    card = ModelCard(labels=["ok", "defect"], input=InputSpec(SIZE, SIZE, 3), output=OutputSpec("sigmoid", units=1))
    done = converters.convert(model, fmt, "float32", tmp_path / f"bin.{fmt}", metadata=card.to_dict(), labels=card.labels)
    assert done.outputs[0]["shape"][-1] == 2 and done.metadata["output"]["units"] == 2
    p = np.asarray(model(pixels.astype(np.float32), training=False))
    with load_backend(done.path) as backend:
        assert backend.labels == ["ok", "defect"]
        np.testing.assert_allclose(backend.predict(pixels), np.concatenate([1 - p, p], 1), atol=1e-5)
    if fmt == "tflite":
        assert read_tflite(done.path.read_bytes()).labels() == ["ok", "defect"]
