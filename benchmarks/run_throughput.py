"""Throughput of ``edgecnn run`` on a folder vs a naive one-at-a-time loop, and a live 30 FPS pipeline.

Same run, same int8 TFLite model, same interpreter threads, interleaved rounds (ARCHITECTURE.md,
"How performance is measured here"). TensorFlow is imported only to train and export the model;
the measured parts use the TF-free runtime.

1. Folder of N >= 2,000 PNG images (64x64 model input, images 96x96):
   * naive: for each file, PIL open -> convert RGB -> resize -> quantize -> set_tensor/invoke/get_tensor;
   * edgecnn: ``edgecnn.runtime.runner.run`` (decode workers, overlapped stages, --batch).
   Target: edgecnn >= 1.5x naive images/s.
2. Live: ``synthetic:30`` source (frames produced at 30 FPS on a capture thread) for a few seconds.
   Target: delivered FPS >= 0.95 x min(30, model capacity); frame-to-result latency p50 reported.

Usage: python benchmarks/run_throughput.py [--images 2000] [--rounds 3] [--threads 2]
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 64
CLASSES = ["circle", "square", "stripes"]


def given_or_made_model(model: Path | None, work: Path, channels: int = 3) -> Path:
    """The int8 .tflite a whole-process benchmark runs: ``--model`` if given, else trained and exported into ``work``."""
    if model is not None:
        return model.resolve()
    print(f"training and exporting the int8 {'RGB' if channels == 3 else 'grayscale'} model (TensorFlow, not timed) ...",
          flush=True)
    return make_model(work / ("rgb" if channels == 3 else "gray"), channels)


def make_model(work: Path, channels: int = 3) -> Path:
    """Train a small 3-block CNN at 64x64 (RGB, or grayscale with ``channels=1``) and export int8 TFLite
    (TensorFlow used only here)."""
    import keras
    import numpy as np

    from edgecnn.export import export
    from edgecnn.imaging import load_image, scan_labelled_folder
    from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing, write_labels_txt
    from edgecnn.synthetic import write_dataset

    color = "rgb" if channels == 3 else "grayscale"
    data = write_dataset(work / "train", classes=CLASSES, per_class=60, size=SIZE)
    ds = scan_labelled_folder(data)
    x = np.stack([load_image(f, SIZE, SIZE, color) for f in ds.files]).astype("float32")
    y = np.asarray(ds.targets)
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, channels))
    h = keras.layers.Rescaling(1 / 255)(inp)
    for f in (16, 32, 64):
        h = keras.layers.Conv2D(f, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(len(CLASSES), activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    run = work / "run"
    run.mkdir()
    model.save(run / "model.keras")
    ModelCard(labels=ds.labels, input=InputSpec(SIZE, SIZE, channels), output=OutputSpec("softmax", units=len(CLASSES)),
              preprocessing=Preprocessing(color, "area"), name="bench").save(run / "modelcard.json")
    write_labels_txt(run / "labels.txt", ds.labels)
    rel = [[str(f.relative_to(data)), int(t)] for f, t in zip(ds.files, ds.targets)]
    (run / "splits.json").write_text(json.dumps({"root": str(data), "labels": ds.labels, "train": rel, "val": rel[:30],
                                                 "test": rel[:30], "test_root": None}))
    report = export(run, formats=["tflite"], quantize=["int8"], out=work / "export", check=False)
    return report.artifacts()["tflite-int8"]


def naive_loop(model: Path, files: list[Path], threads: int) -> float:
    """images/s of the textbook loop: open, convert, resize, invoke, one image at a time."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    it = Interpreter(model_path=str(model), num_threads=threads)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    scale, zp = inp["quantization"]
    t0 = time.perf_counter()
    for f in files:
        img = Image.open(f).convert("RGB").resize((SIZE, SIZE))
        x = np.asarray(img, dtype=np.float32)[None]
        if inp["dtype"] != np.float32:
            x = np.clip(np.round(x / scale + zp), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max)
        it.set_tensor(inp["index"], x.astype(inp["dtype"]))
        it.invoke()
        it.get_tensor(out["index"]).argmax()
    return len(files) / (time.perf_counter() - t0)


def edgecnn_run(model: Path, folder: Path, threads: int, batch: int) -> tuple[float, object]:
    from edgecnn.console import set_quiet
    from edgecnn.runtime.runner import RunOptions, run

    set_quiet(True)
    t0 = time.perf_counter()
    s = run(RunOptions(model=model, source=str(folder), threads=threads, batch=batch, print_results=False))
    return s.count / (time.perf_counter() - t0), s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--live-seconds", type=float, default=6.0)
    args = ap.parse_args()
    from edgecnn.imaging import list_images
    from edgecnn.synthetic import write_dataset

    with tempfile.TemporaryDirectory(prefix="edgecnn-runbench-") as tmp:
        work = Path(tmp)
        print("training and exporting the int8 model (TensorFlow, not timed) ...", flush=True)
        model = make_model(work)
        folder = write_dataset(work / "folder", classes=CLASSES, per_class=-(-args.images // len(CLASSES)), size=96)
        files = list_images(folder)
        print(f"model {model.name}, folder of {len(files)} images, threads={args.threads}, cores={os.cpu_count()}")
        naive_ips, edge_ips = [], []
        edgecnn_run(model, folder, args.threads, args.batch)  # warm-up (file cache, interpreter)
        for r in range(args.rounds):
            naive_ips.append(naive_loop(model, files, args.threads))
            ips, summary = edgecnn_run(model, folder, args.threads, args.batch)
            edge_ips.append(ips)
            assert summary.count == len(files) and not summary.skipped
            print(f"  round {r + 1}: naive {naive_ips[-1]:7.1f} img/s   edgecnn run {edge_ips[-1]:7.1f} img/s", flush=True)
        n_med, e_med = statistics.median(naive_ips), statistics.median(edge_ips)
        ratio = e_med / n_med
        print(f"Folder: edgecnn run {e_med:.1f} img/s vs naive {n_med:.1f} img/s (median of {args.rounds}): "
              f"{ratio:.2f}x (target >= 1.5x) {'PASS' if ratio >= 1.5 else 'FAIL'}")
        print(f"  {summary.speed_line()}")

        import numpy as np

        from edgecnn.console import set_quiet
        from edgecnn.runtime.backends import load_backend
        from edgecnn.runtime.runner import RunOptions, run

        with load_backend(model, threads=args.threads) as be:
            x = be.prepare(np.zeros((1, SIZE, SIZE, 3), np.uint8))
            for _ in range(20):
                be.infer(x)
            t = []
            for _ in range(200):
                t0 = time.perf_counter()
                be.infer(x)
                t.append(time.perf_counter() - t0)
        capacity = 1.0 / (statistics.median(t) + 1e-3 * 0.3)  # inference + ~0.3 ms resize per frame
        set_quiet(True)
        live = run(RunOptions(model=model, source="synthetic:30:640x480", threads=args.threads,
                              duration=args.live_seconds))
        delivered = live.count / live.elapsed_s
        target = 0.95 * min(30.0, capacity)
        print(f"Live (synthetic 30 FPS, 640x480, {args.live_seconds:.0f}s): delivered {delivered:.1f} FPS "
              f"(target >= {target:.1f}; model capacity ~{capacity:.0f} FPS) "
              f"{'PASS' if delivered >= target else 'FAIL'}; frame-to-result latency p50 {live.latency_p50_ms:.1f} ms, "
              f"p90 {live.latency_p90_ms:.1f} ms; dropped {live.dropped}")
        ok = ratio >= 1.5 and delivered >= target
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
