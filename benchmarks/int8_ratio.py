"""int8 that pays: int8/float32 p50 latency ratios for TFLite and ONNX, with the accuracy each int8 artifact keeps.

Trains two models on generated learnable images (``edgecnn.synthetic`` patterns): the 64 px ``simple`` CNN and a
96 px three-block ``blocks`` CNN. Exports each with the converters (the same code ``edgecnn export`` runs) to
TFLite fp32/int8 and ONNX fp32/int8, plus the v0.1 int8 settings as a baseline measured in the same run
(TFLite int8 stem; ONNX without the folded rescale and with int8 activations). Every artifact is loaded through
edgecnn's runtime backends; latency is measured interleaved (round-robin over artifacts, several rounds, every other round reversed, untimed
warm-up), per thread setting; the int8/fp32 ratio is the median over rounds of the per-round p50 ratio (robust to
load that comes and goes on a shared machine), printed with the raw p50/p90 figures. Accuracy is
top-1 on held-out generated images; the drop is float32 Keras minus the artifact, in points.

Targets (issue 12): TFLite int8/fp32 p50 ≤ 0.35 and ONNX ≤ 0.60 on both models, accuracy drop ≤ 0.5 points.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/int8_ratio.py [--rounds 15] [--iters 30] [--threads 1,default]
        [--out benchmarks/results/int8_ratio.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

TFLITE_TARGET = 0.35
ONNX_TARGET = 0.60
DROP_TARGET = 0.5  # points

MODELS = {  # name: (arch, size, knobs, epochs)
    "simple64": ("simple", 64, {}, 6),
    "blocks96": ("blocks", 96, {"depth": 3}, 10),
}


def make_data(size: int, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from edgecnn.synthetic import PATTERNS, pattern_image

    rng = np.random.default_rng(seed)
    classes = PATTERNS[:6]
    x = np.stack([pattern_image(k, size, rng) for k in classes for _ in range(per_class)])
    y = np.repeat(np.arange(len(classes)), per_class)
    order = rng.permutation(len(y))
    return x[order], y[order]


def train(arch: str, size: int, knobs: dict, epochs: int, x: np.ndarray, y: np.ndarray):
    import keras

    from edgecnn.training.architectures import ArchKnobs, build_model

    keras.utils.set_random_seed(0)
    model = build_model(arch, (size, size, 3), int(y.max()) + 1, knobs=ArchKnobs(**knobs))
    for layer in model.layers:  # a few hundred steps only: let BatchNorm's moving statistics catch up
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype("float32"), y, epochs=epochs, batch_size=32, verbose=0)
    return model


def export_all(model, calib: np.ndarray, labels: list[str], out: Path) -> dict[str, Path]:
    """fp32/int8 for TFLite and ONNX with the shipped settings, plus the v0.1 int8 settings as baseline."""
    import converters
    from converters import to_onnx, to_tflite
    from converters.metadata import complete_card, embed_onnx, embed_tflite
    from converters.to_tflite import tensor_details

    size = int(model.inputs[0].shape[1])
    card = {"labels": labels, "input": {"height": size, "width": size, "channels": 3},
            "output": {"activation": "softmax", "units": len(labels)}, "preprocessing": {"color": "rgb"}}
    paths = {}
    for fmt, prec in (("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"), ("onnx", "int8")):
        p = out / f"{fmt}-{prec}"
        paths[f"{fmt}-{prec}"] = converters.convert(model, fmt, prec, p.with_suffix(f".{fmt}"), calibration=calib,
                                                    metadata=card, labels=labels).path
    # v0.1 baselines: full-int8 TFLite (stem quantized too) ...
    flat = to_tflite.convert(model, "int8", calib.astype(np.float32), "int8")
    ins, outs = tensor_details(flat)
    p = out / "tflite-int8-v01.tflite"
    p.write_bytes(embed_tflite(flat, complete_card(card, ins, outs, {"format": "tflite", "precision": "int8"}), labels))
    paths["tflite-int8-v01"] = p
    # ... and ONNX QDQ with int8 activations and the Rescaling Mul left in the graph
    proto = _onnx_v01(to_onnx.to_onnx(model), calib.astype(np.float32))
    ins, outs = to_onnx.tensor_details(proto)
    embed_onnx(proto, complete_card(card, ins, outs, {"format": "onnx", "precision": "int8"}), labels)
    p = out / "onnx-int8-v01.onnx"
    p.write_bytes(proto.SerializeToString())
    paths["onnx-int8-v01"] = p
    return paths


def _onnx_v01(proto, calib: np.ndarray):
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from converters.int8 import _reader

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = Path(tmp) / "a.onnx", Path(tmp) / "b.onnx", Path(tmp) / "c.onnx"
        onnx.save(proto, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), _reader(proto, calib), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        return onnx.load(dst)


def measure(paths: dict[str, Path], threads: int | None, rounds: int, iters: int, x_test: np.ndarray,
            y_test: np.ndarray) -> dict[str, dict]:
    """p50/p90/mean per artifact, interleaved round-robin in this process; top-1 accuracy on x_test."""
    from edgecnn.runtime.backends import load_backend

    backends = {k: load_backend(p, threads=threads) for k, p in paths.items()}
    inputs = {k: b.prepare(x_test[:1]) for k, b in backends.items()}
    for k, b in backends.items():  # untimed warm-up
        for _ in range(30):
            b.infer(inputs[k])
    times: dict[str, list[float]] = {k: [] for k in backends}
    per_round: dict[str, list[float]] = {k: [] for k in backends}
    order = list(backends)
    for i in range(rounds):  # round-robin; every other round in reverse so no artifact always follows another
        for k in order if i % 2 == 0 else order[::-1]:
            b, x, run = backends[k], inputs[k], []
            for _ in range(iters):
                t0 = time.perf_counter()
                b.infer(x)
                run.append(time.perf_counter() - t0)
            times[k] += run
            per_round[k].append(float(np.median(run)) * 1e3)
    out = {}
    for k, b in backends.items():
        t = np.asarray(times[k]) * 1e3
        acc = float(np.mean(b.predict(x_test).argmax(1) == y_test))
        out[k] = {"p50_ms": round(float(np.median(t)), 4), "p90_ms": round(float(np.percentile(t, 90)), 4),
                  "mean_ms": round(float(t.mean()), 4), "samples": len(t), "accuracy": round(acc, 4),
                  "size_bytes": paths[k].stat().st_size, "runtime": b.info(),
                  "round_p50_ms": [round(v, 4) for v in per_round[k]]}
        b.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--threads", default="1,default", help="comma list; 'default' = the runtime's own choice")
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "int8_ratio.json"))
    args = ap.parse_args()
    threads = [None if t == "default" else int(t) for t in args.threads.split(",")]

    from edgecnn.sysinfo import system_info

    report: dict = {"benchmark": "int8_ratio", "system": system_info(), "load_before": os.getloadavg(),
                    "settings": vars(args), "targets": {"tflite": TFLITE_TARGET, "onnx": ONNX_TARGET,
                                                        "drop_points": DROP_TARGET}, "models": {}}
    ok = True
    with tempfile.TemporaryDirectory(prefix="int8-ratio-") as tmp:
        for name, (arch, size, knobs, epochs) in MODELS.items():
            x, y = make_data(size, args.per_class, seed=1)
            n_test = len(y) // 4
            x_te, y_te, x_tr, y_tr = x[:n_test], y[:n_test], x[n_test:], y[n_test:]
            model = train(arch, size, knobs, epochs, x_tr, y_tr)
            keras_acc = float(np.mean(np.asarray(model.predict(x_te.astype("float32"), verbose=0)).argmax(1) == y_te))
            out = Path(tmp) / name
            out.mkdir()
            paths = export_all(model, x_tr[:300], [f"c{i}" for i in range(6)], out)
            entry: dict = {"arch": arch, "size": size, "knobs": knobs, "epochs": epochs, "keras_accuracy": keras_acc,
                           "test_images": int(n_test), "threads": {}}
            for th in threads:
                figs = measure(paths, th, args.rounds, args.iters, x_te, y_te)
                ratios = {}  # median over rounds of the per-round p50 ratio: robust to load that shifts between rounds
                for fmt in ("tflite", "onnx"):
                    for variant in ("int8", "int8-v01"):
                        q, f = figs[f"{fmt}-{variant}"]["round_p50_ms"], figs[f"{fmt}-float32"]["round_p50_ms"]
                        ratios[f"{fmt}-{variant}"] = round(float(np.median(np.asarray(q) / np.asarray(f))), 4)
                entry["threads"]["default" if th is None else str(th)] = {"artifacts": figs, "ratios": ratios}
                label = "default" if th is None else th
                print(f"\n{name} ({arch} {size}px, Keras accuracy {keras_acc:.3f}), threads={label}")
                print(f"  {'artifact':18s} {'p50 ms':>8s} {'p90 ms':>8s} {'ratio':>7s} {'acc':>6s} {'drop pts':>8s} {'size':>9s}")
                for k, f in figs.items():
                    fmt = k.split("-")[0]
                    ratio = ratios.get(k, 1.0)
                    drop = (keras_acc - f["accuracy"]) * 100
                    print(f"  {k:18s} {f['p50_ms']:8.3f} {f['p90_ms']:8.3f} {ratio:7.3f} {f['accuracy']:6.3f} "
                          f"{drop:8.2f} {f['size_bytes']:9d}")
                for fmt, target in (("tflite", TFLITE_TARGET), ("onnx", ONNX_TARGET)):
                    r = ratios[f"{fmt}-int8"]
                    drop = (keras_acc - figs[f"{fmt}-int8"]["accuracy"]) * 100
                    good = r <= target and drop <= DROP_TARGET
                    ok &= good
                    print(f"  {fmt} int8/fp32 p50 = {r:.3f} (target ≤ {target}; v0.1 settings {ratios[f'{fmt}-int8-v01']:.3f}),"
                          f" accuracy drop {drop:.2f} pts (≤ {DROP_TARGET}) -> {'PASS' if good else 'FAIL'}")
            report["models"][name] = entry
    report["load_after"] = os.getloadavg()
    report["passed"] = ok
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp_out = Path(args.out).with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    tmp_out.replace(args.out)
    print(f"\nload average before/after: {report['load_before']} / {report['load_after']}; wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
