"""Issue 24: a model trained by ``edgecnn train`` (resize method randomised, the default) answers the same under
MediaPipe Tasks' own resize as under ``edgecnn run``, at every precision, on held-out images of other sizes than
the model's; and export's ``mediapipe`` consumer row (edgecnn's model of MediaPipe's resize) is what MediaPipe says.

MediaPipe runs for real in its venv (``mp_classify.py``), as in ``test_mediapipe_roundtrip.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecnn.synthetic import write_dataset

from .test_mediapipe_roundtrip import LABELS, PRECISIONS, _edgecnn, _edgecnn_labels, _mediapipe, pytestmark  # noqa: F401


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    import edgecnn

    root = tmp_path_factory.mktemp("consumer")
    train = write_dataset(root / "train", classes=LABELS, per_class=40, size=32, seed=0)
    heldout = write_dataset(root / "heldout", classes=LABELS, per_class=40, size=30, seed=21, vary_size=True)
    result = edgecnn.train(data=str(train), img_size="24", epochs=20, batch=16, lr=0.003, patience=0,
                           project=str(root / "runs"), name="mp", plots=False, quiet=True, test_split=0.0)
    assert result.card.config["resize_augment"] is True  # the default
    out = root / "export"
    _edgecnn("export", result.run_dir, "--format", "tflite", "--quantize", "all", "--out", out, "--check-data", heldout)
    return {"heldout": heldout, "models": {p: out / f"model-{p}.tflite" for p in PRECISIONS},
            "report": json.loads((out / "export_report.json").read_text(encoding="utf-8"))}


def test_mediapipe_agrees_with_edgecnn_run_on_other_sizes_at_every_precision(trained, tmp_path):
    from edgecnn.imaging import decode_image

    folder = trained["heldout"]
    images = sorted(str(p) for p in folder.rglob("*.png"))
    other = [i for i in images if decode_image(i).shape[:2] != (24, 24)]
    assert len(other) == len(images) >= 100
    answer = _mediapipe(tmp_path, list(trained["models"].values()), other)
    agreement = {}
    for precision, model in trained["models"].items():
        got = answer[str(model)]
        assert "error" not in got, got
        ours = _edgecnn_labels(model, folder, tmp_path)
        agreement[precision] = float(np.mean([got["results"][i][0] == ours[i] for i in other]))
    print(f"\nMediaPipe Tasks vs edgecnn run on {len(other)} held-out images of other sizes:", json.dumps(agreement))
    assert all(v >= 0.99 for v in agreement.values()), agreement


def test_exports_mediapipe_row_is_what_mediapipe_answers(trained, tmp_path):
    """edgecnn's model of MediaPipe's resize gives MediaPipe's own labels (and, in float32, its scores)."""
    from edgecnn.imaging import decode_image, preprocess_as
    from edgecnn.runtime.backends import load_backend

    images = sorted(str(p) for p in trained["heldout"].rglob("*.png"))
    answer = _mediapipe(tmp_path, list(trained["models"].values()), images)
    x = np.stack([preprocess_as(decode_image(i), 24, 24, "rgb", "mediapipe") for i in images])
    for precision, model in trained["models"].items():
        with load_backend(model) as backend:
            probs = backend.predict(x)
            labels = backend.card.labels
        mp = [answer[str(model)]["results"][i] for i in images]
        same = np.mean([labels[k] == r[0] for k, r in zip(probs.argmax(1), mp)])
        assert same >= 0.99, (precision, same)
        if precision == "float32":
            gap = max(abs(float(probs[n, labels.index(r[0])]) - r[1]) for n, r in enumerate(mp))
            assert gap < 0.02, gap
    rows = {a["artifact"]: a["consumers"] for a in trained["report"]["artifacts"]}
    for model in trained["models"].values():
        row = rows[model.name]
        assert row["samples"] == len(images) and row["passed"], row
        assert set(row["consumers"]) == {"edgecnn", "mediapipe", "opencv-linear", "pillow-bilinear"}
