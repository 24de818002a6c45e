"""The int8 repair of a two-class sigmoid model (the GO/NG default): the per-layer error names it measures must be
the op names of the graph the converter converts (the sigmoid head wrapped to ``[1 - p, p]``). They were the bare
model's, the converter refused every one, and the failed artifact was then lost before ``rejected/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def test_repair_names_of_a_sigmoid_model_are_accepted_by_the_converter(tmp_path):
    import keras

    import converters
    from edgecnn.export.checks import as_converted as _as_converted
    from edgecnn.export.repair import rank_layers
    from edgecnn.export.source import Source
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", padding="same", name="conv1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="probabilities")(x), name="gonog")
    card = ModelCard(labels=["ng", "ok"], input=InputSpec(height=16, width=16, channels=3),
                     output=OutputSpec(activation="sigmoid", units=1), name="gonog")
    src = Source(run_dir=tmp_path, model_path=tmp_path / "model.keras", model=model, card=card, sha256="0" * 64)
    pixels = np.random.default_rng(0).integers(0, 256, (24, 16, 16, 3)).astype(np.float32)
    path = tmp_path / "model-int8.tflite"
    converters.convert(model, "tflite", "int8", path, calibration=pixels, metadata=card.to_dict(), labels=card.labels)
    rows = rank_layers("tflite", _as_converted(src), path, pixels, pixels, [])
    assert rows, "no quantized layer measured"
    assert {r["layer"] for r in rows} & {"conv2", "gap", "probabilities"}, [r["layer"] for r in rows]
    assert "gonog" not in {r["layer"] for r in rows}  # the wrapper is never blamed
    out = Path(tmp_path / "repaired.tflite")
    done = converters.convert(model, "tflite", "int8", out, calibration=pixels, metadata=card.to_dict(),
                              labels=card.labels, options=converters.ConvertOptions(float_nodes=(rows[0]["node"],)))
    assert rows[0]["node"] in done.metadata["artifact"]["int8"]["float_nodes"]


def test_a_repair_stopped_before_its_first_round_keeps_the_full_int8_artifact(tmp_path):
    """When the converter refuses the first float layers, the artifact is the full int8 one still (it went missing,
    and moving it to rejected/ crashed the export)."""
    import keras

    import converters
    from edgecnn.export.repair import repair
    from edgecnn.parity_report import ParityResult

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same", name="conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(x))
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3)).astype(np.float32)
    path = tmp_path / "model-int8.tflite"
    converters.convert(model, "tflite", "int8", path, calibration=pixels)
    before = path.read_bytes()
    failed = ParityResult(artifact=path.name, path=str(path), format="tflite", precision="int8", samples=16,
                          max_abs=0.1, mean_abs=0.01, agreement=0.9, accuracy_reference=None, accuracy=None,
                          accuracy_drop=None, passed=False, gate="test")

    def refuse(nodes):
        raise ValueError("float_nodes are not op outputs of this model")

    result, rec = repair("tflite", model, path, pixels, pixels, convert=refuse, check=lambda p: failed, first=failed)
    assert not rec.passed and "refused" in rec.reason
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".full-int8-*"))
