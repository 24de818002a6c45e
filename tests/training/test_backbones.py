"""Issue 24: pretrained Keras Applications backbones in the architecture registry, ``--weights imagenet | FILE |
RUN`` through the real loading paths (weights files the tests write, random values, tiny sizes), and the two-phase
fine-tune recorded in history and card. Nothing is downloaded: Keras' cache is a tmp ``$KERAS_HOME``."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.errors import ConfigError, DataError
from edgecnn.training.architectures import (
    ARCHITECTURES,
    BACKBONE_LAYER,
    BACKBONES,
    backbone_blocks,
    build_backbone,
)
from edgecnn.training.weights import keras_cache_dir, resolve

SMALL = "mobilenet-v3-small"


def _write_cache_file(keras_home, arch: str, size: int = 32):
    """A Keras-cache weights file for ``arch`` exactly as Keras stores them (legacy HDF5, by layer name), random."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    spec = ARCHITECTURES[arch].backbone
    base = build_backbone(spec, (size, size, 3))
    path = keras_home / "models" / spec.weights_file(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    return path, base.get_weights()


def test_registry_rows_and_their_cache_files():
    assert set(BACKBONES) == {"mobilenet-v3-small", "mobilenet-v3-large", "mobilenet-v2", "efficientnet-b0"}
    for name in BACKBONES:
        assert ARCHITECTURES[name].backbone is not None
    assert ARCHITECTURES["mobilenet-v2"].backbone.weights_file(96).endswith("_1.0_96_no_top.h5")
    assert ARCHITECTURES["mobilenet-v2"].backbone.weights_file(100).endswith("_1.0_224_no_top.h5")
    assert ARCHITECTURES["simple"].backbone is None


@pytest.mark.parametrize("arch", sorted(BACKBONES))
def test_each_backbone_builds_at_32_px_with_blocks_to_unfreeze(arch):
    from edgecnn.training.architectures import build_model, set_trainable

    model = build_model(arch, (32, 32, 3), 3)
    spec = ARCHITECTURES[arch].backbone
    base = model.get_layer(BACKBONE_LAYER)
    assert len(backbone_blocks(base, spec)) >= 10
    assert model.input.shape[1:] == (32, 32, 3) and model.output.shape[1:] == (3,)
    assert set_trainable(model, spec, None) == 0 and not base.trainable
    head_only = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert set_trainable(model, spec, 2) > 0
    more = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert more > head_only
    out = model.predict(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32), verbose=0)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)


def test_imagenet_without_the_cache_file_is_one_line_naming_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(ConfigError) as err:
        resolve(SMALL, "imagenet", 32)
    msg = str(err.value)
    assert "\n" not in msg and "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in msg
    assert str(keras_cache_dir()) in msg and "--weights FILE" in msg and "https://storage.googleapis.com/" in msg
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        resolve("simple", "imagenet", 32)
    with pytest.raises(DataError, match="does not exist"):
        resolve(SMALL, str(tmp_path / "nope.h5"), 32)


def test_imagenet_from_keras_cache_two_phases_recorded(shapes_dir, tmp_path, monkeypatch):
    """The frozen phase leaves the backbone exactly as loaded from the cache file; fine-tuning then changes its top."""
    import edgecnn

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    _, loaded = _write_cache_file(tmp_path / "keras", SMALL)
    frozen = edgecnn.train(data=str(shapes_dir), img_size="32", arch=SMALL, weights="imagenet", epochs=1, batch=16,
                           project=str(tmp_path / "runs"), name="frozen", plots=False, quiet=True)
    import keras

    model = keras.saving.load_model(frozen.run_dir / "model.keras")
    after = model.get_layer(BACKBONE_LAYER).get_weights()
    assert len(after) == len(loaded) and all(np.array_equal(a, b) for a, b in zip(after, loaded))
    [phase] = frozen.metrics["training"]["phases"]
    assert phase["name"] == "frozen" and phase["epochs_run"] == 1
    assert frozen.metrics["training"]["weights"]["pretrained"] is True

    tuned = edgecnn.train(data=str(shapes_dir), img_size="32", arch=SMALL, weights="imagenet", epochs=1,
                          finetune_epochs=1, unfreeze_blocks=1, batch=16, project=str(tmp_path / "runs"),
                          name="tuned", plots=False, quiet=True)
    phases = tuned.card.provenance["training"]["phases"]
    assert [p["name"] for p in phases] == ["frozen", "finetune"]
    assert phases[1]["lr"] == pytest.approx(0.001 / 10) and phases[1]["trainable_params"] > phases[0]["trainable_params"]
    history = (tuned.run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,phase,") and history[1].split(",")[1] == "frozen"
    assert history[2].split(",")[1] == "finetune"
    tuned_base = keras.saving.load_model(tuned.run_dir / "model.keras").get_layer(BACKBONE_LAYER).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(tuned_base, loaded))  # the unfrozen top moved


def test_weights_file_and_earlier_run(shapes_dir, tmp_path):
    """``--weights FILE`` (a Keras-format weights file, here of the whole ``simple`` model) and ``--weights RUN``
    (every layer whose name and shape match is copied; the head for other labels is not)."""
    import keras

    import edgecnn

    first = edgecnn.train(data=str(shapes_dir), img_size="16", epochs=1, batch=16, project=str(tmp_path),
                          name="first", plots=False, quiet=True)
    old = keras.saving.load_model(first.run_dir / "model.keras")
    weights_file = tmp_path / "simple.weights.h5"
    old.save_weights(weights_file)
    again = edgecnn.train(data=str(shapes_dir), img_size="16", epochs=1, batch=16, lr=1e-9, project=str(tmp_path),
                          name="again", plots=False, quiet=True, weights=str(weights_file))
    assert again.metrics["training"]["weights"]["layers_loaded"] == "all"
    assert again.metrics["training"]["phases"][0]["name"] == "full"  # not a backbone: one phase
    two = tmp_path / "two"  # other labels: the head does not match
    for label in ("alpha", "beta"):
        (two / label).mkdir(parents=True)
        for f in sorted((shapes_dir / label).iterdir())[:12]:
            (two / label / f.name).write_bytes(f.read_bytes())
    from_run = edgecnn.train(data=str(two), img_size="16", epochs=1, batch=8, project=str(tmp_path), name="fromrun",
                             plots=False, quiet=True, weights=str(first.run_dir), head="softmax")
    w = from_run.metrics["training"]["weights"]
    assert w["layers_loaded"] == w["layers_with_weights"] - 1  # conv1, conv2, dense; not the 3-class head
    with pytest.raises(ConfigError, match="finetune"):
        edgecnn.train(data=str(shapes_dir), img_size="16", epochs=1, project=str(tmp_path), name="x",
                      finetune_epochs=2, weights=str(weights_file), quiet=True)


def test_a_backbone_run_exports_to_tflite_and_passes_parity(shapes_dir, tmp_path, monkeypatch):
    """float32 TFLite of a backbone run passes its parity gate. (int8 is not asserted here: a head trained for
    two epochs over RANDOM frozen features gives near-uniform probabilities, whose top-1 no quantization keeps;
    benchmarks/backbones.py converts every backbone to int8 and measures it.)"""
    import edgecnn
    from edgecnn.export import export

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    _write_cache_file(tmp_path / "keras", SMALL)
    run = edgecnn.train(data=str(shapes_dir), img_size="32", arch=SMALL, weights="imagenet", epochs=1, batch=16,
                        project=str(tmp_path / "runs"), name="bb", plots=False, quiet=True).run_dir
    report = export(run, formats=["tflite"], quantize=["none"], out=tmp_path / "export")
    report.raise_for_gates()
    [result] = report.results
    assert result.passed and result.max_abs <= 1e-4


def test_efficientnet_exports_to_onnx_without_extra_inputs():
    """EfficientNet's Normalization (built with a given mean and variance) was traced as two captured constants that
    tf2onnx left as graph inputs: onnxruntime refused to run the model without them. Now the graph takes the image
    only and gives Keras' probabilities."""
    import onnxruntime as ort

    from converters.to_onnx import to_onnx
    from edgecnn.training.architectures import build_model

    model = build_model("efficientnet-b0", (32, 32, 3), 3)
    proto = to_onnx(model)
    assert [i.name for i in proto.graph.input] == ["image"]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"image": x})[0], model.predict(x, verbose=0), atol=1e-5)


def test_a_backbone_from_scratch_follows_its_data_in_batch_norm(tmp_path):
    """Without --weights, a backbone's batch norm averages with momentum 0.9 (Keras Applications' 0.999 left a
    MobileNetV3 trained to 100 % answering one class on validation); with a weights file it keeps its own."""
    import keras

    from edgecnn.training.architectures import SCRATCH_BN_MOMENTUM

    scratch = build_backbone(ARCHITECTURES[SMALL].backbone, (32, 32, 3))
    momenta = {ly.momentum for ly in scratch.layers if isinstance(ly, keras.layers.BatchNormalization)}
    assert momenta == {SCRATCH_BN_MOMENTUM}
    path, _ = _write_cache_file(tmp_path, SMALL)
    loaded = build_backbone(ARCHITECTURES[SMALL].backbone, (32, 32, 3), weights=str(path))
    assert {ly.momentum for ly in loaded.layers if isinstance(ly, keras.layers.BatchNormalization)} == {0.999}
