"""The public Python API (edgecnn.load → Classifier.predict/stream) behaves exactly like `edgecnn run`.

Real artifacts (LiteRT int8/fp32, ONNX Runtime fp32, the Keras run folder), real image files of mixed
formats, modes and sizes, and a video written with OpenCV; nothing is mocked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import edgecnn
from edgecnn.cli import app
from edgecnn.errors import ConfigError, DataError, EdgeCNNError, ModelError, SourceError
from edgecnn.imaging import decode_image, list_images

from .conftest import write_video

BACKENDS = ["tflite-int8", "tflite-float32", "onnx-float32", "keras"]
runner = CliRunner()


def _model(artifacts, tiny_run, key: str) -> Path:
    return tiny_run if key == "keras" else artifacts[key]


@pytest.fixture(scope="module")
def classifiers(artifacts, tiny_run):
    clfs = {key: edgecnn.load(_model(artifacts, tiny_run, key)) for key in BACKENDS}
    yield clfs
    for clf in clfs.values():
        clf.close()


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    """Images of several formats, modes and sizes (resize, gray, alpha and palette paths all taken)."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(7)
    specs = [("a.png", "RGB", (40, 30)), ("b.jpg", "RGB", (64, 48)), ("c.png", "L", (24, 24)),
             ("d.png", "RGBA", (50, 33)), ("e.bmp", "RGB", (17, 61)), ("f.gif", "P", (32, 32)),
             ("g.webp", "RGB", (45, 45)), ("h.png", "RGB", (640, 480))]
    for name, mode, (w, h) in specs:
        base = np.linspace(0, 255, w * h * 3).reshape(h, w, 3) * rng.uniform(0.2, 1.0, 3)
        arr = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "RGB")
        if mode == "RGBA":
            img = img.convert("RGBA")
            img.putalpha(Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8)))
        elif mode != "RGB":
            img = img.convert(mode)
        img.save(root / name)
    return root


def _run_rows(model: Path, source: Path, out: Path, *extra: str) -> list[dict]:
    """`edgecnn run MODEL --source SOURCE --save-jsonl OUT` through the real CLI; its rows."""
    result = runner.invoke(app, ["run", str(model), "--source", str(source), "--save-jsonl", str(out), "--quiet", *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _same(p: edgecnn.Prediction, row: dict) -> None:
    """The same label, score and top-k as the run's row, to the row's own precision (6 decimals)."""
    assert p.label == row["label"]
    assert round(p.score, 6) == row["score"]
    assert [[lbl, round(s, 6)] for lbl, s in p.topk] == row["topk"]

# ---------------------------------------------------------------------------------------------- same as run
@pytest.mark.parametrize("key", BACKENDS)
def test_predict_gives_the_label_and_score_of_edgecnn_run(classifiers, artifacts, tiny_run, frames_dir, tmp_path, key):
    clf = classifiers[key]
    rows = {Path(r["source"]).name: r for r in _run_rows(_model(artifacts, tiny_run, key), frames_dir, tmp_path / "p.jsonl")}
    files = list_images(frames_dir)
    assert sorted(rows) == sorted(f.name for f in files)
    for f in files:
        row = rows[f.name]
        by_path = clf.predict(f)
        _same(by_path, row)
        assert by_path.source == str(f)
        # what an application holds: a PIL image, the array Pillow decodes, encoded bytes
        with Image.open(f) as im:
            _same(clf.predict(im), row)
            arr = np.asarray(im.convert("RGB"))
        _same(clf.predict(arr), row)
        _same(clf.predict(f.read_bytes()), row)
        np.testing.assert_array_equal(clf.predict(arr).probs, by_path.probs)
    # OpenCV frames with bgr=True (formats cv2.imread decodes exactly like the runtime)
    for name in ("a.png", "b.jpg", "e.bmp", "h.png"):
        _same(clf.predict(cv2.imread(str(frames_dir / name)), bgr=True), rows[name])


@pytest.mark.parametrize("key", BACKENDS)
def test_list_in_list_out_matches_single_predictions(classifiers, frames_dir, key):
    clf = classifiers[key]
    files = list_images(frames_dir)
    arrays = [decode_image(f) for f in files]
    singles = [clf.predict(a) for a in arrays]
    batched = clf.predict(arrays)
    assert isinstance(batched, list) and len(batched) == len(arrays)
    for s, b, i in zip(singles, batched, range(len(arrays))):
        assert (b.label, b.class_index, b.frame) == (s.label, s.class_index, i)
        np.testing.assert_allclose(b.probs, s.probs, atol=1e-6)
    mixed = clf.predict((files[0], Image.fromarray(arrays[1]), arrays[2]))  # a tuple of mixed kinds
    assert [p.label for p in mixed] == [s.label for s in singles[:3]]
    stacked = clf.predict(np.stack([cv2.resize(a, (24, 24)) for a in arrays]), batch=3)  # NxHxWxC array
    assert len(stacked) == len(arrays)
    assert clf.predict([]) == []
    p = singles[0]
    assert p.label == clf.labels[p.class_index] and p.score == pytest.approx(float(p.probs.max()))
    assert p.probs.shape == (len(clf.labels),) and p.probs.dtype == np.float32
    assert len(p.topk) == len(clf.labels) and p.topk[0] == (p.label, p.score)
    assert len(clf.predict(arrays[0], topk=1).topk) == 1
    assert clf.predict(arrays[0], threshold=1.0).label == "unknown"
    assert clf(arrays[0]).label == p.label  # __call__
    assert p.to_dict()["label"] == p.label and len(p.to_dict()["probs"]) == len(clf.labels)


def test_channel_layouts_bgr_gray_alpha_and_integer_dtypes(classifiers):
    clf = classifiers["tflite-float32"]
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ref = clf.predict(rgb)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    np.testing.assert_array_equal(clf.predict(bgr, bgr=True).probs, ref.probs)
    np.testing.assert_array_equal(clf.predict(rgb[:, :, ::-1][:, :, ::-1]).probs, ref.probs)  # non-contiguous view
    alpha = np.full((37, 53, 1), 7, np.uint8)
    np.testing.assert_array_equal(clf.predict(np.concatenate([rgb, alpha], 2)).probs, ref.probs)
    np.testing.assert_array_equal(clf.predict(np.concatenate([bgr, alpha], 2), bgr=True).probs, ref.probs)
    gray = rng.integers(0, 256, (30, 30), dtype=np.uint8)
    as_rgb = np.repeat(gray[:, :, None], 3, axis=2)
    ref_gray = clf.predict(as_rgb)
    for g in (gray, gray[:, :, None]):
        np.testing.assert_array_equal(clf.predict(g).probs, ref_gray.probs)
        np.testing.assert_array_equal(clf.predict(g, bgr=True).probs, ref_gray.probs)
    for dtype in (np.int64, np.uint16, np.int32):  # integers within 0..255 are pixels
        np.testing.assert_array_equal(clf.predict(rgb.astype(dtype)).probs, ref.probs)


BAD = [
    (np.random.default_rng(0).random((32, 32, 3)).astype(np.float32), r"float32 array .*values 0.*\.\.0\.9.*astype\(np.uint8\)"),
    (np.full((32, 32, 3), 200.0), r"received a float64 array .*Float images are refused"),
    (np.full((32, 32, 3), -1, np.int16), r"values 0\.\.255 .*values -1\.\.-1"),
    (np.full((32, 32, 3), 300, np.uint16), r"values 0\.\.255 .*300\.\.300"),
    (np.zeros((32, 32, 2), np.uint8), r"1 \(gray\), 3 \(RGB\) or 4 \(RGBA\) channels.*2 channels"),
    (np.zeros((32, 32, 5), np.uint8), r"5 channels"),
    (np.zeros((3, 32, 32), np.uint8), r"channels-first .*transpose\(1, 2, 0\)"),
    (np.zeros(32, np.uint8), r"received 1 dimension"),
    (np.zeros((1, 2, 32, 32, 3), np.uint8), r"received 5 dimension"),
    (np.zeros((0, 10, 3), np.uint8), r"non-empty image.*\(0, 10, 3\)"),
    (np.zeros((8, 8, 3), bool), r"uint8 pixels .*bool array"),
    ({"not": "an image"}, r"a HxWxC uint8 numpy array, a PIL image, a file path .*received dict"),
    (b"not an image at all", r"Cannot decode image <bytes>"),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)], r"input 1 of 2"),
    ([np.zeros((2, 8, 8, 3), np.uint8)], r"input 0 of 1.*4-D array"),
]


@pytest.mark.parametrize("bad,message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_inputs_that_cannot_be_right_are_refused_with_one_clear_line(classifiers, bad, message):
    for clf in (classifiers["tflite-int8"], classifiers["onnx-float32"]):
        with pytest.raises(DataError, match=message) as info:
            clf.predict(bad)
        assert "\n" not in str(info.value)


def test_unreadable_paths_and_folders_are_refused(classifiers, tmp_path, mixed_dir):
    clf = classifiers["tflite-int8"]
    with pytest.raises(DataError, match=r"Image not found: .*nope\.png"):
        clf.predict(tmp_path / "nope.png")
    with pytest.raises(DataError, match=r"is a folder.*clf\.stream\(source=FOLDER\)"):
        clf.predict(tmp_path)
    with pytest.raises(DataError, match=r"Cannot decode image .*truncated\.png"):
        clf.predict(mixed_dir / "ng" / "truncated.png")
    with pytest.raises(DataError, match=r"Cannot decode image .*empty\.png"):
        clf.predict(str(mixed_dir / "ok" / "empty.png"))
    with pytest.raises(EdgeCNNError, match="topk >= 1"):
        clf.predict(np.zeros((8, 8, 3), np.uint8), topk=0)


# ---------------------------------------------------------------------------------------------- streams
@pytest.mark.parametrize("key", ["tflite-int8", "onnx-float32"])
def test_stream_over_a_folder_matches_run_and_predict(classifiers, artifacts, tiny_run, frames_dir, tmp_path, key):
    clf = classifiers[key]
    rows = _run_rows(_model(artifacts, tiny_run, key), frames_dir, tmp_path / "p.jsonl", "--batch", "4")
    with clf.stream(source=frames_dir, batch=4, keep_images=True) as stream:
        preds = list(stream)
    assert [p.source for p in preds] == [r["source"] for r in rows]
    assert [p.frame for p in preds] == list(range(len(rows)))
    for p, row in zip(preds, rows):
        _same(p, row)
        assert p.image is not None and p.image.ndim == 3
        np.testing.assert_allclose(p.probs, clf.predict(p.source).probs, atol=1e-6)
    assert stream.stop_reason == "end" and stream.stats.ok == len(rows)
    with pytest.raises(EdgeCNNError, match="already iterated"):
        list(stream)


def test_stream_skips_unreadable_files_with_a_warning_or_raises(classifiers, mixed_dir, capsys):
    clf = classifiers["tflite-int8"]
    stream = clf.stream(source=mixed_dir)
    preds = list(stream)
    bad = sorted(Path(s).name for s, _ in stream.skipped)
    assert bad == ["empty.png", "truncated.png"]
    assert len(preds) == len(list_images(mixed_dir)) - 2 and all(p.image is None for p in preds)
    assert "Skipped" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"Cannot decode image"):
        list(clf.stream(source=mixed_dir, skip_unreadable=False, workers=1))


@pytest.mark.parametrize("key", ["tflite-int8", "onnx-float32", "keras"])
def test_stream_over_a_video_matches_run(classifiers, artifacts, tiny_run, tmp_path, key):
    video = write_video(tmp_path / "clip.avi", frames=12, size=(80, 60))
    clf = classifiers[key]
    rows = _run_rows(_model(artifacts, tiny_run, key), video, tmp_path / "v.jsonl")
    preds = list(clf.stream(source=video))
    assert len(preds) == len(rows) == 12
    for p, row in zip(preds, rows):
        _same(p, row)
    # each frame as the application would read it with OpenCV
    cap = cv2.VideoCapture(str(video))
    for p in preds:
        ok, frame = cap.read()
        assert ok
        assert clf.predict(frame, bgr=True).label == p.label
    cap.release()
    assert len(list(clf.stream(source=str(video), max_frames=5))) == 5


def test_stream_can_be_left_early_and_live_sources_work(classifiers):
    clf = classifiers["tflite-float32"]
    stream = clf.stream(source="synthetic:200:64x48", keep_images=True)
    got = []
    for p in stream:
        got.append(p)
        if len(got) == 4:
            break
    assert len(got) == 4 and stream.live and got[0].image.shape == (48, 64, 3)
    assert len(list(clf.stream(source="synthetic:200", max_frames=6))) == 6
    unused = clf.stream(source="synthetic:50")
    unused.close()  # never iterated: the capture thread is stopped
    with pytest.raises(SourceError, match="Source not found"):
        clf.stream(source="/no/such/folder")
    with pytest.raises(SourceError, match="not both"):
        clf.stream(source="synthetic", camera=0)
    with pytest.raises(ConfigError, match="max_frames >= 1"):
        clf.stream(source="synthetic", max_frames=0)


# ---------------------------------------------------------------------------------------------- loading
def test_load_options_device_profile_and_errors(artifacts, tmp_path):
    with edgecnn.load(artifacts["tflite-int8"], device="rpi4") as clf:
        assert clf.info()["threads"] == 4  # the profile's threads
        assert clf.card.labels == clf.labels and clf.input_size == (24, 24, 3)
        assert "model-int8" in repr(clf) or "int8" in repr(clf)
    with edgecnn.load(artifacts["onnx-float32"], threads=1, providers=["cpu"]) as clf:
        assert clf.info()["provider"] == "CPUExecutionProvider" and clf.info()["threads"] == 1
    with pytest.raises(ModelError, match="Model not found"):
        edgecnn.load(tmp_path / "missing.tflite")
    with pytest.raises(ModelError, match="Unknown model type"):
        edgecnn.load(Path(__file__))
    with pytest.raises(ConfigError, match="Unknown device profile"):
        edgecnn.load(artifacts["tflite-int8"], device="no-such-board")
    with pytest.raises(ModelError, match="cannot run"):
        edgecnn.load(artifacts["tflite-int8"], backend="onnx")
    with pytest.raises(ModelError, match="Cannot load TFLite delegate 'libedgecnn-no-such-delegate.so'"):
        edgecnn.load(artifacts["tflite-int8"], delegate="libedgecnn-no-such-delegate.so")


def test_import_is_light_and_public_names_resolve():
    code = (
        "import sys, edgecnn\n"
        "heavy = [m for m in ('numpy', 'cv2', 'PIL', 'rich', 'typer', 'tensorflow', 'keras', 'onnxruntime') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import edgecnn.export, edgecnn.evaluate, edgecnn.bench.runner\n"
        "from edgecnn.export import ExportReport\n"
        "assert callable(edgecnn.export) and edgecnn.export.__module__ == 'edgecnn.api', edgecnn.export\n"
        "assert edgecnn.bench.__module__ == 'edgecnn.api' and edgecnn.evaluate.__module__ == 'edgecnn.api'\n"
        "for name in edgecnn.__all__: getattr(edgecnn, name)\n"
        "from edgecnn import load, Classifier, Prediction, train, export, bench, evaluate\n"
        "assert 'tensorflow' not in sys.modules, 'public names must not import TensorFlow'\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
    assert (Path(edgecnn.__file__).parent / "py.typed").is_file()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgecnn.nope  # noqa: B018
    assert set(edgecnn.__all__) == set(edgecnn._LAZY) | {"EdgeCNNError", "__version__"}
