"""The Ray engine's pieces that need no cluster: ordering/dedupe on the driver, the retry warning, path lists and
Parquet as source kinds (local runs too), the Parquet sink, imports without TF/Ray, and one-line errors."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
from raytools import edgecnn_cli, has_ray, needs_ray

from edgecnn.errors import DataError, ModelError
from edgecnn.runtime.pipeline import Result
from edgecnn.scale.infer import InOrder, JobReport, check_model


def _r(i: int) -> Result:
    return Result(source=f"f{i}.png", index=i, label="a", score=0.5)


def test_in_order_reorders_drops_duplicates_and_names_gaps():
    order = InOrder(5)
    assert order.add(_r(1)) == []
    assert [r.index for r in order.add(_r(0))] == [0, 1]
    assert order.add(_r(1)) == [] and order.duplicates == 1
    assert order.add(_r(3)) == []
    assert list(order.missing()) == [2, 4] and not order.done
    assert [r.index for r in order.add(_r(2))] == [2, 3]
    assert [r.index for r in order.add(_r(4))] == [4] and order.done


def test_retry_warning_names_what_was_retried():
    assert JobReport(inputs=10).retry_warning() == ""
    text = JobReport(inputs=10, lost_nodes=["10.0.0.2 (ab12cd34)"], actor_restarts=1, duplicates=3,
                     rerun=["a.png", "b.png"]).retry_warning()
    assert "10.0.0.2 (ab12cd34) left the cluster" in text and "restarted" in text
    assert "3 duplicate row(s)" in text and "2 input(s) missing after the first pass were re-run (a.png, b.png)" in text
    assert text.endswith("Every one of the 10 inputs has exactly one row.")


def test_scale_imports_neither_tensorflow_nor_ray():
    code = ("import sys, edgecnn.scale, edgecnn.scale.run, edgecnn.scale.infer, edgecnn.scale.cluster, "
            "edgecnn.scale.localcluster, edgecnn.cli.run, edgecnn.cli.evaluate\n"
            "bad = [m for m in ('tensorflow', 'keras', 'ray', 'tf2onnx', 'converters.convert') if m in sys.modules]\n"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_path_list_is_a_source_kind_in_list_order(tflite_model, shapes_dir, tmp_path):
    files = sorted(shapes_dir.rglob("*.png"))
    listing = tmp_path / "lists" / "inputs.txt"
    listing.parent.mkdir()
    rel = Path("..") / "missing.png"
    listing.write_text(f"{files[5]}\n\n# a comment\n{files[0]}\n{rel}\n", encoding="utf-8")
    out = tmp_path / "rows.csv"
    proc = edgecnn_cli("run", str(tflite_model), "--source", str(listing), "--save-csv", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert [r["source"] for r in rows] == [str(files[5]), str(files[0]), str(listing.parent / rel)]
    assert [r["status"] for r in rows] == ["ok", "ok", "skipped"] and "not found" in rows[2]["error"]


@needs_ray
def test_parquet_of_paths_is_a_source_kind_and_the_parquet_sink_matches_the_csv(tflite_model, shapes_dir, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = [str(p) for p in sorted(shapes_dir.rglob("*.png"))[:7]]
    table = tmp_path / "paths.parquet"
    pq.write_table(pa.table({"id": list(range(7)), "path": files[::-1]}), table)
    out_csv, out_pq = tmp_path / "rows.csv", tmp_path / "rows.parquet"
    proc = edgecnn_cli("run", str(tflite_model), "--source", str(table), "--save-csv", str(out_csv),
                       "--save-parquet", str(out_pq), "-q")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(out_csv, encoding="utf-8")))
    got = pq.read_table(out_pq).to_pylist()
    assert [r["source"] for r in rows] == files[::-1] == [g["source"] for g in got]
    assert [r["label"] for r in rows] == [g["label"] for g in got]
    assert [f"{g['score']:.6f}" for g in got] == [r["score"] for r in rows]

    no_path = tmp_path / "nopath.parquet"
    pq.write_table(pa.table({"name": files}), no_path)
    from edgecnn.runtime.sources import open_source

    with pytest.raises(DataError, match="Expected a column named one of"):
        open_source(str(no_path))


@needs_ray
def test_parquet_sink_publishes_nothing_when_aborted(tmp_path):
    from edgecnn.runtime.sinks import ParquetWriter

    w = ParquetWriter(tmp_path / "out.parquet")
    w.write(_r(0))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_ray_engine_refuses_models_workers_cannot_run(tiny_run, tflite_model):
    with pytest.raises(ModelError, match="exported models"):
        check_model(tiny_run)
    with pytest.raises(ModelError, match=r"\.tflite or \.onnx"):
        check_model(tiny_run / "model.keras")
    assert check_model(tflite_model) == Path(tflite_model)


def test_cli_errors_are_one_line(tflite_model, tiny_run, shapes_dir):
    proc = edgecnn_cli("run", str(tflite_model), "--source", str(shapes_dir), "--address", "127.0.0.1:6379")
    assert proc.returncode != 0 and "add --engine ray" in proc.stderr and "Traceback" not in proc.stderr
    proc = edgecnn_cli("run", str(tiny_run / "model.keras"), "--source", str(shapes_dir), "--engine", "ray")
    assert proc.returncode != 0 and "Export it first" in proc.stderr and "Traceback" not in proc.stderr


@needs_ray
def test_unreachable_address_fails_fast_in_one_line(tflite_model, shapes_dir):
    from edgecnn.scale.localcluster import free_port

    t0 = time.monotonic()
    proc = edgecnn_cli("run", str(tflite_model), "--source", str(shapes_dir), "--engine", "ray", "--address",
                       f"127.0.0.1:{free_port()}", timeout=120)
    assert proc.returncode != 0 and "Cannot reach the Ray head" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 100  # not Ray's minutes of reconnecting


@pytest.mark.ray
@needs_ray
def test_without_address_a_local_ray_runs_the_job_and_stops(tflite_model, shapes_dir, tmp_path):
    local, remote = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert edgecnn_cli("run", str(tflite_model), "--source", str(shapes_dir), "--save-csv", str(local),
                       "-q").returncode == 0
    proc = edgecnn_cli("run", str(tflite_model), "--source", str(shapes_dir), "--engine", "ray", "--save-csv",
                       str(remote), "--batch", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "a local Ray instance" in proc.stdout
    keys = ("source", "index", "label", "score", "topk", "status")
    a = [{k: r[k] for k in keys} for r in csv.DictReader(open(local, encoding="utf-8"))]
    b = [{k: r[k] for k in keys} for r in csv.DictReader(open(remote, encoding="utf-8"))]
    assert a == b and len(a) == 90


def test_missing_ray_is_a_helpful_error(monkeypatch):
    if has_ray():
        import builtins

        real = builtins.__import__

        def no_ray(name, *args, **kwargs):
            if name == "ray" or name.startswith("ray."):
                raise ImportError("No module named 'ray'", name="ray")
            return real(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_ray)
    from edgecnn.errors import MissingDependencyError
    from edgecnn.scale.cluster import require_ray

    with pytest.raises(MissingDependencyError, match=r"pip install 'edgecnn\[ray\]'"):
        require_ray()
