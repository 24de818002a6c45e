"""Model card schema: JSON round trip, embedding contracts read back without TensorFlow."""

from __future__ import annotations

import io
import json
import sys
import zipfile

import pytest

from edgecnn.errors import ModelError
from edgecnn.modelcard import (
    ONNX_KEY,
    TFLITE_MEMBER,
    InputSpec,
    ModelCard,
    OutputSpec,
    Preprocessing,
    Quantization,
    load_card,
    onnx_labels,
    read_labels_txt,
    read_onnx_card,
    read_onnx_metadata,
    read_tflite_card,
    write_labels_txt,
)


def _card(**kw) -> ModelCard:
    return ModelCard(
        labels=["ا", "ب", "ت"],
        input=InputSpec(height=32, width=32, channels=1, dtype="int8", quantization=Quantization(1.0, -128)),
        output=OutputSpec(activation="softmax", units=3, dtype="int8", quantization=Quantization(1 / 256, -128)),
        preprocessing=Preprocessing(color="grayscale"),  # one channel: a card that says rgb is refused when read
        **kw,
    )


def test_json_round_trip_keeps_utf8_labels_and_quantization():
    card = _card(architecture="blocks", metrics={"test_accuracy": 0.97})
    text = card.to_json()
    assert "ا" in text  # not escaped
    back = ModelCard.from_json(text)
    assert back == card
    assert back.input.quantization == Quantization(1.0, -128)
    assert back.input_shape == (32, 32, 1)


def test_quantization_round_trip():
    q = Quantization(scale=1.0, zero_point=-128)
    import numpy as np

    x = np.array([0, 1, 127.4, 255], dtype=np.float32)
    qi = q.quantize(x, np.int8)
    assert qi.dtype == np.int8 and qi.tolist() == [-128, -127, -1, 127]
    assert q.dequantize(qi).tolist() == [0, 1, 127, 255]


def test_malformed_card_is_a_model_error():
    with pytest.raises(ModelError, match="malformed"):
        ModelCard.from_json('{"labels": ["a"]}')
    with pytest.raises(ModelError, match="not valid JSON"):
        ModelCard.from_json("{nope")
    with pytest.raises(ModelError, match="schema"):
        ModelCard.from_json(json.dumps({**_card().to_dict(), "schema": "other/1"}))


def test_tflite_appended_zip_is_read(tmp_path):
    card = _card()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(TFLITE_MEMBER, card.to_json())
    path = tmp_path / "m.tflite"
    path.write_bytes(b"TFL3" + b"\0" * 100 + buf.getvalue())
    assert read_tflite_card(path.read_bytes()) == card
    assert load_card(path) == card
    assert read_tflite_card(b"TFL3" + b"\0" * 100) is None


def _pb_string_field(field: int, data: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    return varint(field << 3 | 2) + varint(len(data)) + data


def test_onnx_metadata_props_parsed_without_onnx_runtime(tmp_path, monkeypatch):
    """The hand-written protobuf walk is the fallback for a box with no ONNX runtime installed."""
    card = _card()
    entry = _pb_string_field(1, ONNX_KEY.encode()) + _pb_string_field(2, card.to_json().encode())
    other = _pb_string_field(1, b"labels") + _pb_string_field(2, "ا\nب\nت".encode())
    model = b"\x08\x08" + _pb_string_field(2, b"tf2onnx") + _pb_string_field(14, entry) + _pb_string_field(14, other)
    assert read_onnx_metadata(model)["labels"] == "ا\nب\nت"
    assert read_onnx_card(model) == card
    (tmp_path / "m.onnx").write_bytes(model)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    assert load_card(tmp_path / "m.onnx") == card


def test_onnx_card_is_read_through_onnxruntime_where_installed(tmp_path):
    """With onnxruntime installed the card comes from get_modelmeta(); a file it cannot load is one clear error."""
    pytest.importorskip("onnxruntime")
    (tmp_path / "fake.onnx").write_bytes(b"\x08\x08" + _pb_string_field(2, b"tf2onnx"))
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        load_card(tmp_path / "fake.onnx")


def test_onnx_labels_of_models_made_elsewhere():
    assert onnx_labels({"labels": "cat\ndog"}) == ["cat", "dog"]
    assert onnx_labels({"names": "{0: 'person', 1: 'bicycle', 10: 'fire hydrant', 2: 'car'}"}) == [
        "person", "bicycle", "car", "fire hydrant"]
    assert onnx_labels({"classes": '["a", "b"]'}) == ["a", "b"]
    assert onnx_labels({"classes": "a, b ,c"}) == ["a", "b", "c"]
    assert onnx_labels({"author": "x"}) is None


def test_card_beside_model_and_in_run_folder(tmp_path):
    card = _card()
    card.save(tmp_path / "modelcard.json")
    (tmp_path / "model.keras").write_bytes(b"x")
    assert load_card(tmp_path) == card
    assert load_card(tmp_path / "model.keras") == card
    with pytest.raises(ModelError, match="not found"):
        load_card(tmp_path / "missing.tflite")


def test_labels_txt_round_trip(tmp_path):
    labels = ["GO", "NG", "ج"]
    write_labels_txt(tmp_path / "labels.txt", labels)
    assert read_labels_txt(tmp_path / "labels.txt") == labels
