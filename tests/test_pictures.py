"""Issue 25: the pictures users expect. ``evaluate`` lists every mistake (JSON and an HTML report with thumbnails)
and draws a mosaic of predictions, wrong ones first and marked; ``train`` draws one for the validation split."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from edgecnn.mosaic import Tile, pick, render_mosaic


def test_pick_puts_the_most_confident_mistakes_first():
    true = ["a", "a", "b", "b", "c", "c"]
    said = ["a", "b", "b", "a", "c", "c"]
    scores = [0.9, 0.6, 0.8, 0.95, 0.7, 0.99]
    order = pick(true, said, scores, limit=4)
    assert order[:2] == [3, 1] and len(order) == 4 and all(true[i] == said[i] for i in order[2:])


def test_a_wrong_tile_is_framed_red_and_a_right_one_green():
    img = np.full((20, 20, 3), 128, np.uint8)
    sheet = np.asarray(render_mosaic([Tile(img, "a", "a", 0.9), Tile(img, "a", "b", 0.8)], columns=2, size=40))
    # the frames are drawn 2 px outside each tile: sample the left edge of both
    left_ok, left_bad = sheet[40, 5], sheet[40, 5 + 46]
    assert left_ok[1] > left_ok[0] and left_bad[0] > left_bad[1]


def test_evaluate_lists_and_draws_the_mistakes(exported_artifacts, shapes_dir, tmp_path):
    from edgecnn.evaluate import evaluate

    swapped = tmp_path / "swapped"
    names = sorted(p.name for p in shapes_dir.iterdir() if p.is_dir())
    for a, b in zip(names, names[1:] + names[:1]):  # every class folder under the next class's name
        shutil.copytree(shapes_dir / a, swapped / b)
    report = evaluate(exported_artifacts["tflite-int8"], data=swapped, out_dir=tmp_path / "ev")
    wrong = report.misclassified
    assert wrong and len(wrong) == report.count - round(report.accuracy * report.count)
    assert all(w["true"] != w["predicted"] and 0 <= w["score"] <= 1 for w in wrong)
    assert [w["score"] for w in wrong] == sorted((w["score"] for w in wrong), reverse=True)
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["misclassified"] == wrong
    mosaic = Image.open(tmp_path / "ev" / "predictions.png")
    assert mosaic.width > 300 and mosaic.height > 150
    page = (tmp_path / "ev" / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == min(len(wrong), 200)
    assert "predictions.png" in page and "confusion_matrix.png" in page and "http" not in page


def test_train_draws_the_validation_predictions(shapes_dir, tmp_path):
    import edgecnn

    run = edgecnn.train(shapes_dir, img_size=16, epochs=1, batch=8, project=tmp_path / "runs", name="p")
    mosaic = run.run_dir / "val_predictions.png"
    assert mosaic.is_file() and Image.open(mosaic).width > 100
