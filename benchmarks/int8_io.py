"""Which I/O dtype for a full-int8 TFLite model: uint8 (the default), int8 or float32?

Builds a 96x96x3 three-block CNN (random weights: latency does not depend on them) and converts it three times
with ``converters.convert(..., "int8", io_dtype=...)`` in a *child* process (TensorFlow stays out of the timing
process), on the same calibration images. Then, interleaved (rounds in rotating order, so drift hits all
sides), it times what ``edgecnn run`` does per frame: ``backend.predict(uint8 frame)``, i.e. the host-side
conversion into the input tensor (none for uint8: scale 1, zero point 0; ``x ^ 0x80`` for int8; a float cast for
float32), the invoke (float32 I/O adds QUANTIZE/DEQUANTIZE ops inside the graph) and the dequantized output.
It also checks the three agree on every top-1 over random frames. (Which ones MediaPipe Tasks accepts, uint8 or
float32 input but never int8, is its source's rule and is exercised in tests/mediapipe.)

    .venv/bin/python benchmarks/int8_io.py [--rounds 8] [--runs 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
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
IO_DTYPES = ("uint8", "int8", "float32")


def build(out: Path) -> None:
    """Write model-<io>.tflite for each I/O dtype into ``out`` (child process: imports TensorFlow)."""
    import keras

    import converters
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    calib = np.random.default_rng(0).integers(0, 256, (64, SIZE, SIZE, 3)).astype(np.uint8)
    card = ModelCard(labels=["a", "b", "c"], input=InputSpec(SIZE, SIZE, 3), output=OutputSpec(units=3), name="io")
    for io in IO_DTYPES:
        converters.convert(model, "tflite", "int8", out / f"model-{io}.tflite", calibration=calib,
                           metadata=card.to_dict(), options=converters.ConvertOptions(io_dtype=io))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.build)
        return

    from edgecnn.runtime.backends import load_backend

    with tempfile.TemporaryDirectory(prefix="edgecnn-int8io-") as tmp:
        out = Path(tmp)
        subprocess.run([sys.executable, __file__, "--build", str(out)], check=True, capture_output=True)
        backends = {io: load_backend(out / f"model-{io}.tflite", threads=args.threads) for io in IO_DTYPES}
        frames = np.random.default_rng(1).integers(0, 256, (args.runs, SIZE, SIZE, 3)).astype(np.uint8)
        tops = {io: np.concatenate([b.predict(f[None]) for f in frames[:100]]).argmax(1) for io, b in backends.items()}
        for b in backends.values():  # warm-up
            for f in frames[:20]:
                b.predict(f[None])
        times: dict[str, list[float]] = {io: [] for io in IO_DTYPES}
        order = list(IO_DTYPES)
        for r in range(args.rounds):
            for io in order[r % 3:] + order[: r % 3]:
                b = backends[io]
                for f in frames:
                    t0 = time.perf_counter_ns()
                    b.predict(f[None])
                    times[io].append((time.perf_counter_ns() - t0) / 1e6)
        rows = {}
        base = float(np.median(times["uint8"]))
        for io in IO_DTYPES:
            t = np.asarray(times[io])
            b = backends[io]
            rows[io] = {"input": f"{b.input.dtype.name} scale={b.input.quantization.scale if b.input.quantization else None} "
                                 f"zp={b.input.quantization.zero_point if b.input.quantization else None}",
                        "p50_ms": round(float(np.median(t)), 4), "mean_ms": round(float(t.mean()), 4),
                        "p90_ms": round(float(np.percentile(t, 90)), 4), "ratio_vs_uint8": round(float(np.median(t)) / base, 3),
                        "top1_agreement_vs_uint8": float((tops[io] == tops["uint8"]).mean())}
        result = {"model": f"3-block CNN {SIZE}x{SIZE}x3, full int8", "threads": args.threads, "rounds": args.rounds,
                  "runs_per_round": args.runs, "load": os.getloadavg()[0], "rows": rows}
        for io, row in rows.items():
            print(f"{io:8s} p50 {row['p50_ms']:.3f} ms  x{row['ratio_vs_uint8']:.3f} vs uint8  "
                  f"top-1 agreement {row['top1_agreement_vs_uint8']:.0%}")
        (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
        (ROOT / "benchmarks" / "results" / "int8_io.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
