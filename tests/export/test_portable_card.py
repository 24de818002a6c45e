"""The card an artifact embeds names no local path: the source by file name and full SHA-256, no platform."""

from __future__ import annotations

import json
import tempfile

import pytest

from edgecnn.fileio import sha256_file
from edgecnn.modelcard import load_card


@pytest.mark.parametrize("key", ["tflite-int8", "onnx-float32"])
def test_embedded_card_has_no_local_paths(exported_artifacts, tiny_run, key):
    card = load_card(exported_artifacts[key])
    text = json.dumps(card.to_dict())
    assert tempfile.gettempdir() not in text and str(tiny_run) not in text, text
    assert card.provenance["source"] == "model.keras"
    assert card.provenance["source_sha256"] == sha256_file(tiny_run / "model.keras")  # all 64 hex digits
    assert "platform" not in card.provenance


def test_portable_card_keeps_folder_names_only(tmp_path):
    from edgecnn.export.source import portable_card

    card = {"dataset": {"root": str(tmp_path / "parts"), "test_root": None}, "config": {"data": str(tmp_path / "parts"),
            "project": "runs/train"}, "provenance": {"platform": "Linux-6.1-x86_64", "model_sha256": "ab" * 32}}
    out = portable_card(card, tmp_path / "run" / "model.keras", "cd" * 32)
    assert out["dataset"]["root"] == "parts" and out["config"]["data"] == "parts" and out["config"]["project"] == "train"
    assert out["provenance"]["source"] == "model.keras" and out["provenance"]["source_sha256"] == "cd" * 32
    assert "platform" not in out["provenance"] and out["provenance"]["model_sha256"] == "ab" * 32
    assert card["dataset"]["root"] == str(tmp_path / "parts")  # the run's own card is not modified
