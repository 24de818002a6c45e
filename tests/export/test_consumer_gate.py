"""Issue 24: export measures top-1 agreement under each common consumer's resize (MediaPipe, OpenCV INTER_LINEAR,
Pillow's antialiased bilinear, edgecnn's own) on held-out images of other sizes, and gates it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.errors import ParityError
from edgecnn.export import export
from edgecnn.synthetic import write_dataset

CONSUMERS = {"edgecnn", "mediapipe", "opencv-linear", "pillow-bilinear"}


@pytest.fixture(scope="module")
def vary_sized(tmp_path_factory) -> Path:
    """Held-out images 30-60 px (the models take 24 px): every consumer resizes them."""
    return write_dataset(tmp_path_factory.mktemp("held") / "held", classes=["alpha", "beta", "gamma"], per_class=10,
                         size=30, seed=4, vary_size=True)


def test_a_model_trained_by_edgecnn_passes_the_consumer_gate(shapes_dir, vary_sized, tmp_path):
    """``edgecnn train`` randomises the resize method by default: every consumer's resize gives its answers."""
    import edgecnn

    run = edgecnn.train(data=str(shapes_dir), img_size="24", epochs=20, batch=16, lr=0.003, patience=0,
                        project=str(tmp_path), name="run", plots=False, quiet=True).run_dir
    report = export(run, formats=["tflite", "onnx"], quantize=["none", "int8"], out=tmp_path / "out",
                    check_data=vary_sized)
    report.raise_for_gates()
    for r in report.results:
        assert r.consumers["samples"] == 30 and r.consumers["passed"]
        # MediaPipe loads TFLite only: its resize is no gate for the ONNX files (nor for grayscale models)
        assert set(r.consumers["consumers"]) == (CONSUMERS if r.format == "tflite" else CONSUMERS - {"mediapipe"})
    md = (tmp_path / "out" / "export_report.md").read_text(encoding="utf-8")
    assert "## Agreement under consumers' preprocessing" in md
    assert "| artifact | edgecnn | mediapipe | opencv-linear | pillow-bilinear | gate |" in md


def test_a_model_that_hangs_on_its_resampler_fails_the_gate(shapes_dir, vary_sized, tmp_path):
    """A tiny model trained on area-resized pixels only (no randomised resize): on images of other sizes its
    answers change under bilinear resizes, and the gate says so, names the consumer and rejects the artifact."""
    from tinymodels import make_tiny_run

    tiny_run = make_tiny_run(shapes_dir, tmp_path / "run")  # resize_augment=False: area-resized pixels only
    report = export(tiny_run, formats=["tflite"], out=tmp_path / "out", check_data=vary_sized)
    row = report.results[0].consumers
    assert not row["passed"], row
    assert row["consumers"]["edgecnn"]["agreement"] == 1.0  # edgecnn's own pixels: exact parity
    assert min(v["agreement"] for v in row["consumers"].values()) < 0.99
    with pytest.raises(ParityError, match="resize"):
        report.raise_for_gates()
    assert Path(report.results[0].path).parent.name == "rejected"
    saved = json.loads((tmp_path / "out" / "export_report.json").read_text(encoding="utf-8"))
    assert saved["gates"]["consumer_agreement"] == 0.99
    # the threshold is the user's (--gate-consumer): 0 lets it through
    from edgecnn.parity import Gates

    ok = export(tiny_run, formats=["tflite"], out=tmp_path / "out2", check_data=vary_sized,
                gates=Gates(consumer_agreement=0.0))
    ok.raise_for_gates()


def test_model_sized_images_are_said_to_measure_nothing(tiny_run, tmp_path):
    held = tmp_path / "held"
    for label in ("alpha", "beta", "gamma"):
        (held / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((24, 24, 3), 40 * i + 10, np.uint8)).save(held / label / f"{i}.png")
    report = export(tiny_run, formats=["tflite"], out=tmp_path / "out", check_data=held)
    row = report.results[0].consumers
    assert row["samples"] == 0 and row["same_size"] == 9 and "no consumer resizes" in row["note"]
    assert "Not measured" in (tmp_path / "out" / "export_report.md").read_text(encoding="utf-8")
