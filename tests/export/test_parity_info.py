"""Parity on demand (golden and reference+data), ``edgecnn info``, and the TF-free edge-side contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn import __version__
from edgecnn.cli import app
from edgecnn.errors import ModelError
from edgecnn.fileio import sha256_file
from edgecnn.parity import Gates, compare, evaluate_gates, load_golden, parity

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _tf_free(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter and fail if it imported TensorFlow, Keras, tf2onnx or a converter module
    (the CLI reads the pure-Python ``converters.registry`` table for its choices; nothing else of converters)."""
    check = ("\nimport sys\nheavy = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'converters.to_tflite', "
             "'converters.to_onnx', 'converters.to_saved_model') if m in sys.modules]\n"
             "assert not heavy, f'imported {heavy}'\n")
    res = subprocess.run([sys.executable, "-c", code + check], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_card_reads_back_without_tensorflow(exported_artifacts, tiny_run):
    paths = {k: str(v) for k, v in exported_artifacts.items() if k.startswith(("tflite", "onnx"))}
    code = (
        "import json\nfrom edgecnn.modelcard import load_card\n"
        f"paths = {paths!r}\nout = {{}}\n"
        "for k, p in paths.items():\n"
        "    c = load_card(p)\n"
        "    out[k] = {'labels': c.labels, 'dtype': c.input.dtype, 'q': c.input.quantization and c.input.quantization.scale,"
        " 'fmt': c.artifact['format'], 'prec': c.artifact['precision'], 'sha': c.provenance['source_sha256'],"
        " 'ver': c.provenance['edgecnn_version'], 'size': [c.input.height, c.input.width, c.input.channels]}\n"
        "print(json.dumps(out))\n"
    )
    cards = json.loads(_tf_free(code).stdout.strip().splitlines()[-1])
    sha = sha256_file(tiny_run / "model.keras")
    for key, c in cards.items():
        fmt, prec = key.split("-")
        assert (c["fmt"], c["prec"]) == (fmt, prec)
        assert c["labels"] == ["alpha", "beta", "gamma"] and c["size"] == [24, 24, 3]
        assert c["sha"] == sha and c["ver"] == __version__
    assert cards["tflite-int8"]["dtype"] == "uint8" and cards["tflite-int8"]["q"] == 1.0  # raw pixel bytes
    assert cards["onnx-int8"]["dtype"] == "float32"


def test_parity_cli_with_golden_is_tf_free(exported_artifacts):
    arts = [str(exported_artifacts[k]) for k in ("tflite-int8", "tflite-float32", "onnx-int8", "onnx-float32")]
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom edgecnn.cli import app\n"
        f"res = CliRunner().invoke(app, ['parity', *{arts!r}, '--golden', {str(exported_artifacts['golden'])!r}])\n"
        "print(res.output)\nassert res.exit_code == 0, res.output\n"
    )
    out = _tf_free(code).stdout
    assert out.count("PASS") == 4 and "model-int8.onnx" in out


def test_info_is_tf_free_and_shows_tensors_and_ops(exported_artifacts):
    code = (
        "from typer.testing import CliRunner\nfrom edgecnn.cli import app\n"
        f"for p in ({str(exported_artifacts['tflite-int8'])!r}, {str(exported_artifacts['onnx-int8'])!r}):\n"
        "    res = CliRunner().invoke(app, ['info', p])\n"
        "    assert res.exit_code == 0, res.output\n    print(res.output)\n"
    )
    out = _tf_free(code).stdout
    assert "CONV_2D" in out and "int8" in out and "alpha" in out  # tflite: ops, dtype, labels
    assert "QuantizeLinear" in out and "Conv" in out  # onnx ops
    assert "scale=" in out and "source_sha256" in out


def test_info_json(exported_artifacts):
    res = runner.invoke(app, ["info", str(exported_artifacts["tflite-float32"]), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["format"] == "tflite" and data["size_bytes"] == exported_artifacts["tflite-float32"].stat().st_size
    assert data["inputs"][0]["shape"][1:] == [24, 24, 3] and data["inputs"][0]["dtype"] == "float32"
    assert data["ops"]["CONV_2D"] == 2 and data["card"]["labels"] == ["alpha", "beta", "gamma"]


def test_info_bad_input(tmp_path):
    bogus = tmp_path / "x.tflite"
    bogus.write_bytes(b"garbage" * 10)
    res = runner.invoke(app, ["info", str(bogus)])
    assert res.exit_code != 0 and "x.tflite" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["info", str(tmp_path / "missing.onnx")])
    assert res.exit_code != 0 and "not found" in res.output


def test_golden_parity_api(exported_artifacts):
    golden = load_golden(exported_artifacts["golden"])
    results = parity([exported_artifacts["tflite-float16"], exported_artifacts["onnx-float32"]],
                     golden=exported_artifacts["golden"])
    assert all(r.passed for r in results)
    assert results[0].precision == "float16" and results[0].samples == len(golden.inputs)
    assert results[1].max_abs <= 1e-4 and results[1].agreement == 1.0


def test_parity_with_reference_and_data(exported_artifacts, tiny_run, shapes_dir):
    res = runner.invoke(app, ["parity", str(exported_artifacts["tflite-int8"]), "--reference",
                              str(tiny_run / "model.keras"), "--data", str(shapes_dir)])
    assert res.exit_code == 0, res.output
    assert "model-int8.tflite" in res.output and "PASS" in res.output


def test_parity_fails_on_a_tampered_golden(exported_artifacts, tmp_path):
    g = load_golden(exported_artifacts["golden"])
    flipped = g.probs[:, ::-1].copy()  # the "reference" now prefers another class
    bad = tmp_path / "golden.npz"
    np.savez(bad, inputs=g.inputs, outputs=flipped, targets=g.targets, labels=np.asarray(g.labels))
    res = runner.invoke(app, ["parity", str(exported_artifacts["tflite-float32"]), "--golden", str(bad)])
    assert res.exit_code != 0
    assert "Parity gate failed" in res.output and "model-float32.tflite" in res.output and "max |Δp|" in res.output


def test_parity_bad_inputs(exported_artifacts, tmp_path):
    art = str(exported_artifacts["tflite-float32"])
    res = runner.invoke(app, ["parity", art, "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--reference" in res.output
    res = runner.invoke(app, ["parity", art, "--golden", str(tmp_path / "none.npz")])
    assert res.exit_code != 0 and "not found" in res.output
    (tmp_path / "junk.npz").write_bytes(b"nope")
    res = runner.invoke(app, ["parity", art, "--golden", str(tmp_path / "junk.npz")])
    assert res.exit_code != 0 and "Traceback" not in res.output


@pytest.mark.parametrize(
    ("precision", "cand_shift", "fails"),
    [("float32", 0.0, []), ("float32", 2e-4, ["max |Δp|"]), ("float16", 5e-3, []), ("float16", 2e-2, ["max |Δp|"])],
)
def test_gates_thresholds(precision, cand_shift, fails):
    ref = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], dtype=np.float32)
    cand = ref + np.array([[-cand_shift, cand_shift, 0.0]] * 2, dtype=np.float32)
    msgs = evaluate_gates(compare(ref, cand, np.array([0, 1])), precision, Gates())
    assert [m for f in fails for m in msgs if m.startswith(f)] == msgs if fails else msgs == []


def test_quantized_gate_counts_agreement_and_accuracy_drop():
    ref = np.eye(3, dtype=np.float32)[[0, 1, 2] * 20]
    targets = np.array([0, 1, 2] * 20)
    cand = ref.copy()
    cand[0] = [0, 1, 0]  # one disagreement in 60 → 98.3 % agreement, accuracy drop 1.7 pts
    figures = compare(ref, cand, targets)
    assert figures["agreement"] == pytest.approx(59 / 60)
    msgs = evaluate_gates(figures, "int8", Gates())
    assert len(msgs) == 1 and msgs[0].startswith("accuracy drop")


def test_unknown_precision_is_an_error_not_int8_gates():
    """A card saying "fp32" (the trainer wrote it) was gated as int8; the registry's gate kinds decide now."""
    with pytest.raises(ModelError, match="fp32"):
        Gates().checks("fp32")
    assert Gates().checks("dynamic") == Gates().checks("int8")
    assert Gates().checks("float32")[0][0] == "max_abs"


def test_info_counts_model_ops_not_runtime_delegate_nodes(exported_artifacts):
    """XNNPACK's DELEGATE nodes were counted as model ops (and inflated the total)."""
    res = runner.invoke(app, ["info", str(exported_artifacts["tflite-int8"]), "--json"])
    assert res.exit_code == 0, res.output
    ops = json.loads(res.output)["ops"]
    assert "DELEGATE" not in ops and ops["CONV_2D"] == 2


def test_info_and_export_refuse_empty_onnx_and_non_zip_keras(tmp_path):
    """A zero-byte .onnx printed an empty card with exit 0; a non-zip .keras said "File not found"."""
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    res = runner.invoke(app, ["info", str(empty)])
    assert res.exit_code != 0 and "empty.onnx" in res.output and "no graph" in res.output
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"\x00" * 300)
    for args in (["info", str(junk)], ["export", str(junk), "--out", str(tmp_path / "o")]):
        res = runner.invoke(app, args)
        assert res.exit_code != 0 and "junk.keras" in res.output and "zip" in res.output, res.output
        assert "not found" not in res.output.lower() and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_parity_truncated_golden_is_one_clear_line(exported_artifacts, tmp_path):
    """A truncated golden.npz (BadZipFile) escaped as a traceback; CliRunner hides that, so check the message."""
    art = str(exported_artifacts["tflite-float32"])
    data = exported_artifacts["golden"].read_bytes()
    for name, blob in (("cut.npz", data[: len(data) // 2]), ("junk.npz", b"nope")):
        (tmp_path / name).write_bytes(blob)
        res = runner.invoke(app, ["parity", art, "--golden", str(tmp_path / name)])
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.exception
        assert f"{name} is not an edgecnn golden file" in res.output
