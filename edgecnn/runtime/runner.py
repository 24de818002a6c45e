"""``edgecnn run`` as a library function: load a model, open a source, run the pipeline, write the sinks.

>>> from edgecnn.runtime.runner import RunOptions, run
>>> summary = run(RunOptions(model="model_int8.tflite", source="images/", save_csv="preds.csv"))
>>> print(summary.speed_line())

The terminal reporter (per-result lines, progress bar, live status) is :mod:`edgecnn.runtime.reporter`.

Size (~420 lines): option resolution (profile, device, flags) and the run loop with its sinks; the reporter
already lives apart.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.console import info, warn
from edgecnn.fileio import fault_point
from edgecnn.runtime.backends import Backend, describe_placement, load_backend
from edgecnn.runtime.options import (  # noqa: F401  (re-exported: they lived here)
    DECODING_KINDS,
    RunOptions,
    check_run_outputs,
    conventions_of,
    decodes_on_threads,
    validate_options,
)
from edgecnn.runtime.pipeline import Pipeline, Result
from edgecnn.runtime.reporter import Reporter, fmt_ms
from edgecnn.runtime.resolve import apply_deploy_profile, apply_device, resolve_options  # noqa: F401  (re-exported)
from edgecnn.runtime.sinks import ImageSaver, ParquetWriter, RowWriter, VideoSaver, Window, display_available
from edgecnn.runtime.sources import Frame, ImageFilesSource, Source, VideoFileSource, open_source


@dataclass
class RunSummary:
    """What a run did: counts, timings, skips, where results went and why it stopped."""

    model: str
    source: str
    backend_info: dict[str, Any]
    count: int = 0
    ok: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0
    reconnects: int = 0
    elapsed_s: float = 0.0
    pre_ms: float = 0.0
    infer_ms: float = 0.0
    post_ms: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p90_ms: float = 0.0
    latency_p99_ms: float = 0.0
    #: ``""`` when the percentiles cover every result, else ``" of the last N"`` (a live source's bounded window)
    latency_scope: str = ""
    input_shape: tuple[int, ...] = ()
    stopped_by: str = "end"
    class_counts: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    init_ms: float = 0.0

    @property
    def throughput(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def nothing_readable(self) -> bool:
        """Every input failed to decode (or none came): the run produced no classification."""
        return self.ok == 0 and self.stopped_by == "end"

    def failure(self) -> str | None:
        """Why the run failed although it ended normally (nothing readable), else None."""
        if not self.nothing_readable:
            return None
        what = f"all {self.count} inputs of {self.source} were unreadable" if self.count else f"{self.source} gave no input"
        return f"Nothing was classified: {what}; check that --source holds images or video this build can decode."

    @property
    def exit_code(self) -> int:
        """130 SIGINT, 143 SIGTERM, 1 when not one input could be classified, else 0."""
        signal_code = {"SIGTERM": 143, "SIGINT": 130}.get(self.stopped_by)
        if signal_code:
            return signal_code
        return 1 if self.nothing_readable else 0

    def speed_line(self) -> str:
        """Per image: the compute split (an inference call of a batch is divided by its images, and named)."""
        shape = f" at shape {self.input_shape}" if self.input_shape else ""
        batch = self.input_shape[0] if self.input_shape else 1
        call = f"; one inference call of {batch} images takes {fmt_ms(self.infer_ms * batch)}" if batch > 1 else ""
        return (f"Speed: {fmt_ms(self.pre_ms)} preprocess, {fmt_ms(self.infer_ms)} inference, "
                f"{fmt_ms(self.post_ms)} postprocess per image{shape}{call}")

    def latency_line(self) -> str:
        """Per image, capture to result: what a frame waits in the pipeline's queues is included."""
        return (f"Latency per image, capture to result (queueing included){self.latency_scope}: "
                f"p50 {fmt_ms(self.latency_p50_ms)}, p99 {fmt_ms(self.latency_p99_ms)}")

    def lines(self) -> list[str]:
        b = self.backend_info
        runtime = f"{b.get('runtime')} {b.get('runtime_version', '')}".strip()
        where = b.get("provider") or b.get("delegate") or "cpu"
        from edgecnn.console import printable

        out = [
            f"Model {printable(self.model)} on {runtime} ({where}, threads={b.get('threads') or 'default'}); source "
            f"{printable(self.source)}",
            f"Processed {self.count} input{'' if self.count == 1 else 's'} ({self.ok} classified, {len(self.skipped)} skipped) in {self.elapsed_s:.2f}s: "
            f"{self.throughput:.1f} images/s",
            self.speed_line(),
            self.latency_line(),
        ]
        if self.dropped or self.reconnects:
            out.append(f"Live source: {self.dropped} frames dropped (kept the newest), {self.reconnects} reconnects")
        for src, err in self.skipped[:10]:
            out.append(f"Skipped {printable(src)}: {printable(err)}")
        if len(self.skipped) > 10:
            out.append(f"... and {len(self.skipped) - 10} more skipped (see the CSV/JSONL)")
        if self.stopped_by not in ("end",):
            out.append(f"Stopped by {self.stopped_by}.")
        if b.get("scores"):
            out.append(f"Scores: {b['scores']} (the model outputs logits; edgecnn applies the activation)")
        if self.outputs:
            out.append("Results saved to " + ", ".join(printable(o) for o in self.outputs))
        return out


def apply_hostile_settings(opts: RunOptions) -> None:
    """The process-wide bounds a run sets: the pixel limit of every image decoder and the extra secret names."""
    from edgecnn.imaging import set_max_pixels
    from edgecnn.masking import add_secret_params

    set_max_pixels(opts.max_pixels)
    add_secret_params(opts.secret_params or ())


def run(opts: RunOptions) -> RunSummary:
    """Classify every frame of a source with a model; results go to the console and the requested sinks.

    Raises:
        EdgeCNNError: bad model, source or options (see :func:`load_backend` and :func:`open_source`).
    """
    opts = resolve_options(opts)
    validate_options(opts)
    apply_hostile_settings(opts)
    check_run_outputs(opts)
    backend = load_backend(opts.model, backend=opts.backend or "auto", threads=opts.threads, delegate=opts.delegate,
                           delegate_options=opts.delegate_options, providers=opts.providers, unsafe=opts.unsafe,
                           spin=not decodes_on_threads(opts), conventions=conventions_of(opts))
    try:
        return _run_with(backend, opts)
    finally:
        backend.close()


def _run_with(backend: Backend, opts: RunOptions) -> RunSummary:
    keep = bool(opts.save_dir or opts.show)
    workers = opts.workers or max(1, min(4, os.cpu_count() or 1))
    source = open_source(opts.source, opts.camera, opts.width, opts.height, opts.fps, workers=workers,
                         transform=backend.preprocess, keep_image=keep, reconnect_tries=opts.reconnect_tries)
    bi = backend.info()
    info(f"Running {Path(opts.model).name} with {bi.get('runtime')} "
         f"({bi.get('provider') or bi.get('delegate') or 'cpu'}) on {source.describe()}")
    pipeline = Pipeline(backend, source, batch=opts.batch or default_batch(backend, source), topk=min(opts.topk, len(backend.labels)),
                        threshold=opts.threshold, max_frames=opts.max_frames, duration=opts.duration,
                        keep_images=keep)
    if opts.batch and pipeline.batch < opts.batch and not source.live:
        warn(f"{Path(opts.model).name} has a fixed batch of {backend.max_batch}; running batch {pipeline.batch} "
             f"instead of --batch {opts.batch} (export ONNX with --dynamic-batch for larger batches).")
    from edgecnn.fileio import sweep_temps

    for out_path in (opts.save_csv, opts.save_jsonl, opts.save_parquet):
        if out_path:
            sweep_temps(Path(out_path).parent)  # temp files a killed run left beside its outputs
    if opts.save_dir:
        sweep_temps(opts.save_dir)
    sinks: list[Any] = []
    outputs: list[str] = []
    for path, fmt in ((opts.save_csv, "csv"), (opts.save_jsonl, "jsonl")):
        if path:
            sinks.append(RowWriter(path, fmt, neutralize=not opts.csv_raw, follow_symlinks=opts.follow_symlinks))
            outputs.append(str(path))
    if opts.save_parquet:
        sinks.append(ParquetWriter(opts.save_parquet))
        outputs.append(str(opts.save_parquet))
    saver: ImageSaver | VideoSaver | None = None
    if opts.save_dir:
        if isinstance(source, ImageFilesSource):
            saver = ImageSaver(opts.save_dir, _files_root(source))
            outputs.append(str(opts.save_dir))
        else:
            saver = VideoSaver(opts.save_dir, source.name if isinstance(source, VideoFileSource) else "stream",
                               source.fps or 30.0)
            outputs.append(str(saver.path))
    window: Window | None = None
    if opts.show:
        ok, why = display_available()
        if ok:
            window = Window()
        else:
            warn(f"--show: {why}; continuing without a window.")
    print_results = opts.print_results if opts.print_results is not None else isinstance(source, ImageFilesSource)
    reporter = Reporter(source, pipeline.stats, print_results)
    skipped: list[tuple[str, str]] = []
    counts: Counter[str] = Counter()
    previous = _install_sigterm(pipeline)
    position = 0
    results = iter(pipeline)
    try:
        for frame, result in results:
            position += 1
            reporter.stats = pipeline.stats
            if not result.ok:
                skipped.append((result.source, result.error or ""))
            else:
                counts[result.label] += 1
            for sink in sinks:
                sink.write(result)
            fault_point("run:row")
            if result.ok and frame.image is not None:
                if saver is not None:
                    saver.write(frame.image, result)
                if window is not None and not window.show(frame.image, result):
                    pipeline.stop("user (q pressed)")
            reporter.update(result, position)
    except KeyboardInterrupt:
        pipeline.stop("SIGINT")
    finally:
        results.close()
        pipeline.stats.finish()
        reporter.stats = pipeline.stats
        reporter.close()
        for sink in sinks:
            sink.close()
        if saver is not None:
            saver.close()
        if window is not None:
            window.close()
        _restore_sigterm(previous)
    stats = pipeline.stats
    p50, p90, p99 = stats.latencies_ms.percentiles(50, 90, 99)
    spec = backend.card.input
    bi = backend.info()  # with what the first inference learned (ONNX Runtime's node placement on a GPU)
    if backend.scores != "probabilities":
        bi["scores"] = backend.scores
    placement = describe_placement(bi.get("node_providers"))
    if placement:
        info(f"ONNX Runtime ran {placement}")
    return RunSummary(
        model=str(opts.model),
        source=source.name,
        backend_info=bi,
        count=stats.count,
        ok=stats.ok,
        skipped=skipped,
        dropped=source.dropped,
        reconnects=source.reconnects,
        elapsed_s=stats.elapsed,
        pre_ms=stats.mean("pre"),
        infer_ms=stats.mean("infer"),
        post_ms=stats.mean("post"),
        latency_p50_ms=p50,
        latency_p90_ms=p90,
        latency_p99_ms=p99,
        latency_scope=stats.latencies_ms.scope(),
        input_shape=(pipeline.batch, spec.height, spec.width, spec.channels),
        stopped_by=pipeline.stop_reason or "end",
        class_counts=dict(counts),
        outputs=outputs,
        init_ms=backend.init_seconds * 1000.0,
    )


#: Images per inference call on folders, globs and videos when --batch is not given and the model accepts it.
FINITE_BATCH = 16


def default_batch(backend: Backend, source: Source) -> int:
    """Batch for a run without --batch: live sources 1 (latency first); finite ones :data:`FINITE_BATCH` when
    the model takes any batch (one invoke, one hand-off and one top-k per batch instead of per image; results
    are the same as batch 1, tested), else 1."""
    if source.live or backend.max_batch is not None:
        return 1
    return max(1, min(FINITE_BATCH, source.total)) if source.total else FINITE_BATCH  # one image: batch 1


def _files_root(source: ImageFilesSource) -> str:
    """The folder whose layout ``--save-dir`` mirrors: the source folder, or a glob's files' common folder."""
    if Path(source.name).is_dir() or not source.files:
        return source.name
    return os.path.commonpath([os.path.abspath(Path(f).parent) for f in source.files])


def _install_sigterm(pipeline: Pipeline) -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, _frame: Any) -> None:
        pipeline.stop("SIGTERM")

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


__all__ = ["Frame", "Result", "RunOptions", "RunSummary", "apply_device", "run"]
