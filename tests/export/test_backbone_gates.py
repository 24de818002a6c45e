"""Issue 24: every backbone exports to every format and is gated on every one, int8 included.

Each Keras Applications backbone is trained from scratch by the real trainer (no ImageNet file here, and a random
backbone under a two-epoch head gives near-uniform probabilities whose top-1 no quantization keeps) on a 3-class
folder it learns: 60 images a class, 32 px, with images of other sizes so the consumers' resize gate runs. Then
``export`` writes TFLite float32/float16/dynamic/int8 and ONNX float32/int8, runs each in its real runtime (LiteRT,
onnxruntime) on the held-out split, and gates it. MobileNetV3-Small (hard-swish, squeeze-excite) also goes through
QAT: its full-int8 TFLite has no float tensor and passes parity against the QAT model. EfficientNet-B0 needs a
larger set (40 px, 100 a class) for its int8 to pass; its test says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.training.architectures import BACKBONES

MOBILENETS = ["mobilenet-v2", "mobilenet-v3-large", "mobilenet-v3-small"]
TFLITE = {"model-float32.tflite", "model-float16.tflite", "model-dynamic.tflite", "model-int8.tflite"}
ONNX = {"model-float32.onnx", "model-int8.onnx"}


@pytest.fixture(scope="module")
def learnable_dir(tmp_path_factory):
    from edgecnn.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("backbones") / "data", classes=3, per_class=60, size=32, seed=1,
                         vary_size=True)


def _train_and_export(arch, data, tmp_path, qat_epochs=0, size=32, epochs=20, **train):
    import edgecnn
    from edgecnn.export import export

    run = edgecnn.train(data=str(data), img_size=str(size), arch=arch, epochs=epochs, batch=16,
                        project=str(tmp_path / "runs"), name=arch, plots=False, quiet=True, **train)
    assert run.metrics["test"]["accuracy"] >= 0.9, run.metrics["test"]
    tflite = export(run.run_dir, formats=["tflite"], quantize=["none", "float16", "dynamic", "int8"],
                    out=tmp_path / "tflite", qat_epochs=qat_epochs)
    onnx = export(run.run_dir, formats=["onnx"], quantize=["none", "int8"], out=tmp_path / "onnx")
    return run, {r.artifact: r for r in tflite.results + onnx.results}


def _check_published_or_refused(results, tmp_path, samples=18):
    """Every artifact was checked on the held-out split; a passing one is in the export folder and met its gate
    (its consumers' resize gate too); a failing one is refused with its failure named and is NOT in the folder."""
    for name, r in results.items():
        folder = tmp_path / ("tflite" if name.endswith(".tflite") else "onnx")
        assert r.checked and r.samples >= samples, name
        if not r.passed:
            assert r.failures and not (folder / name).is_file() and (folder / "rejected" / name).is_file(), name
            continue
        assert (folder / name).is_file(), name
        assert r.agreement >= 0.98 and (r.accuracy_drop or 0.0) <= 0.01, (name, r.agreement, r.accuracy_drop)
        if r.consumers and name != "model-qat-int8.tflite":
            assert r.consumers["passed"] and r.consumers["samples"] >= samples * 0.9, (name, r.consumers)


def test_the_gates_cover_every_registered_backbone():
    assert set(BACKBONES) == {*MOBILENETS, "efficientnet-b0"}


@pytest.mark.parametrize("arch", MOBILENETS)
def test_every_mobilenet_exports_to_every_format_and_passes_every_gate(arch, learnable_dir, tmp_path):
    """Float artifacts pass their exact gates; int8 passes as post-training int8 (with the self-repair) or, where
    that fails its gate (MobileNetV3's hard-swish and squeeze-excite can flip a borderline image: 1 of 18 in one
    seed of five here), the artifact is refused and QAT's full int8 passes instead. MobileNetV3-Small always runs
    QAT: its full-int8 TFLite has no float tensor and passes parity against the QAT model."""
    from converters.to_tflite import float_tensors
    from edgecnn.export import export

    run, results = _train_and_export(arch, learnable_dir, tmp_path, qat_epochs=3 if arch == "mobilenet-v3-small" else 0)
    assert set(results) >= TFLITE | ONNX
    _check_published_or_refused(results, tmp_path)
    for name in ("model-float32.tflite", "model-float16.tflite", "model-dynamic.tflite", "model-float32.onnx"):
        assert results[name].passed, (name, results[name].failures)
    ptq_failed = [name for name in ("model-int8.tflite", "model-int8.onnx") if not results[name].passed]
    if ptq_failed and "model-qat-int8.tflite" not in results:
        qat = export(run.run_dir, formats=["tflite"], quantize=["int8"], out=tmp_path / "qat", qat_epochs=3)
        results["model-qat-int8.tflite"] = next(r for r in qat.results if r.artifact == "model-qat-int8.tflite")
    if "model-qat-int8.tflite" in results:
        qat_result = results["model-qat-int8.tflite"]
        assert qat_result.passed and float_tensors(Path(qat_result.path).read_bytes()) == [], qat_result.failures
        assert qat_result.accuracy >= run.metrics["test"]["accuracy"] - 0.01
    else:
        assert not ptq_failed


def test_efficientnet_exports_to_every_format_and_passes_every_gate(tmp_path_factory, tmp_path):
    """EfficientNet-B0 (swish, squeeze-excite) needs more than the MobileNets' 32 px set: trained from scratch on
    that one, its int8 flipped 2 of 18 images under Pillow's resize (TFLite) and agreed on 11 of 18 (onnxruntime),
    and the gates refused both. On 40 px images, 100 a class (``benchmarks/backbone_gates.py``'s defaults), every
    artifact passes every gate: post-training int8 (TFLite with the self-repair's float layers), and QAT's full
    int8 with no float tensor, which is what an accelerator runs."""
    from converters.to_tflite import float_tensors
    from edgecnn.synthetic import write_dataset

    data = write_dataset(tmp_path_factory.mktemp("efficientnet") / "data", classes=3, per_class=100, size=40, seed=1,
                         vary_size=True)
    run, results = _train_and_export("efficientnet-b0", data, tmp_path, qat_epochs=3, size=40, epochs=25,
                                     test_split=0.25, seed=1)
    assert set(results) == TFLITE | ONNX | {"model-qat-int8.tflite"}
    _check_published_or_refused(results, tmp_path, samples=75)
    for name, r in results.items():
        assert r.passed, (name, r.failures)
    qat_result = results["model-qat-int8.tflite"]
    assert float_tensors(Path(qat_result.path).read_bytes()) == []
    assert qat_result.accuracy >= run.metrics["test"]["accuracy"] - 0.01
