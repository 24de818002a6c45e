"""Issue 25: habits from other tools get edgecnn's spelling, usage errors exit 2, one --top-k default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(("args", "expected"), [
    (("predict", "model.tflite"), "Did you mean 'run'?"),
    (("val", "model.tflite"), "Did you mean 'evaluate'?"),
    (("trian",), "Did you mean 'train'?"),
    (("run", "model.tflite", "--conf", "0.5"), "Did you mean --threshold?"),
    (("run", "model.tflite", "--imgsz", "64"), "No such option: --imgsz"),  # run has no --img-size: nothing suggested
    (("train", "--imgsz", "64"), "Did you mean --img-size?"),
    (("run", "model.tflite", "data/"), "edgecnn run MODEL --source data/"),
    (("evaluate", "model.tflite", "data/"), "edgecnn evaluate MODEL --data data/"),
])
def test_habits_from_other_tools_get_a_suggestion_and_exit_2(args, expected):
    res = _cli(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    text = " ".join(res.stderr.replace("│", " ").split())
    assert expected in text, res.stderr
    assert "Traceback" not in res.stderr


def test_an_unknown_option_with_no_habit_gets_no_wrong_suggestion():
    res = _cli("run", "model.tflite", "--imgsz", "64")
    assert "Did you mean" not in res.stderr


def test_channels_out_of_range_is_a_usage_error(tmp_path):
    res = _cli("train", "--data", str(tmp_path), "--channels", "4")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Expected --channels 1 or 3; received 4." in res.stderr


def test_a_number_taken_as_a_model_says_to_use_commas(exported_artifacts):
    tflite_model = exported_artifacts["tflite-float32"]
    res = _cli("bench", str(tflite_model), "--threads", "1", "2")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "--threads 1,2" in res.stderr and "Traceback" not in res.stderr


def test_a_sweep_with_more_threads_than_cores_warns(capsys):
    from edgecnn.bench.options import sweep_plan, usable_cores

    too_many = usable_cores() + 1
    plan = sweep_plan(None, None, f"1,{too_many}", None, None, None, None)
    assert plan.threads == [1, too_many]
    err = capsys.readouterr().err
    assert f"--threads {too_many}: more threads than the {usable_cores()} cores" in " ".join(err.split())
    sweep_plan(None, None, "1", None, None, None, None)
    assert "more threads" not in capsys.readouterr().err


def test_one_top_k_default_everywhere():
    import inspect

    from edgecnn.classifier import Classifier
    from edgecnn.cli.run_params import RUN_PARAMS
    from edgecnn.evaluate import evaluate
    from edgecnn.training.config import TrainConfig

    run_default = next(p.default for p in RUN_PARAMS if p.name == "topk")
    assert TrainConfig().top_k == run_default
    assert inspect.signature(evaluate).parameters["topk"].default == run_default
    assert inspect.signature(Classifier.predict).parameters["topk"].default == run_default
