"""``edgecnn run --engine ray``: a local run's rows, computed on a Ray cluster, written by the driver.

>>> from edgecnn.runtime.runner import RunOptions
>>> from edgecnn.scale.run import run_ray
>>> summary = run_ray(RunOptions(model="model_int8.tflite", source="archive/", save_csv="preds.csv"),
...                   ScaleOptions(address="10.0.0.1:6379"))
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.console import info, warn
from edgecnn.errors import ConfigError, SourceError
from edgecnn.runtime.options import RunOptions, check_run_outputs
from edgecnn.runtime.pipeline import LatencyWindow, Result
from edgecnn.runtime.resolve import resolve_options
from edgecnn.runtime.runner import RunSummary
from edgecnn.runtime.sinks import ParquetWriter, RowWriter
from edgecnn.scale.cluster import ray_session
from edgecnn.scale.infer import JobReport, ScaleOptions, predict_files

#: ``edgecnn run`` options that need a screen, a camera or local files beside the run; not for a cluster job.
_LOCAL_ONLY = {"camera": "--camera", "save_dir": "--save", "show": "--show", "duration": "--duration",
               "delegate": "--delegate"}


@dataclass
class RaySummary(RunSummary):
    """A run summary plus what the cluster did."""

    job: JobReport = field(default_factory=JobReport)

    def lines(self) -> list[str]:
        out = super().lines()
        j = self.job
        by_node = ", ".join(f"{node} {n}" for node, n in sorted(j.rows_by_node.items()))
        out.insert(1, f"Ray: {j.workers} worker(s) x {j.threads} thread(s) on {j.cluster}; rows by node: {by_node}")
        return out


def input_files(source: str | os.PathLike[str] | None) -> tuple[list[str], str]:
    """The image paths of ``--source`` in the order a local run reads them, and the source's name.

    Raises:
        SourceError: a source that is not a set of image files (video, camera, stream).
        DataError: no images found.
    """
    from edgecnn.runtime.sources import ImageFilesSource, open_source

    if source is None:
        raise SourceError("Expected --source DIR|GLOB|LIST.txt|FILE.parquet with --engine ray; received none.")
    src = open_source(str(source), workers=1)
    try:
        if not isinstance(src, ImageFilesSource):
            raise SourceError(f"--engine ray runs over image files (a folder, glob, list or Parquet of paths); "
                              f"received {src.describe()}. Run videos, cameras and streams without --engine ray.")
        return [str(f) for f in src.files], src.name
    finally:
        src.close()


def ray_results(files: list[str], model: str | os.PathLike[str], scale: ScaleOptions, *, backend: str = "auto",
                providers: list[str] | None = None, topk: int = 5, threshold: float = 0.0,
                want_probs: bool = False) -> Iterator[Result]:
    """Results of ``files`` computed on Ray, in order, each once; connects for the iteration, warns on retries."""
    report = JobReport()
    with ray_session(scale.address, verbose=scale.verbose) as cluster:
        info(f"Classifying {len(files)} images with {Path(model).name} on {cluster.describe()}")
        yield from predict_files(files, model, scale, backend=backend, providers=providers, topk=topk,
                                 threshold=threshold, want_probs=want_probs, report=report)
    if report.retried:
        warn(report.retry_warning())


def run_ray(opts: RunOptions, scale: ScaleOptions) -> RaySummary:
    """Classify every image of ``opts.source`` on Ray; same rows, columns and order as :func:`runner.run`.

    Raises:
        EdgeCNNError: bad model, source or options; an unreachable cluster; a job that failed twice.
    """
    opts = resolve_options(opts)  # a plan's options come resolved: unchanged
    check_run_outputs(opts)
    for key, flag in _LOCAL_ONLY.items():
        if getattr(opts, key):
            raise ConfigError(f"{flag} is not available with --engine ray (it needs this machine's screen, camera "
                              f"or delegate); run without --engine ray for it.")
    if opts.topk < 1:
        raise ConfigError(f"Expected --topk >= 1; received {opts.topk}.")
    if not 0.0 <= opts.threshold <= 1.0:
        raise ConfigError(f"Expected --threshold between 0 and 1; received {opts.threshold}.")
    from edgecnn.runtime.backends import load_backend
    from edgecnn.scale.infer import check_model

    check_model(opts.model)
    from edgecnn.runtime.options import conventions_of

    scale.conventions = scale.conventions or conventions_of(opts)
    probe = load_backend(opts.model, backend=opts.backend or "auto", threads=1, providers=opts.providers,
                         conventions=scale.conventions)
    try:  # fail here, not on every worker, when the model is unusable; and learn its input shape and runtime
        bi, spec, nlabels = probe.info(), probe.card.input, len(probe.labels)
        batch = min(opts.batch or 1, probe.max_batch) if probe.max_batch else (opts.batch or 1)
    finally:
        probe.close()
    if opts.batch and batch < opts.batch:
        warn(f"{Path(opts.model).name} has a fixed batch of {batch}; running batch {batch} instead of --batch "
             f"{opts.batch} (export ONNX with --dynamic-batch for larger batches).")
    files, name = input_files(opts.source)
    if opts.max_frames:
        files = files[: opts.max_frames]
    scale.batch = batch
    scale.threads = scale.threads or opts.threads
    sinks: list[Any] = []
    outputs: list[str] = []
    for path, fmt in ((opts.save_csv, "csv"), (opts.save_jsonl, "jsonl")):
        if path:
            sinks.append(RowWriter(path, fmt))
            outputs.append(str(path))
    parquet = ParquetWriter(opts.save_parquet) if opts.save_parquet else None
    if parquet is not None:
        outputs.append(str(opts.save_parquet))
    report = JobReport()
    skipped: list[tuple[str, str]] = []
    counts: Counter[str] = Counter()
    sums = {"pre": 0.0, "infer": 0.0, "post": 0.0}
    latencies = LatencyWindow()  # bounded, as a live run's
    count = ok = 0
    finished = False
    try:
        with ray_session(scale.address, verbose=scale.verbose) as cluster:
            info(f"Running {Path(opts.model).name} on {cluster.describe()}: {len(files)} images from {name}")
            for result in predict_files(files, opts.model, scale, backend=opts.backend or "auto",
                                        providers=opts.providers, topk=min(opts.topk, nlabels),
                                        threshold=opts.threshold, report=report):
                count += 1
                if result.ok:
                    ok += 1
                    counts[result.label] += 1
                    sums["pre"] += result.pre_ms
                    sums["infer"] += result.infer_ms
                    sums["post"] += result.post_ms
                    latencies.append(result.latency_ms)
                else:
                    skipped.append((result.source, result.error or ""))
                for sink in sinks:
                    sink.write(result)
                if parquet is not None:
                    parquet.write(result)
        finished = True
    finally:
        for sink in sinks:
            sink.close()
        if parquet is not None:
            parquet.close() if finished else parquet.abort()
    if report.retried:
        warn(report.retry_warning())
    p50, p90 = latencies.percentiles(50, 90)
    bi = {**bi, "threads": report.threads, "engine": "ray", "workers": report.workers}
    return RaySummary(
        model=str(opts.model), source=name, backend_info=bi, count=count, ok=ok, skipped=skipped,
        elapsed_s=report.elapsed_s, pre_ms=sums["pre"] / max(ok, 1), infer_ms=sums["infer"] / max(ok, 1),
        post_ms=sums["post"] / max(ok, 1), latency_p50_ms=p50,
        latency_p90_ms=p90, latency_scope=latencies.scope(), input_shape=(batch, spec.height, spec.width, spec.channels),
        class_counts=dict(counts), outputs=outputs, job=report,
    )
