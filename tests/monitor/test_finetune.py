"""``train --from``: the parent's options and weights, a grown head for added classes, clear refusals."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgecnn.errors import ConfigError, DataError
from edgecnn.training.config import build_config


def test_from_takes_the_parents_network_options_and_refuses_others(parent_run, tmp_path):
    cfg = build_config(overrides={"from_run": str(parent_run), "data": str(tmp_path)})
    assert cfg.img_size == "24" and cfg.filters == 8 and cfg.from_run == str(parent_run)
    with pytest.raises(ConfigError, match="img_size = '24' as in the parent run"):
        build_config(overrides={"from_run": str(parent_run), "data": str(tmp_path), "img_size": "32"})
    with pytest.raises(ConfigError, match="finished training run"):
        build_config(overrides={"from_run": str(tmp_path), "data": str(tmp_path)})


def test_an_added_class_grows_the_head_and_a_missing_one_is_refused(parent_run, monitor_data, tmp_path):
    import keras

    from edgecnn.api import train
    from edgecnn.synthetic import write_dataset

    data = shutil.copytree(monitor_data / "data", tmp_path / "data")
    write_dataset(tmp_path / "extra", classes=["c0", "c1", "c2", "b_new"], per_class=30, size=48, seed=3)
    shutil.copytree(tmp_path / "extra" / "b_new", data / "b_new")  # sorts first: every parent column moves
    r = train(from_run=str(parent_run), data=str(data), epochs=1, lr=1e-9, project=str(tmp_path / "runs"),
              name="grown", plots=False, quiet=True)
    assert r.card.labels == ["b_new", "c0", "c1", "c2"]
    assert r.card.provenance["parent"]["added_labels"] == ["b_new"]
    parent = keras.models.load_model(parent_run / "model.keras")
    child = keras.models.load_model(r.model_path)
    pk, ck = parent.layers[-1].get_weights()[0], child.layers[-1].get_weights()[0]
    np.testing.assert_allclose(ck[:, 1:], pk, atol=1e-4)  # lr ~0: the parent's columns, moved by label
    first = next(i for i, layer in enumerate(parent.layers) if layer.weights)  # the first conv: copied as is
    np.testing.assert_allclose(child.layers[first].get_weights()[0], parent.layers[first].get_weights()[0], atol=1e-4)
    from edgecnn.evaluate import compare

    with pytest.raises(DataError, match=r"does not know the classes \['b_new'\]"):
        compare(r.run_dir, "auto", data, out_dir=tmp_path / "eval")  # the parent cannot be scored on b_new
    shutil.rmtree(data / "c2")
    with pytest.raises(DataError, match="c2 missing"):
        train(from_run=str(parent_run), data=str(data), epochs=1, project=str(tmp_path / "runs"), name="bad",
              plots=False, quiet=True)
