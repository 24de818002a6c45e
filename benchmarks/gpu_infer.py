"""GPU serving: edgecnn's ONNX backend on onnxruntime-gpu's CUDA provider (TensorRT when present) vs the CPU provider.

Same model, same inputs, same process, interleaved rounds: p50 latency at batch 1 and 32 for the CPU session and
the GPU session, the ratio, which provider ran each node of the GPU session (ONNX Runtime's profiler), and the
agreement of the GPU outputs with the CPU outputs (max |diff| of the probabilities, top-1 agreement).

Without ``--model`` it trains a small model on generated data and exports it with a dynamic batch (needs
edgecnn[train]); on a GPU server without TensorFlow pass ``--model model.onnx`` exported elsewhere with
``edgecnn export RUN --format onnx --dynamic-batch``.

On a host without a CUDA provider (no onnxruntime-gpu, or no GPU) it says so, prints the CPU figures and exits 0.

Usage: python benchmarks/gpu_infer.py [--model model.onnx] [--rounds 5] [--runs 50]
Results: benchmarks/results/gpu_infer.json (the latest run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
BATCHES = (1, 32)


def make_model(tmp: Path) -> Path:
    """A small trained model exported to ONNX with a dynamic batch (TensorFlow side)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from edgecnn.export import export
    from edgecnn.synthetic import write_dataset
    from edgecnn.training import build_config, train

    data = write_dataset(tmp / "data", classes=4, per_class=40, size=64, seed=0)
    cfg = build_config(overrides=dict(data=str(data), img_size="64", arch="blocks", epochs=3, batch=32,
                                      project=str(tmp / "runs"), name="gpu-infer", plots=False, quiet=True))
    run = train(cfg).run_dir
    report = export(run, formats=["onnx"], quantize=["none"], dynamic_batch=True, out=tmp / "export")
    return report.artifacts()["onnx-float32"]


def p50(backend, x: np.ndarray, runs: int) -> float:
    prepared = backend.prepare(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        backend.infer(prepared)
        times.append((time.perf_counter_ns() - t) / 1e6)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help=".onnx with a dynamic batch (default: train + export one)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=50, help="timed inferences per round and batch")
    args = ap.parse_args()

    import onnxruntime as ort

    from edgecnn.runtime.backends import ONNXBackend, describe_placement

    available = ort.get_available_providers()
    gpu_providers = [p for p in GPU_PROVIDERS if p in available]
    print(f"onnxruntime {ort.__version__}, available providers: {available}")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or make_model(Path(tmp))
        cpu = ONNXBackend(model, providers=["CPUExecutionProvider"])
        gpu = ONNXBackend(model, providers=[*gpu_providers, "CPUExecutionProvider"]) if gpu_providers else None
        if gpu is not None and gpu.provider == "CPUExecutionProvider":
            print("The GPU providers could not start (see the warning above): CPU figures only.")
            gpu = None
        h, w, c = cpu.card.input_shape
        rng = np.random.default_rng(0)
        inputs = {b: rng.integers(0, 256, (b, h, w, c), dtype=np.uint8) for b in BATCHES}
        if cpu.max_batch is not None and cpu.max_batch < max(BATCHES):
            print(f"{model.name} has a fixed batch of {cpu.max_batch}: export it with --dynamic-batch.")
            return 1
        for be in filter(None, (cpu, gpu)):  # untimed warm-up; the GPU session's first run learns its placement
            for b in BATCHES:
                be.predict(inputs[b])
        figures: dict[str, dict[int, list[float]]] = {"cpu": {b: [] for b in BATCHES}, "gpu": {b: [] for b in BATCHES}}
        for r in range(args.rounds):
            order = [("cpu", cpu), ("gpu", gpu)] if r % 2 == 0 else [("gpu", gpu), ("cpu", cpu)]
            for who, be in order:
                if be is None:
                    continue
                for b in BATCHES:
                    figures[who][b].append(p50(be, inputs[b], args.runs))
        result: dict = {"model": str(model.name), "onnxruntime": ort.__version__, "available": available,
                        "cpu_provider": cpu.provider, "gpu_provider": gpu.provider if gpu else None,
                        "gpu_node_providers": gpu.info()["node_providers"] if gpu else None, "p50_ms": {}}
        print(f"\nmodel {model.name} {h}x{w}x{c}; p50 ms (median of {args.rounds} interleaved rounds × {args.runs} runs)")
        print(f"{'batch':>5} {'CPU p50':>10} {'GPU p50':>10} {'CPU/GPU':>8}")
        for b in BATCHES:
            c_ms = statistics.median(figures["cpu"][b])
            g_ms = statistics.median(figures["gpu"][b]) if gpu else None
            result["p50_ms"][b] = {"cpu": round(c_ms, 4), "gpu": round(g_ms, 4) if g_ms else None}
            print(f"{b:>5} {c_ms:10.3f} {g_ms if g_ms is not None else float('nan'):10.3f} "
                  f"{(c_ms / g_ms) if g_ms else float('nan'):8.2f}")
        if gpu is not None:
            x = inputs[32]
            p_cpu, p_gpu = cpu.predict(x), gpu.predict(x)
            diff = float(np.abs(p_cpu - p_gpu).max())
            agree = float((p_cpu.argmax(1) == p_gpu.argmax(1)).mean())
            result.update(max_abs_diff=diff, top1_agreement=agree)
            print(f"GPU session: {gpu.provider}; ONNX Runtime ran {describe_placement(gpu.info()['node_providers'])}")
            print(f"agreement with CPU outputs at batch 32: max |diff| {diff:.2e}, top-1 agreement {agree:.4f}")
        else:
            print("No CUDA/TensorRT provider here (onnxruntime-gpu not installed, or no GPU): the CPU figures above "
                  "are the whole result. On a GPU server: pip install 'edgecnn[gpu]' and run this script again.")
        results = ROOT / "benchmarks" / "results"
        results.mkdir(parents=True, exist_ok=True)
        (results / "gpu_infer.json").write_text(json.dumps(result, indent=2))
        cpu.close()
        if gpu is not None:
            gpu.close()
    if gpu is not None and not (result["top1_agreement"] >= 0.99 and result["max_abs_diff"] <= 1e-3):
        print("GPU outputs disagree with the CPU outputs beyond fp32 noise.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
