"""Is `edgecnn bench` honest? Its p50 against a raw runtime loop on the same artifacts, same process, interleaved.

Builds a 96x96x3 three-block CNN (random weights: latency does not depend on them) and exports TFLite float32,
TFLite int8 (int8 I/O) and ONNX float32 in a *child* process (TensorFlow stays out of the timing process).
Then, for each artifact, it alternates rounds (ABBA order, so drift hits both sides equally) of

* raw:     ``interpreter.invoke()`` with the input set once (what TFLite's benchmark_model times), or
           ``session.run([out], {name: x})`` for ONNX Runtime, each call timed with ``perf_counter_ns``;
* edgecnn: :func:`edgecnn.bench.measure.measure_latency` on ``backend.infer(prepared)``, i.e. exactly the loop
           ``edgecnn bench`` runs (it also sets the input and reads the output on every run).

Both sides use the same thread count and the same runtime options (ORT: spinning off, inter-op 1).
It prints raw p50, edgecnn p50 and their ratio per artifact; the target is a ratio <= 1.05.

    .venv/bin/python benchmarks/bench_overhead.py [--rounds 10] [--runs 300] [--threads 1] [--cpus 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 96
CLASSES = ["a", "b", "c"]
TARGET = 1.05


# ---------------------------------------------------------------------- building (child process, imports TF)
def build(out: Path, size: int) -> None:
    """Write model-float32.tflite, model-int8.tflite, model-float32.onnx and modelcard.json into ``out``."""
    import keras
    import tensorflow as tf
    import tf2onnx

    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (out / "model-float32.tflite").write_bytes(conv.convert())

    rng = np.random.default_rng(0)

    def representative():
        for _ in range(32):
            yield [rng.integers(0, 256, (1, size, size, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (out / "model-int8.tflite").write_bytes(conv.convert())

    fn = tf.function(lambda t: model(t, training=False))
    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    (out / "model-float32.onnx").write_bytes(proto.SerializeToString())

    ModelCard(labels=CLASSES, input=InputSpec(height=size, width=size, channels=3),
              output=OutputSpec(activation="softmax", units=len(CLASSES)),
              preprocessing=Preprocessing(color="rgb", resize="area"), name="overhead-cnn").save(out / "modelcard.json")


# ---------------------------------------------------------------------- raw loops (what a user would write)
def raw_tflite(path: Path, threads: int, x: np.ndarray):
    from edgecnn.runtime.backends import tflite_runtime

    interpreter_cls, _, _, _ = tflite_runtime()
    it = interpreter_cls(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    invoke = it.invoke
    clock = time.perf_counter_ns

    def loop(n: int, warmup: int) -> list[int]:
        for _ in range(warmup):
            invoke()
        out = []
        for _ in range(n):
            t0 = clock()
            invoke()
            out.append(clock() - t0)
        return out

    return loop


def raw_onnx(path: Path, threads: int, x: np.ndarray):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    names = [sess.get_outputs()[0].name]
    run = sess.run
    clock = time.perf_counter_ns

    def loop(n: int, warmup: int) -> list[int]:
        for _ in range(warmup):
            run(names, feed)
        out = []
        for _ in range(n):
            t0 = clock()
            run(names, feed)
            out.append(clock() - t0)
        return out

    return loop


# ---------------------------------------------------------------------- comparison
def compare(path: Path, threads: int, rounds: int, runs: int, warmup: int) -> dict:
    from edgecnn.bench.measure import BenchSettings, measure_latency
    from edgecnn.runtime.backends import load_backend

    backend = load_backend(path, threads=threads)
    pixels = np.random.default_rng(1).integers(0, 256, (1, *backend.card.input_shape), dtype=np.uint8)
    prepared = backend.prepare(pixels)
    raw = (raw_tflite if path.suffix == ".tflite" else raw_onnx)(path, threads, prepared.copy())
    settings = BenchSettings(runs=runs, min_seconds=0, max_seconds=600, warmup=warmup, warmup_seconds=0)
    raw_ns: list[int] = []
    edge_ns: list[int] = []
    for i in range(rounds):
        order = ("raw", "edge") if i % 2 == 0 else ("edge", "raw")
        for side in order:
            if side == "raw":
                raw_ns += raw(runs, warmup)
            else:
                edge_ns += measure_latency(backend.infer, prepared, settings, first=(i == 0)).samples_ns
    backend.close()
    r50, e50 = float(np.median(raw_ns)) / 1e6, float(np.median(edge_ns)) / 1e6
    return {
        "artifact": path.name,
        "runtime": "LiteRT interpreter.invoke()" if path.suffix == ".tflite" else "onnxruntime session.run",
        "threads": threads,
        "samples_each": len(raw_ns),
        "raw_p50_ms": round(r50, 4),
        "edgecnn_p50_ms": round(e50, 4),
        "ratio_p50": round(e50 / r50, 4),
        "raw_mean_ms": round(float(np.mean(raw_ns)) / 1e6, 4),
        "edgecnn_mean_ms": round(float(np.mean(edge_ns)) / 1e6, 4),
        "raw_p90_ms": round(float(np.percentile(raw_ns, 90)) / 1e6, 4),
        "edgecnn_p90_ms": round(float(np.percentile(edge_ns, 90)) / 1e6, 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds per artifact (ABBA order)")
    ap.add_argument("--runs", type=int, default=300, help="timed runs per side per round")
    ap.add_argument("--warmup", type=int, default=20, help="untimed runs before each side's round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpus", default=None, help="pin to these CPUs, e.g. 0 or 0,1")
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_overhead.json")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a ratio exceeds the target")
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.build, args.size)
        return 0

    from edgecnn.fileio import write_json
    from edgecnn.sysinfo import pin_cpus, system_info, unpin_cpus

    with tempfile.TemporaryDirectory(prefix="edgecnn-overhead-") as tmp:
        folder = Path(tmp)
        print(f"Building a {args.size}x{args.size}x3 CNN and its artifacts (child process, TensorFlow)...", flush=True)
        child = subprocess.run([sys.executable, __file__, "--build", str(folder), "--size", str(args.size)],
                               capture_output=True, text=True)
        if child.returncode != 0:
            print(child.stdout + child.stderr, file=sys.stderr)
            return child.returncode
        assert "tensorflow" not in sys.modules
        previous = pin_cpus([int(c) for c in args.cpus.split(",")] if args.cpus else None)
        try:
            rows = [compare(folder / name, args.threads, args.rounds, args.runs, args.warmup)
                    for name in ("model-float32.tflite", "model-int8.tflite", "model-float32.onnx")]
        finally:
            unpin_cpus(previous)
    print(f"\n{'artifact':<22}{'baseline':<30}{'raw p50 ms':>11}{'edgecnn p50':>13}{'ratio':>8}  target <= {TARGET}")
    for r in rows:
        verdict = "ok" if r["ratio_p50"] <= TARGET else "ABOVE TARGET"
        print(f"{r['artifact']:<22}{r['runtime']:<30}{r['raw_p50_ms']:>11.4f}{r['edgecnn_p50_ms']:>13.4f}"
              f"{r['ratio_p50']:>8.3f}  {verdict}")
    sysinfo = system_info()
    result = {"benchmark": "bench_overhead", "target_ratio": TARGET, "rounds": args.rounds, "runs": args.runs,
              "threads": args.threads, "cpus": args.cpus, "size": args.size, "rows": rows,
              "system": {k: sysinfo[k] for k in ("cpu", "cores_logical", "machine", "os", "python", "libraries",
                                                 "timestamp", "edgecnn")}}
    write_json(args.out, result)
    print(f"\nSaved {args.out}")
    return 1 if args.strict and any(r["ratio_p50"] > TARGET for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
