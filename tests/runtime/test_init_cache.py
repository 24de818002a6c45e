"""The init cache (ONNX Runtime's saved optimized model): used on a second start, never trusted when stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.runtime.backends import load_backend


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(root))
    monkeypatch.delenv("EDGECNN_INIT_CACHE", raising=False)
    return root


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in (root / "runtime" / "ort").glob("*") if not p.name.startswith("."))


def _pixels(be) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, *be.card.input_shape), dtype=np.uint8)


def _reference(model: Path) -> np.ndarray:
    with load_backend(model, init_cache=False) as be:
        assert be.init_cache_status == "off"
        return be.predict(_pixels(be))


def _card(model: Path):
    with load_backend(model, init_cache=False) as be:
        return be.card


@pytest.mark.parametrize("key", ["onnx-float32", "onnx-int8"])
def test_second_start_loads_the_saved_optimized_model(artifacts, cache_dir, tmp_path, key):
    model = tmp_path / "m.onnx"
    shutil.copy(artifacts[key], model)
    expected = _reference(model)
    assert not _entries(cache_dir)  # init_cache=False neither reads nor writes

    with load_backend(model) as first:
        assert first.init_cache_status == "stored"
        assert first.info()["init_cache"] == "stored"
        np.testing.assert_array_equal(first.predict(_pixels(first)), expected)
    assert [p.suffix for p in _entries(cache_dir)] == [".json", ".onnx"]

    with load_backend(model) as second:
        assert second.init_cache_status == "hit"
        np.testing.assert_array_equal(second.predict(_pixels(second)), expected)
        assert second.card == _card(model)  # the saved graph keeps the model's metadata (card, labels)


def test_a_changed_model_does_not_use_the_old_entry(artifacts, cache_dir, tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(artifacts["onnx-float32"], model)
    with load_backend(model) as be:
        assert be.init_cache_status == "stored"
    shutil.copy(artifacts["onnx-int8"], model)  # same path, other bytes
    expected = _reference(model)
    with load_backend(model) as be:
        assert be.init_cache_status == "stored"  # a new entry, keyed by the new bytes
        np.testing.assert_array_equal(be.predict(_pixels(be)), expected)
    with load_backend(model) as be:
        assert be.init_cache_status == "hit"
        np.testing.assert_array_equal(be.predict(_pixels(be)), expected)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-model", "sidecar"])
def test_a_corrupt_entry_is_rebuilt_never_loaded(artifacts, cache_dir, tmp_path, damage):
    model = tmp_path / "m.onnx"
    shutil.copy(artifacts["onnx-int8"], model)
    expected = _reference(model)
    with load_backend(model):
        pass
    meta, entry = _entries(cache_dir)
    if damage == "garbage":
        entry.write_bytes(b"not an onnx model")
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "other-model":  # a valid ONNX model, but not this one's optimized graph
        shutil.copy(artifacts["onnx-float32"], entry)
    else:
        meta.write_text(json.dumps({"parts": "?"}))
    with load_backend(model) as be:
        assert be.init_cache_status == "rebuilt"
        np.testing.assert_array_equal(be.predict(_pixels(be)), expected)
    with load_backend(model) as be:
        assert be.init_cache_status == "hit"
        np.testing.assert_array_equal(be.predict(_pixels(be)), expected)


def test_cache_off_and_unwritable_cache_still_load(artifacts, tmp_path, monkeypatch):
    model = artifacts["onnx-float32"]
    expected = _reference(model)
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGECNN_INIT_CACHE", "0")
    with load_backend(model) as be:
        assert be.init_cache_status == "off"
    assert not (tmp_path / "cache").exists()
    monkeypatch.delenv("EDGECNN_INIT_CACHE")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(blocker / "cache"))  # a file where a folder should be
    with load_backend(model) as be:
        assert be.init_cache_status == "unwritable"
        np.testing.assert_array_equal(be.predict(_pixels(be)), expected)


def test_tflite_reports_no_init_cache(artifacts, cache_dir):
    with load_backend(artifacts["tflite-int8"]) as be:
        assert be.init_cache_status == "off"
    assert not cache_dir.exists()
