"""Every registered architecture builds, runs a forward pass, keeps rescaling in the graph and converts to TFLite."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.errors import ConfigError
from edgecnn.training.architectures import ARCHITECTURES, ArchKnobs, build_model, resolve_head

#: The CNNs built from scratch (any size, 1 or 3 channels); the pretrained backbones (RGB, 32 px and up) have their
#: own tests in test_backbones.py.
SCRATCH = sorted(name for name, spec in ARCHITECTURES.items() if spec.backbone is None)


@pytest.mark.parametrize("arch", SCRATCH)
@pytest.mark.parametrize(("shape", "classes", "head"), [((16, 16, 1), 4, "softmax"), ((24, 20, 3), 2, "sigmoid")])
def test_build_and_forward(arch, shape, classes, head):
    import keras

    model = build_model(arch, shape, classes, head, ArchKnobs(filters=8, dense_units=16, depth=2))
    assert model.input_shape == (None, *shape)
    assert model.inputs[0].name.startswith("image")
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    x = np.random.default_rng(0).uniform(0, 255, (3, *shape)).astype(np.float32)
    y = np.asarray(model(x, training=False))
    if head == "sigmoid":
        assert y.shape == (3, 1) and ((y >= 0) & (y <= 1)).all()
    else:
        assert y.shape == (3, classes)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("arch", SCRATCH)
def test_converts_to_tflite(arch):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model = build_model(arch, (16, 16, 3), 3, "softmax", ArchKnobs(filters=4, dense_units=8, depth=2))
    blob = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    interp = Interpreter(model_content=blob)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = np.random.default_rng(1).uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    np.testing.assert_allclose(interp.get_tensor(out["index"]), np.asarray(model(x, training=False)), atol=1e-5)


def test_lenet_knobs_shape_the_model():
    model = build_model("lenet", (24, 24, 1), 7, "softmax",
                        ArchKnobs(filters=6, kernel_size=5, strides=1, pool_size=2, dropout=0.3, l2=0.01, dense_units=12))
    convs = {layer.name: layer for layer in model.layers if layer.name.startswith("conv")}
    assert convs["conv1_1"].filters == 6 and convs["conv2_1"].filters == 6 * 2 + 4
    assert convs["conv1_1"].kernel_size == (5, 5)
    assert convs["conv1_1"].kernel_regularizer is not None
    assert sum(type(layer).__name__ == "BatchNormalization" for layer in model.layers) == 6
    assert sum(type(layer).__name__ == "Dropout" for layer in model.layers) == 4
    dense = [layer for layer in model.layers if layer.name in ("dense1", "dense2")]
    assert [d.units for d in dense] == [24, 12]


def test_blocks_depth_and_growing_filters():
    model = build_model("blocks", (32, 32, 3), 3, "softmax", ArchKnobs(filters=4, depth=4))
    convs = [layer for layer in model.layers if layer.name.endswith("_conv")]
    assert [c.filters for c in convs] == [4, 8, 16, 32]


def test_head_resolution():
    assert resolve_head("auto", 2) == "sigmoid"
    assert resolve_head("auto", 5) == "softmax"
    with pytest.raises(ConfigError, match="exactly 2 classes"):
        resolve_head("sigmoid", 3)


def test_unknown_arch_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'dsconv'"):
        build_model("dsconf", (16, 16, 3), 3)
