"""``edgecnn demo``: the main job on the built-in digits, end to end, in a few minutes on 2 CPU cores.

train → export (fp32/fp16/int8 TFLite, fp32/int8 ONNX) with parity gates → run on the held-out images as a
folder and as a video made from them → bench every artifact → one comparison table and ``demo_report.html``
(training curves, confusion matrix, parity table, latency charts).

Every step is the same library function its command calls; the demo only wires them together.
"""

from __future__ import annotations

import html
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.registry import FORMATS, PRECISIONS
from edgecnn.console import info
from edgecnn.errors import ArtifactExistsError, DataError
from edgecnn.fileio import MB
from edgecnn.tables import KEEP, Col

#: What the demo exports: (format, precision).
#: Every file format with its unquantized, half and calibrated-int8 precisions (dynamic-range left out: the demo
#: shows the int8 a camera box runs): TFLite float32/float16/int8 and ONNX float32/int8, from the registry.
DEMO_TARGETS = [(f, p) for f, spec in FORMATS.items() if not spec.directory for p in spec.precisions
                if PRECISIONS[p].gate != "quantized" or PRECISIONS[p].calibration]
DEMO_PRESET = "digits"
VIDEO_SIDE = 64
VIDEO_FPS = 30


#: How the demo's table gives way at narrow widths (edgecnn.tables); the HTML report keeps every column.
DEMO_TERMINAL = (
    Col("Artifact", priority=KEEP), Col("Size MB", "MB", 50, right=True), Col("× fp32", "", 30, right=True),
    Col("Parity max|Δ|", "max|Δ|", 40, right=True), Col("Top-1 agree", "Top-1", 80, right=True),
    Col("Accuracy", "Acc", 85, right=True), Col("p50 ms/img", "p50 ms", 90, right=True),
    Col("p90 ms/img", "p90", 20, right=True), Col("FPS", "", 70, right=True),
    Col("Status", "", KEEP - 1, text=True, max_chars=30),
)

@dataclass
class DemoResult:
    """Where the demo's outputs are and the figures it measured."""

    root: Path
    run_dir: Path
    export_dir: Path
    report_html: Path
    bench_json: Path
    test_accuracy: float
    rows: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    folder_run: dict[str, Any] = field(default_factory=dict)
    video_run: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)


def make_video(files: list[Path], path: Path, side: int = VIDEO_SIDE, fps: int = VIDEO_FPS) -> Path:
    """Write the images as consecutive frames of an MJPG ``.avi`` (what a camera would deliver)."""
    import cv2

    from edgecnn.fileio import atomic_path
    from edgecnn.imaging import decode_image

    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (side, side))
        if not writer.isOpened():
            raise DataError(f"OpenCV cannot write video {path} (MJPG codec unavailable).")
        try:
            for f in files:
                rgb = cv2.resize(decode_image(f), (side, side), interpolation=cv2.INTER_NEAREST)
                writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path


def _csv_accuracy(csv_path: Path, truth: list[str] | None = None) -> tuple[float, int]:
    """Accuracy of the rows of a ``run --save-csv`` file.

    Args:
        csv_path: The CSV ``edgecnn run`` wrote.
        truth: Expected label of each row in frame order (a video); None: the class folder of each source file.
    """
    import csv

    with open(csv_path, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("status", "ok") == "ok"]
    rows.sort(key=lambda r: int(r["index"]))
    expected = truth if truth is not None else [Path(r["source"]).parent.name for r in rows]
    n = min(len(rows), len(expected))
    hits = sum(1 for r, t in zip(rows[:n], expected[:n]) if r["label"] == t)
    return (hits / n if n else 0.0), n


def run_demo(
    project: str | os.PathLike[str] = "runs/demo",
    epochs: int | None = None,
    bench_seconds: float = 1.0,
    exist_ok: bool = True,
) -> DemoResult:
    """Run the whole path on the built-in digits and write ``demo_report.html``.

    Args:
        project: Folder for everything the demo writes (``train/``, ``heldout/``, ``video.avi``, reports).
        epochs: Override the preset's epochs (quick smoke runs).
        bench_seconds: Minimum timed seconds per artifact in the benchmark.
        exist_ok: Re-run into an existing demo folder (previous outputs are replaced).
    """
    from edgecnn.bench.measure import BenchSettings
    from edgecnn.bench.render import write_report
    from edgecnn.bench.runner import run_bench
    from edgecnn.export import export
    from edgecnn.runs import load_split, materialize
    from edgecnn.runtime.runner import RunOptions, run
    from edgecnn.training import build_config, train

    root = Path(project)
    if root.exists() and not exist_ok:
        raise ArtifactExistsError(f"{root} exists; pass --exist-ok to replace the previous demo.")
    root.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    # 1. train ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    info("[1/5] train: built-in digits, preset 'digits'")
    overrides: dict[str, Any] = {"project": str(root), "name": "train", "exist_ok": True}
    if epochs is not None:
        overrides["epochs"] = epochs
    trained = train(build_config(preset=DEMO_PRESET, overrides=overrides))
    run_dir = trained.run_dir
    test_acc = float(trained.metrics.get("test_accuracy", 0.0))
    seconds["train"] = time.perf_counter() - t0

    # 2. export with parity gates --------------------------------------------------------------
    t0 = time.perf_counter()
    info("[2/5] export: TFLite fp32/fp16/int8 and ONNX fp32/int8, parity-checked against Keras")
    exported = export(run_dir, targets=DEMO_TARGETS, force=True)
    exported.raise_for_gates()
    export_dir = exported.out_dir
    artifacts = exported.artifacts()
    seconds["export"] = time.perf_counter() - t0

    # 3. run on the held-out images: as a folder and as a video ----------------------------------
    t0 = time.perf_counter()
    info("[3/5] run: held-out images as a folder and as a video, int8 TFLite")
    test = load_split(run_dir, "test")
    if test is None:
        raise DataError(f"The run {run_dir} has no test split to run the demo on.")
    heldout = root / "heldout"
    if heldout.exists():
        shutil.rmtree(heldout)
    materialize(test, heldout)
    from edgecnn.imaging import scan_labelled_folder

    folder_ds = scan_labelled_folder(heldout, labels=test.labels)
    int8 = artifacts["tflite-int8"]
    folder_csv = root / "run_folder.csv"
    s_folder = run(RunOptions(model=int8, source=str(heldout), save_csv=folder_csv, print_results=False, batch=16))
    folder_acc, folder_n = _csv_accuracy(folder_csv)
    video = make_video(folder_ds.files, root / "heldout.avi")
    video_csv = root / "run_video.csv"
    s_video = run(RunOptions(model=int8, source=str(video), save_csv=video_csv, print_results=False))
    video_acc, video_n = _csv_accuracy(video_csv, [folder_ds.labels[t] for t in folder_ds.targets])
    seconds["run"] = time.perf_counter() - t0

    # 4. bench every artifact ------------------------------------------------------------------
    t0 = time.perf_counter()
    info("[4/5] bench: every artifact, held-out accuracy and latency")
    report = run_bench(
        [export_dir],
        data=heldout,
        settings=BenchSettings(runs=50, min_seconds=bench_seconds, max_seconds=max(10.0, bench_seconds * 5)),
        label="demo",
    )
    bench_json = write_report(report, root / "bench_report.json")
    write_report(report, root / "bench_report.html")
    seconds["bench"] = time.perf_counter() - t0

    # 5. the comparison table and the HTML report ------------------------------------------------
    info("[5/5] report")
    parity_by_key = {f"{r.format}-{r.precision}": r for r in exported.results}
    columns = ["Artifact", "Size MB", "× fp32", "Parity max|Δ|", "Top-1 agree", "Accuracy", "p50 ms/img",
               "p90 ms/img", "FPS", "Status"]
    rows: list[dict[str, str]] = []
    for b in report.results:
        key = f"{b.format}-{b.precision}"
        p = parity_by_key.get(key)
        lat = b.latency
        rows.append({
            "Artifact": Path(b.file).name,
            "Size MB": f"{(b.size_bytes or 0) / MB:.3f}",
            "× fp32": f"{p.size_ratio:.2f}" if p and p.size_ratio else "",
            "Parity max|Δ|": f"{p.max_abs:.2e}" if p else "",
            "Top-1 agree": f"{p.agreement * 100:.1f}%" if p else "",
            "Accuracy": f"{b.accuracy * 100:.2f}%" if b.accuracy is not None else "",
            "p50 ms/img": f"{lat.p50_ms / max(1, b.batch):.3f}" if lat else "",
            "p90 ms/img": f"{lat.p90_ms / max(1, b.batch):.3f}" if lat else "",
            "FPS": f"{b.images_per_s:.0f}" if b.images_per_s else "",
            "Status": ("ok" if (p is None or p.passed) else "PARITY FAIL") if b.ok else f"error: {b.error}",
        })
    result = DemoResult(
        root=root, run_dir=run_dir, export_dir=export_dir, report_html=root / "demo_report.html",
        bench_json=bench_json, test_accuracy=test_acc, rows=rows, columns=columns,
        folder_run={"images": folder_n, "accuracy": folder_acc, "throughput": s_folder.throughput,
                    "speed": s_folder.speed_line(), "skipped": len(s_folder.skipped)},
        video_run={"frames": video_n, "accuracy": video_acc, "throughput": s_video.throughput,
                   "speed": s_video.speed_line()},
        seconds=seconds, commands=list(exported.commands),
    )
    _write_html(result, trained.metrics, exported, report)
    return result


def _png_tag(path: Path, alt: str) -> str:
    import base64

    if not path.exists():
        return f"<p>({html.escape(path.name)} was not produced)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _write_html(result: DemoResult, metrics: dict[str, Any], exported: Any, report: Any) -> Path:
    from edgecnn.bench.render import latency_charts
    from edgecnn.fileio import write_text
    from edgecnn.parity import COLUMNS, table_rows
    from edgecnn.reports import have_matplotlib, html_page, html_table, img_tag, system_rows

    run = result.run_dir
    summary = (
        f"<p>Test accuracy after training: <b>{result.test_accuracy * 100:.2f}%</b> "
        f"(val {float(metrics.get('val_accuracy', 0)) * 100:.2f}%). Run folder: <code>{html.escape(str(run))}</code>.</p>"
        f"<p><code>edgecnn run</code> on the held-out folder ({result.folder_run['images']} images, int8 TFLite): "
        f"accuracy <b>{result.folder_run['accuracy'] * 100:.2f}%</b>, {result.folder_run['throughput']:.0f} images/s. "
        f"{html.escape(result.folder_run['speed'])}</p>"
        f"<p>Same images as a {VIDEO_FPS} FPS MJPG video ({result.video_run['frames']} frames): accuracy "
        f"<b>{result.video_run['accuracy'] * 100:.2f}%</b>. {html.escape(result.video_run['speed'])}</p>"
        "<p>Step times: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()) + "</p>"
    )
    parity_rows = table_rows(exported.results)
    charts = ""
    if have_matplotlib():
        charts = "".join(img_tag(png, "latency chart") for png in latency_charts(report.results))
    sections = [
        ("Summary", summary),
        ("Comparison", html_table(result.rows, result.columns)),
        ("Training curves", _png_tag(run / "curves.png", "training curves")),
        ("Confusion matrix (test split)", _png_tag(run / "confusion_matrix.png", "confusion matrix")),
        ("Parity against the Keras model", html_table(parity_rows, COLUMNS)),
        ("Latency", charts or "<p>(matplotlib is not installed: no charts)</p>"),
        ("System", html_table(system_rows(report.system), ["Fact", "Value"])),
    ]
    return write_text(result.report_html, html_page("edgecnn demo: built-in digits", sections,
                                                    subtitle="train → export → parity → run → bench"))
