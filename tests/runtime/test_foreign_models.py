"""Models made elsewhere run through run, bench, evaluate and the API and agree with their own framework (issue 23).

The models are built here from configuration (tests/foreign_models.py): a PyTorch export (NCHW, ImageNet mean/std
stated by a partial card, logits), Ultralytics-style ONNX and TFLite (``names``/``imgsz`` metadata, 0..1 input,
shortest side + centre crop), a plain [-1, 1] TFLite, and two 2-output models that are not classifiers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import foreign_models as fm
import numpy as np
import pytest

from edgecnn.conventions import Conventions, graph_layout
from edgecnn.errors import ModelError

REPO = Path(__file__).resolve().parents[2]

#: producer → the flags a user states for it (only the [-1, 1] file needs one: it states nothing).
PRODUCERS = {
    "torch-onnx": {},
    "ultralytics-onnx": {},
    "ultralytics-tflite": {},
    "minus-one-tflite": {"input_range": "-1,1"},
}


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    pytest.importorskip("torch", reason="the PyTorch producer needs torch (pip install 'edgecnn[train-torch]')")
    pytest.importorskip("tensorflow", reason="the TFLite producers need TensorFlow (pip install 'edgecnn[train]')")
    root = tmp_path_factory.mktemp("foreign")
    data = fm.write_images(root / "data", per_class=12)
    images, targets = fm.training_set(data)
    from edgecnn.imaging import scan_labelled_folder

    files = [str(f) for f in scan_labelled_folder(data, fm.LABELS).files]
    models = {"torch-onnx": fm.torch_onnx(root, data), "ultralytics-onnx": fm.ultralytics_onnx(root, data),
              "ultralytics-tflite": fm.ultralytics_tflite(root, data),
              "minus-one-tflite": fm.minus_one_tflite(root, data)}
    expected = {name: ref(images) for name, (_path, ref) in models.items()}
    return SimpleNamespace(root=root, data=data, images=images, targets=targets, files=files, models=models,
                           expected=expected)


def _agreement(a, b) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))


@pytest.mark.parametrize("name", list(PRODUCERS))
def test_api_run_evaluate_bench_agree_with_the_producing_framework(foreign, name, tmp_path):
    import edgecnn
    from edgecnn.bench.measure import BenchSettings
    from edgecnn.evaluate import evaluate
    from edgecnn.runtime.runner import RunOptions, run

    path, _ref = foreign.models[name]
    expected = foreign.expected[name]
    assert len(set(expected.tolist())) >= 2, "the producer's model must separate these images"
    flags = PRODUCERS[name]

    clf = edgecnn.load(path, **flags)
    api = [p.class_index for p in clf.predict(foreign.images)]
    assert _agreement(api, expected) >= 0.99

    rows = tmp_path / "rows.jsonl"
    summary = run(RunOptions(model=path, source=str(foreign.data), save_jsonl=rows, print_results=False, **flags))
    assert summary.ok == len(foreign.files)
    by_source = {r["source"]: r["label"] for r in map(json.loads, rows.read_text().splitlines())}
    labels = clf.labels
    assert _agreement([by_source[f] for f in foreign.files], [labels[i] for i in expected]) >= 0.99

    conventions = Conventions(**flags) if flags else None
    report = evaluate(path, data=foreign.data, out_dir=tmp_path / "eval", conventions=conventions)
    assert report.count == len(foreign.files)
    assert report.accuracy == pytest.approx(_agreement(expected, foreign.targets))

    bench = edgecnn.bench([path], data=foreign.data, conventions=conventions,
                          settings=BenchSettings(runs=3, min_seconds=0, warmup=1, warmup_seconds=0))
    (row,) = bench.results
    assert row.ok, row.error
    assert row.accuracy == pytest.approx(report.accuracy)
    run_agree = _agreement([by_source[f] for f in foreign.files], [labels[i] for i in expected])
    print(f"\n{name}: API {_agreement(api, expected):.1%}, run {run_agree:.1%} of {len(api)} images agree with the "
          f"producer; evaluate accuracy {report.accuracy:.1%}, bench accuracy {row.accuracy:.1%}, producer's own "
          f"{_agreement(expected, foreign.targets):.1%}")


def test_conventions_are_read_from_the_files_and_marked(foreign):
    from edgecnn.runtime.backends import load_backend

    torch_path = foreign.models["torch-onnx"][0]
    with load_backend(torch_path) as be:
        card = be.card
        assert (card.input.layout, card.input.range) == ("NCHW", [0.0, 1.0])
        assert card.preprocessing.mean == pytest.approx(fm.IMAGENET_MEAN.tolist())
        assert card.preprocessing.resize_mode == "shortest-side+center-crop"
        assert card.output.activation == "logits" and be.scores == "softmax of logits"
        assert card.labels == fm.LABELS and card.origins["labels"] == "from the file"
        x = be.prepare(np.zeros((2, fm.SIZE, fm.SIZE, 3), np.uint8))  # one transpose per batch: NCHW out
        assert x.shape == (2, 3, fm.SIZE, fm.SIZE) and x.flags.c_contiguous
        assert x[0, :, 0, 0] == pytest.approx((0 - fm.IMAGENET_MEAN) / fm.IMAGENET_STD, rel=1e-5)
        probs = be.predict(np.zeros((3, fm.SIZE, fm.SIZE, 3), np.uint8))
        assert probs.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-5)

    for name in ("ultralytics-onnx", "ultralytics-tflite"):
        with load_backend(foreign.models[name][0]) as be:
            assert be.card.preprocessing.convention == "ultralytics" and be.card.labels == fm.LABELS
            assert be.card.input.range == [0.0, 1.0] and be.card.output.activation == "softmax"
            assert be.card.input.layout == ("NCHW" if name.endswith("onnx") else "NHWC")


def test_what_is_unknown_is_assumed_with_a_warning_or_refused_with_strict(foreign, caplog):
    from edgecnn.runtime.backends import load_backend

    path = foreign.models["minus-one-tflite"][0]
    with caplog.at_level("WARNING", logger="edgecnn"):
        with load_backend(path) as be:
            assert be.card.origins["range"] == "assumed"
    assert any("--input-range 0,255" in r.getMessage() for r in caplog.records)
    with pytest.raises(ModelError, match="--strict refuses to assume") as err:
        load_backend(path, conventions=Conventions(strict=True))
    assert "\n" not in str(err.value) and "--input-range" in str(err.value)
    stated = Conventions(input_range="-1,1", mean="0", std="1", color="rgb", resize="stretch",
                         interpolation="bilinear", strict=True)
    with load_backend(path, conventions=stated) as be:
        assert be.card.origins["range"] == "from the flags"


def test_flags_override_the_file_and_a_wrong_layout_is_one_line(foreign, tmp_path):
    from edgecnn.runtime.backends import load_backend

    path = foreign.models["torch-onnx"][0]
    with pytest.raises(ModelError, match="pass --layout NCHW"):
        load_backend(path, conventions=Conventions(layout="NHWC"))
    labels = tmp_path / "names.txt"
    labels.write_text("a\nb\nc\n")
    with load_backend(path, conventions=Conventions(labels=labels, color="bgr")) as be:
        assert be.labels == ["a", "b", "c"] and be.card.origins["labels"] == "from the flags"
        assert be.card.preprocessing.color == "bgr"
        img = np.zeros((40, 32, 3), np.uint8)
        img[..., 0] = 200
        assert be.preprocess(img)[..., 2].min() == 200  # red lands in the last channel
    labels.write_text("a\nb\n")
    with pytest.raises(ModelError, match="3 values but 2 labels"):
        load_backend(path, conventions=Conventions(labels=labels))


@pytest.mark.parametrize("make", [fm.two_output_tflite, fm.two_output_onnx])
def test_a_model_that_is_not_a_classifier_is_refused_in_one_line(make, tmp_path):
    import edgecnn

    path = make(tmp_path)
    with pytest.raises(ModelError) as err:
        edgecnn.load(path)
    message = str(err.value)
    assert "not an image classifier" in message and "2 outputs" in message and "\n" not in message


def test_evaluate_maps_folder_names_onto_numeric_labels_and_says_so(foreign, tmp_path, capsys):
    from edgecnn.evaluate import evaluate

    path = foreign.models["minus-one-tflite"][0]
    report = evaluate(path, data=foreign.data, out_dir=tmp_path / "eval", conventions=Conventions(input_range="-1,1"))
    assert report.labels == fm.LABELS
    said = " ".join(capsys.readouterr().err.split())
    assert "mapped the folder names onto its class indices" in said and "cat=0, dog=1, fox=2" in said


def test_cli_run_info_and_refusals(foreign, tmp_path):
    env_py = [sys.executable, "-m", "edgecnn"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*env_py, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "PYTHONPATH": str(REPO)})

    path = foreign.models["torch-onnx"][0]
    rows = tmp_path / "rows.jsonl"
    res = cli("run", str(path), "--source", str(foreign.data), "--save-jsonl", str(rows), "-q")
    assert res.returncode == 0, res.stderr
    assert "Scores: softmax of logits" in res.stdout
    parsed = [json.loads(line) for line in rows.read_text().splitlines()]
    assert {r["scores"] for r in parsed} == {"softmax of logits"}
    by_source = {r["source"]: r["label"] for r in parsed}
    expected = [fm.LABELS[i] for i in foreign.expected["torch-onnx"]]
    assert _agreement([by_source[f] for f in foreign.files], expected) >= 0.99

    minus_one = foreign.models["minus-one-tflite"][0]
    res = cli("info", str(minus_one), "--input-range", "-1,1")
    assert res.returncode == 0, res.stderr
    assert "range from the flags" in " ".join(res.stdout.split())
    res = cli("run", str(minus_one), "--source", foreign.files[0], "--strict")
    assert res.returncode != 0 and "--strict refuses" in res.stderr and "Traceback" not in res.stderr

    two = fm.two_output_onnx(tmp_path)
    res = cli("run", str(two), "--source", foreign.files[0])
    assert res.returncode != 0 and "not an image classifier" in res.stderr and "Traceback" not in res.stderr


def test_graph_layout_reads_channels_first_and_last():
    assert graph_layout((None, 3, 224, 224)) == "NCHW"
    assert graph_layout((1, 224, 224, 3)) == "NHWC"
    assert graph_layout((None, 1, "h", "w")) == "NCHW"
    assert graph_layout((1, 3, 3, 3)) == "NHWC"
    assert graph_layout((1, 1000)) is None


def test_interpolation_names_match_imaging():
    from edgecnn.conventions import INTERPOLATION_NAMES
    from edgecnn.imaging import INTERPOLATIONS

    assert tuple(INTERPOLATIONS) == INTERPOLATION_NAMES


def test_center_crop_matches_torchvision_arithmetic():
    from edgecnn.imaging import preprocess

    img = np.arange(48 * 32 * 3, dtype=np.uint8).reshape(48, 32, 3)
    out = preprocess(img, 32, 32, "rgb", "bilinear", "shortest-side+center-crop")
    assert np.array_equal(out, img[8:40])
    wide = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    out = preprocess(wide, 32, 32, "rgb", "area", "shortest-side+center-crop")
    assert out.shape == (32, 32, 3)


def test_a_station_runs_a_model_made_elsewhere_with_conventions_from_its_file(foreign, tmp_path):
    """The station file's ``[run]`` takes the same convention fields (one table) and the engine uses them."""
    from station.streams import write_video  # tests/ is on sys.path

    from edgecnn.station.engine import run_station
    from edgecnn.station.plan import resolve

    video = write_video(tmp_path / "line.avi", count=6, fps=10.0)

    def station(model: Path, run_extra: str) -> Path:
        path = tmp_path / "station.toml"
        path.write_text(f'name = "t"\nmodel = "{model}"\n[run]\nsave_jsonl = "rows.jsonl"\n{run_extra}\n'
                        f'[[sources]]\nname = "video"\nsource = "{video}"\n[rules]\nvotes = 1\nwindow = 1\n')
        return path

    summary = run_station(resolve(station=station(foreign.models["torch-onnx"][0], "")))
    assert summary.frames > 0
    preds = [r for r in map(json.loads, (tmp_path / "rows.jsonl").read_text().splitlines()) if r["kind"] == "prediction"]
    assert preds and {r["label"] for r in preds} <= set(fm.LABELS)
    with pytest.raises(ModelError, match="--strict refuses"):
        run_station(resolve(station=station(foreign.models["minus-one-tflite"][0], "strict = true")))


@pytest.mark.ray
def test_the_ray_engine_ships_the_conventions_to_its_workers(foreign, tmp_path):
    """``--engine ray``: the flags (a labels file read on the driver, the input range) reach every worker; the rows
    equal a local run's."""
    import csv

    from raytools import edgecnn_cli, needs_ray

    if needs_ray.args[0]:
        pytest.skip(needs_ray.kwargs["reason"])
    path = foreign.models["minus-one-tflite"][0]
    names = tmp_path / "names.txt"
    names.write_text("".join(f"{n}\n" for n in fm.LABELS))
    flags = ("--input-range", "-1,1", "--labels", str(names), "-q")
    local, remote = tmp_path / "local.csv", tmp_path / "ray.csv"
    env = {"PYTHONPATH": str(REPO)}
    assert edgecnn_cli("run", str(path), "--source", str(foreign.data), "--save-csv", str(local), *flags,
                       env=env).returncode == 0
    proc = edgecnn_cli("run", str(path), "--source", str(foreign.data), "--save-csv", str(remote), "--engine", "ray",
                       "--workers", "1", *flags, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys = ("source", "label", "topk", "status")
    a = [{k: r[k] for k in keys} for r in csv.DictReader(open(local, encoding="utf-8"))]
    b = [{k: r[k] for k in keys} for r in csv.DictReader(open(remote, encoding="utf-8"))]
    assert a == b and len(a) == len(foreign.files)
    expected = [fm.LABELS[i] for i in foreign.expected["minus-one-tflite"]]
    by_source = {r["source"]: r["label"] for r in a}
    assert _agreement([by_source[f] for f in foreign.files], expected) >= 0.99


def test_serve_predict_runs_a_model_made_elsewhere(foreign, tmp_path):
    """POST /predict of ``edgecnn serve`` (the HTTP API) gives the producer's top-1, with the stated conventions."""
    import urllib.request

    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    path = foreign.models["minus-one-tflite"][0]
    names = tmp_path / "names.txt"
    names.write_text("".join(f"{n}\n" for n in fm.LABELS))
    expected = foreign.expected["minus-one-tflite"]
    got = []
    with open_server(path, ServeConfig(port=0), conventions=Conventions(input_range="-1,1", labels=names)) as served:
        for f in foreign.files[:12]:
            req = urllib.request.Request(served.url + "/predict", data=Path(f).read_bytes(), method="POST",
                                         headers={"Content-Type": "image/png"})
            with urllib.request.urlopen(req, timeout=30) as r:
                got.append(json.loads(r.read())["label"])
    assert _agreement(got, [fm.LABELS[i] for i in expected[:12]]) >= 0.99


def test_parity_compares_models_made_elsewhere(foreign):
    """``edgecnn parity --reference`` on a channels-first model that carries no card: its own card, built from the
    graph and the partial card, preprocesses the data; the ONNX model against itself agrees exactly."""
    from edgecnn.parity import parity

    path = foreign.models["torch-onnx"][0]
    (result,) = parity([path], reference=path, data=foreign.data)
    assert result.agreement == 1.0 and result.max_abs == 0.0 and result.samples == len(foreign.files)
