"""The whole loop: a station's stream shifts (washed-out parts), capture keeps what the model doubts, a person
labels it in the review page with key presses, ``train --from`` fine-tunes, and ``evaluate --parent`` shows the
child beating the parent on a folder from the shifted distribution."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from streams import heldout_images, pipeline_events
from test_review import _browser, _playwright, _wait_cards

from edgecnn.imaging import scan_labelled_folder
from edgecnn.monitor.capture import Capture, CaptureConfig
from edgecnn.monitor.review import ReviewStore, create_app

ROOT = Path(__file__).resolve().parents[2]


def washed_out(img: np.ndarray) -> np.ndarray:
    """A new supplier's parts, or a flooded light: 30 % of the contrast around mid-grey."""
    return (img.astype(np.float32) * 0.3 + 120).astype(np.uint8)


def _shifted_folder(src: Path, dst: Path) -> Path:
    files = scan_labelled_folder(src)
    for f, t in zip(files.files, files.targets):
        out = dst / files.labels[t] / f.name
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(washed_out(np.asarray(Image.open(f).convert("RGB")))).save(out)
    return dst


def test_capture_label_retrain_and_the_child_beats_the_parent(parent_run, monitor_data, tmp_path):
    sync_playwright = _playwright()
    from edgecnn.evaluate import compare
    from edgecnn.serve.http import Server
    from edgecnn.synthetic import write_dataset

    # the line after the change: a stream of washed-out parts (the truth of each frame is known to the "operator")
    pool = write_dataset(tmp_path / "pool", classes=3, per_class=25, size=48, seed=21)
    files = scan_labelled_folder(pool)
    images = heldout_images(pool)
    truth_of_image = [files.labels[t] for t in files.targets]
    rng = np.random.default_rng(5)
    order = [int(rng.integers(len(images))) for _ in range(240)]
    import cv2

    out = cv2.VideoWriter(str(tmp_path / "line.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (48, 48))
    for i in order:
        out.write(cv2.cvtColor(washed_out(images[i]), cv2.COLOR_RGB2BGR))
    out.release()
    video = tmp_path / "line.avi"

    # 1. capture on the station: doubtful frames plus a random sample, near-duplicates suppressed
    caps = tmp_path / "captures"
    cap = Capture(CaptureConfig(enabled=True, below=0.9, margin=0.3, sample=0.3, hash_distance=3, seed=1, max_fps=0),
                  caps,
                  model_sha256="parent", start=False)
    for ev in pipeline_events(parent_run, video):
        cap.on_frame(ev)
        while not cap._q.empty():
            cap.process(*cap._q.get())
    cap.close()
    assert cap.stats.saved >= 30, cap.stats.to_json()

    # 2. label them in the page: the dataset is a copy of the parent's data, the captures go into its classes
    dataset = shutil.copytree(monitor_data / "data", tmp_path / "dataset")
    store = ReviewStore(caps, dataset)
    truth = {rec.id: truth_of_image[order[int(rec_frame)]]
             for rec, rec_frame in ((i, store._records[i.id]["frame"]) for i in store.items())}
    n = len(truth)
    keys = {c: str(k + 1) for k, c in enumerate(store.classes)}
    with Server(create_app(store)) as server, sync_playwright() as pw:
        ctx = _browser(pw, tmp_path / "profile")
        page = ctx.new_page()
        page.goto(server.url + "/")
        _wait_cards(page, n)
        for left in range(n, 0, -1):
            _wait_cards(page, left)
            cid = page.get_attribute(".card.current", "data-id")
            page.keyboard.press(keys[truth[cid]])
        _wait_cards(page, 0)
        ctx.close()
    audit = ReviewStore(caps, dataset).audit()
    assert audit["labelled"] == n and audit["duplicated"] == [] and audit["missing"] == []

    # 3. fine-tune from the parent on the enlarged dataset
    from edgecnn.api import train

    train(from_run=str(parent_run), data=str(dataset), epochs=5, project=str(tmp_path / "runs"), name="child",
          plots=False, quiet=True)
    child = tmp_path / "runs" / "child"
    import json

    card = json.loads((child / "modelcard.json").read_text())
    assert card["provenance"]["parent"]["run"] == str(parent_run.resolve())
    assert card["provenance"]["parent"]["labels"] == ["c0", "c1", "c2"] and card["reference"]["num_images"] > 0

    # 4. parent vs child on held-out parts of the shifted line, in one table
    shifted = _shifted_folder(monitor_data / "held", tmp_path / "shifted")
    c = compare(child, "auto", shifted, out_dir=tmp_path / "eval")
    assert c.child.accuracy > c.parent.accuracy + 0.2, (c.parent.accuracy, c.child.accuracy)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "edgecnn", "evaluate", str(child), "--data", str(shifted), "--parent",
                        "auto", "--out", str(tmp_path / "eval2")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "parent" in line and "child" in line and "change" in line)
    acc = lines[header + 1].split()
    assert acc[0] == "accuracy" and float(acc[2]) > float(acc[1]) and acc[3].startswith("+")
