"""Does every backbone keep its accuracy through every export? Each Keras Applications backbone (and ``simple`` as
the baseline) is trained from scratch by ``edgecnn.train`` on a synthetic folder it can learn, then ``edgecnn
export`` writes TFLite float32/float16/dynamic/int8, ONNX float32/int8 and (``--qat-epochs``) the QAT full-int8
TFLite, runs each in its real runtime on the held-out split and gates it. The table gives, per backbone, the float
accuracy, each artifact's held-out accuracy and top-1 agreement with the Keras model, whether it passed its gate,
the layers post-training int8 kept in float (the self-repair), and the QAT artifact's float tensors.

No ImageNet weights are needed or used: the point is the trip, not pretraining (``benchmarks/backbones.py`` covers
pretraining and speed). Figures are from one seed on a small synthetic task; the load average is printed.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/backbone_gates.py [--size 40] [--classes 3] [--per-class 100] [--epochs 25]
        [--qat-epochs 3] [--archs simple,mobilenet-v3-small,...] [--out benchmarks/results/backbone_gates.json]
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

ARCHS = "simple,mobilenet-v3-small,mobilenet-v3-large,mobilenet-v2,efficientnet-b0"
SHORT = {"model-float32.tflite": "tfl fp32", "model-float16.tflite": "tfl fp16", "model-dynamic.tflite": "tfl dyn",
         "model-int8.tflite": "tfl int8", "model-qat-int8.tflite": "tfl QAT int8", "model-float32.onnx": "onnx fp32",
         "model-int8.onnx": "onnx int8"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default=ARCHS)
    ap.add_argument("--size", type=int, default=40)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/backbone_gates.json")
    args = ap.parse_args()

    import edgecnn
    from converters.to_tflite import float_tensors
    from edgecnn.export import export
    from edgecnn.synthetic import write_dataset

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-backbone-gates-") as tmp:
        work = Path(tmp)
        data = write_dataset(work / "data", classes=args.classes, per_class=args.per_class, size=args.size, seed=args.seed,
                             vary_size=True)
        for arch in args.archs.split(","):
            t0 = time.perf_counter()
            run = edgecnn.train(data=str(data), img_size=str(args.size), arch=arch, epochs=args.epochs, batch=16,
                                test_split=0.25, seed=args.seed, project=str(work / "runs"), name=arch, plots=False,
                                quiet=True)
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            reports = [export(run.run_dir, formats=["tflite"], quantize=["none", "float16", "dynamic", "int8"],
                              out=work / arch / "tflite", qat_epochs=args.qat_epochs),
                       export(run.run_dir, formats=["onnx"], quantize=["none", "int8"], out=work / arch / "onnx")]
            export_s = time.perf_counter() - t0
            row = {"float_accuracy": run.metrics["test"]["accuracy"], "test_images": run.metrics["test"]["num_images"],
                   "epochs_run": len(run.history), "train_s": round(train_s, 1),
                   "export_s": round(export_s, 1), "artifacts": {}}
            for report in reports:
                for r in report.results:
                    entry = {"accuracy": r.accuracy, "agreement": r.agreement, "max_abs": r.max_abs,
                             "passed": r.passed, "failures": r.failures, "size_bytes": r.size_bytes,
                             "float_layers": list((r.repair or {}).get("float_layers") or [])}
                    if r.consumers:
                        entry["consumers_passed"] = r.consumers.get("passed")
                    path = Path(r.path)
                    if r.artifact == "model-qat-int8.tflite" and path.is_file():
                        entry["float_tensors"] = len(float_tensors(path.read_bytes()))
                    row["artifacts"][r.artifact] = entry
            rows[arch] = row
            print(f"{arch}: float {row['float_accuracy']:.3f} on {row['test_images']} held-out images; trained in "
                  f"{train_s:.0f} s, exported in {export_s:.0f} s; "
                  + ", ".join(f"{SHORT.get(k, k)} {v['accuracy']:.3f}{'' if v['passed'] else ' FAIL'}"
                              for k, v in row["artifacts"].items()), flush=True)
    load = os.getloadavg()
    doc = {"size": args.size, "classes": args.classes, "per_class": args.per_class, "epochs": args.epochs,
           "qat_epochs": args.qat_epochs, "seed": args.seed, "weights": "none (trained from scratch)",
           "loadavg": load, "rows": rows}
    cols = [k for k in SHORT if any(k in r["artifacts"] for r in rows.values())]
    print(f"\n{'arch':20} {'float':>6} " + " ".join(f"{SHORT[c]:>12}" for c in cols) + "  int8 float layers")
    for arch, r in rows.items():
        cells = []
        for c in cols:
            a = r["artifacts"].get(c)
            text = "-" if a is None else f"{a['accuracy']:.3f}" + ("" if a["passed"] else "!")
            cells.append(f"{text:>12}")
        fl = r["artifacts"].get("model-int8.tflite", {}).get("float_layers") or []
        print(f"{arch:20} {r['float_accuracy']:>6.3f} " + " ".join(cells) + f"  {len(fl)}")
    print(f"(accuracy on the held-out split; '!' = failed its gate) load average {load}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
