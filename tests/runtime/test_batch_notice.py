"""A --batch larger than a fixed-batch model allows is not silently ignored."""

from typer.testing import CliRunner

from edgecnn.cli import app


def test_fixed_batch_onnx_says_it_runs_smaller_batches(exported_artifacts, shapes_dir, tmp_path):
    csv = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["run", str(exported_artifacts["onnx-float32"]), "--source", str(shapes_dir / "alpha"),
                                   "--batch", "4", "--save-csv", str(csv), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "fixed batch of 1" in res.output and "--dynamic-batch" in res.output
    assert len(csv.read_text().splitlines()) == 31  # header + every image
    res = CliRunner().invoke(app, ["run", str(exported_artifacts["tflite-float32"]), "--source", str(shapes_dir / "alpha"),
                                   "--batch", "4", "--quiet"])
    assert res.exit_code == 0 and "fixed batch" not in res.output
