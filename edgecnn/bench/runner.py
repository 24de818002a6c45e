"""``edgecnn bench``: find artifacts, sweep threads × batch, measure each, check gates.

A failing artifact (corrupt file, missing runtime, unloadable delegate) becomes an ``error`` row and
the others still run. TensorFlow is never imported here; only benchmarking a ``.keras`` model (asked
for with ``--backend keras`` or ``--include-keras``) loads Keras, through its backend.

Option parsing and the device-profile merge are :mod:`edgecnn.bench.options`, artifact discovery
:mod:`edgecnn.bench.artifacts`, the gates :mod:`edgecnn.bench.gates` (their names stay importable from here);
this module is the measurement loop and the sweep that assembles the report.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.bench.artifacts import (  # noqa: F401  (re-exported)
    FOLDER_FORMATS,
    KERAS_SUFFIXES,
    ArtifactFacts,
    describe_artifact,
    discover_artifacts,
)
from edgecnn.bench.gates import GATE_METRICS, check_gates, enforce_gates  # noqa: F401  (re-exported)
from edgecnn.bench.measure import BenchSettings, measure_latency, stored_samples_ms
from edgecnn.bench.options import parse_cpus, parse_int_list, parse_list, sweep_plan  # noqa: F401  (re-exported)
from edgecnn.bench.schema import BenchReport, BenchResult
from edgecnn.console import info, warn
from edgecnn.errors import ConfigError, DataError, EdgeCNNError
from edgecnn.fileio import MB, fault_point


# ---------------------------------------------------------------------- data (accuracy + preprocessing)
@dataclass
class DataFigures:
    accuracy: float
    images: int
    skipped: int
    decode_ms: float
    preprocess_ms: float
    inputs: np.ndarray  # preprocessed uint8 NHWC, used as the timing input

def evaluate_data(backend: Any, data: Path, max_images: int | None = None) -> DataFigures:
    """Accuracy on a labelled folder, and host-side time per image (decode, decode+preprocess).

    Raises:
        DataError: the folder's classes are not the model's, or no image could be read.
    """
    from edgecnn.conventions import labelled_files
    from edgecnn.imaging import UnreadableImageError, decode_image

    files = labelled_files(data, backend.card)
    pairs = list(zip(files.files, files.targets))
    if max_images is not None and len(pairs) > max_images:
        idx = np.linspace(0, len(pairs) - 1, max_images).round().astype(int)  # spread over classes
        pairs = [pairs[i] for i in idx]
    clock = time.perf_counter_ns
    images, targets, dec_ns, pre_ns, skipped = [], [], 0, 0, 0
    for path, target in pairs:
        t0 = clock()
        try:
            rgb = decode_image(path)
        except UnreadableImageError as exc:
            skipped += 1
            warn(f"Skipping {path}: {exc}")
            continue
        t1 = clock()
        x = backend.preprocess(rgb)
        t2 = clock()
        dec_ns += t1 - t0
        pre_ns += t2 - t0
        images.append(x)
        targets.append(target)
    if not images:
        raise DataError(f"No readable images in {data}; expected class sub-folders holding image files.")
    batch = np.stack(images)
    chunk = backend.max_batch or 32
    probs = np.concatenate([backend.predict(batch[i : i + chunk]) for i in range(0, len(batch), chunk)])
    acc = float(np.mean(probs.argmax(axis=1) == np.asarray(targets)))
    n = len(images)
    return DataFigures(acc, n, skipped, dec_ns / n / 1e6, pre_ns / n / 1e6, batch)

# ---------------------------------------------------------------------- the run
def _mb(n: int | None) -> float | None:
    return round(n / MB, 2) if n is not None else None

def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return msg if isinstance(exc, EdgeCNNError) else f"{type(exc).__name__}: {msg}".rstrip(": ")

def _synthetic_input(card: Any, batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(batch, *card.input_shape), dtype=np.uint8)

def _timing_batch(pool: np.ndarray | None, card: Any, batch: int, seed: int) -> np.ndarray:
    if pool is None or not len(pool):
        return _synthetic_input(card, batch, seed)
    reps = -(-batch // len(pool))
    return np.ascontiguousarray(np.concatenate([pool] * reps)[:batch])

def measure_starts(path: Path, seed: int = 0, **load_kwargs: Any) -> dict[str, Any]:
    """Init and first-inference times of a cold start (no init cache) and a warm one (init cache filled).

    Cold: the backend built from scratch, neither reading nor writing the init cache
    (:mod:`edgecnn.runtime.initcache`). Warm: a start after the cache has been filled (a second start of
    ``edgecnn run`` on this machine). Both in this process, so imports and shared libraries are already
    loaded: these figures isolate what the model's own start costs. A backend without an init cache
    (TFLite) reports its second start as warm. Returns the :class:`BenchResult` fields (empty if the
    model cannot be loaded: the main measurement then reports the error).
    """
    from edgecnn.runtime.backends import load_backend

    def start(init_cache: bool) -> tuple[float, float, str]:
        gc.collect()
        be = load_backend(path, init_cache=init_cache, **load_kwargs)
        try:
            x = be.prepare(_synthetic_input(be.card, 1, seed))
            t0 = time.perf_counter()
            be.infer(x)
            return be.init_seconds * 1e3, (time.perf_counter() - t0) * 1e3, be.init_cache_status
        finally:
            be.close()

    try:
        init_cold, first_cold, _ = start(init_cache=False)
        start(init_cache=True)  # fills the cache if it was empty (or stale)
        init_warm, first_warm, status = start(init_cache=True)
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 - the main load reports why
        return {}
    return {"init_cold_ms": round(init_cold, 3), "first_cold_ms": round(first_cold, 4),
            "init_warm_ms": round(init_warm, 3), "first_warm_ms": round(first_warm, 4), "init_cache": status}

def bench_artifact(
    facts: ArtifactFacts,
    *,
    backend: str,
    threads: int | None,
    batches: list[int],
    delegate: str | None,
    delegate_options: dict[str, str],
    providers: list[str] | None,
    settings: BenchSettings,
    data: Path | None,
    max_images: int | None,
    data_cache: dict[Path, DataFigures | Exception],
    on_row: Callable[[BenchResult], None] | None = None,
    unsafe: bool = False,
    conventions: Any = None,
) -> list[BenchResult]:
    """Load one artifact with one thread count and measure it at every batch size (one row each).

    Any failure while loading or running becomes an ``error`` row for each batch size, never an exception
    (except KeyboardInterrupt).
    """
    from edgecnn.runtime.backends import load_backend
    from edgecnn.sysinfo import peak_rss_bytes, reset_peak_rss, rss_bytes

    def row(batch: int, **kw: Any) -> BenchResult:
        r = BenchResult(
            artifact=str(facts.path), file=facts.path.name, format=facts.format, precision=facts.precision,
            backend=kw.pop("backend_name", backend if backend != "auto" else facts.format), threads=threads, batch=batch,
            size_bytes=facts.size_bytes, sha256=facts.sha256, model_id=facts.model_id, model_name=facts.model_name,
            delegate=delegate, **kw,
        )
        if on_row:
            on_row(r)
        return r

    load_kwargs: dict[str, Any] = {"backend": backend, "threads": threads, "delegate": delegate,
                                   "delegate_options": delegate_options or None, "providers": providers,
                                   "unsafe": unsafe, "conventions": conventions}
    starts = measure_starts(facts.path, settings.seed, **load_kwargs)  # before the RSS baseline below
    gc.collect()
    reset_peak_rss()
    rss0 = rss_bytes()
    try:
        be = load_backend(facts.path, **load_kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken artifact is a row, not the end of the bench
        return [row(b, status="error", error=_error_text(exc)) for b in batches]

    rows: list[BenchResult] = []
    try:
        binfo = be.info()
        common = {
            "backend_name": be.name,
            "runtime": binfo.get("runtime"),
            "runtime_version": binfo.get("runtime_version"),
            "provider": binfo.get("provider"),
            "init_ms": round(be.init_seconds * 1e3, 3),
            **starts,
        }
        if facts.precision == "?" and be.input.dtype.kind in "iu":
            facts.precision = str(be.input.dtype)
        if facts.model_name is None:
            facts.model_name = be.card.name
        delegate_used = binfo.get("delegate")
        figures: DataFigures | None = None
        if data is not None:
            key = facts.path
            if key not in data_cache:
                try:
                    data_cache[key] = evaluate_data(be, data, max_images)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # noqa: BLE001
                    data_cache[key] = exc
            cached = data_cache[key]
            if isinstance(cached, Exception):
                return [row(b, status="error", error=_error_text(cached), **common) for b in batches]
            figures = cached
        for batch in batches:
            limit = be.max_batch
            if limit is not None and batch > limit:
                rows.append(row(batch, status="skipped", error=f"model has a fixed batch of {limit}; re-export with a dynamic batch",
                                **common))
                continue
            try:
                pixels = _timing_batch(figures.inputs if figures else None, be.card, batch, settings.seed)
                prepared = be.prepare(pixels)
                m = measure_latency(be.infer, prepared, settings)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001
                rows.append(row(batch, status="error", error=_error_text(exc), **common))
                continue
            st = m.stats
            ips = 1e3 / st.mean_ms if st.mean_ms > 0 else None
            rss1, peak = rss_bytes(), peak_rss_bytes()
            rows.append(row(
                batch,
                status="ok",
                first_ms=round(m.first_ms, 4),
                warmup_runs=m.warmup_runs,
                wall_seconds=round(m.wall_seconds, 4),
                capped=m.capped,
                latency=st,
                inferences_per_s=ips,
                images_per_s=ips * batch if ips else None,
                rss_before_mb=_mb(rss0),
                rss_after_mb=_mb(rss1),
                rss_growth_mb=_mb(rss1 - rss0) if rss0 is not None and rss1 is not None else None,
                rss_peak_mb=_mb(peak),
                accuracy=figures.accuracy if figures else None,
                accuracy_images=figures.images if figures else None,
                decode_ms=round(figures.decode_ms, 4) if figures else None,
                preprocess_ms=round(figures.preprocess_ms, 4) if figures else None,
                end_to_end_ms=round(figures.preprocess_ms + st.p50_ms / batch, 4) if figures else None,
                samples_ms=stored_samples_ms(m.samples_ns),
                **common,
            ))
            rows[-1].delegate = delegate_used
            rows[-1].node_providers = be.info().get("node_providers")
    finally:
        be.close()
        del be
        gc.collect()
    return rows

def run_bench(
    models: Sequence[str | os.PathLike[str]],
    *,
    backend: str | None = None,
    threads: str | Sequence[int | None] | int | None = None,
    batches: str | Sequence[int] | int | None = None,
    delegate: str | None = None,
    delegate_options: dict[str, str] | None = None,
    providers: str | Sequence[str] | None = None,
    device: str | None = None,
    cpus: str | Sequence[int] | None = None,
    data: str | os.PathLike[str] | None = None,
    max_images: int | None = None,
    include_keras: bool = False,
    settings: BenchSettings | None = None,
    label: str | None = None,
    fail_above_ms: float | None = None,
    min_accuracy: float | None = None,
    gate_metric: str = "p50",
    on_row: Callable[[BenchResult], None] | None = None,
    unsafe: bool = False,
    conventions: Any = None,
) -> BenchReport:
    """Benchmark every artifact × thread count × batch size; returns the report (gates evaluated, not raised).

    Args:
        models: Files and/or run/export folders.
        backend: ``auto`` (by file type) or a backend name; ``None`` lets a device profile decide.
        threads: Thread counts to sweep (``"1,2,4"``; ``None``/``"auto"``: the runtime's default).
        batches: Batch sizes to sweep (``"1,8"``).
        delegate / delegate_options / providers: As in ``edgecnn run``.
        device: A device profile name (``edgecnn devices list``); explicit options override it.
        cpus: Pin the process to these CPUs while measuring (``"0,1"``), where the OS allows.
        data: A labelled folder: adds accuracy and host preprocessing time per image.
        max_images: Use at most this many images of ``data`` (spread over the folder).
        include_keras: Also benchmark ``model.keras`` found in folders.
        settings: Warm-up and loop bounds.
        label: Name of this device/run in comparisons (default: profile name or hostname).
        fail_above_ms / min_accuracy / gate_metric: Deployment gates (see :func:`enforce_gates`).
        on_row: Called with each row as soon as it is measured (progress).
        unsafe: Allow ``.keras`` models with Lambda layers (``--include-keras``; trusted files only).
        conventions: Input conventions of models made elsewhere (:class:`edgecnn.conventions.Conventions`).

    Raises:
        ConfigError / ModelError / DataError: bad options or inputs, before anything is measured.
    """
    from edgecnn.sysinfo import pin_cpus, reset_peak_rss, system_info, unpin_cpus

    settings = settings or BenchSettings()
    settings.validate()
    if gate_metric not in GATE_METRICS:
        raise ConfigError(f"Expected --gate-metric one of {GATE_METRICS}; received {gate_metric!r}.")
    if fail_above_ms is not None and fail_above_ms <= 0:
        raise ConfigError(f"Expected --fail-above-ms > 0; received {fail_above_ms}.")
    if min_accuracy is not None:
        if not 0.0 <= min_accuracy <= 1.0:
            raise ConfigError(f"Expected --min-accuracy as a fraction in [0, 1] (e.g. 0.9); received {min_accuracy}.")
        if data is None:
            raise ConfigError("--min-accuracy needs --data DIR (a labelled folder) to measure accuracy on.")
    data_path = Path(data) if data is not None else None
    if data_path is not None and not data_path.is_dir():
        raise DataError(f"--data expects a folder with one sub-folder per class; {data_path} is not a folder.")
    if max_images is not None and max_images < 1:
        raise ConfigError(f"Expected --max-images >= 1; received {max_images}.")

    plan = sweep_plan(device, backend, threads, batches, delegate, delegate_options, providers)
    cpu_list = parse_cpus(cpus) if cpus not in (None, "", []) else None
    paths = discover_artifacts(models, "auto" if plan.backend_from_profile else plan.backend, include_keras)
    facts = [describe_artifact(p) for p in paths]
    if plan.precision and plan.delegate and any(Path(m).is_dir() for m in models):
        # A delegate profile (e.g. the Edge TPU) only runs its own precision: do not bench the rest into errors.
        chosen = [f for f in facts if f.precision == plan.precision or f.path in {Path(m).resolve() for m in models}]
        if chosen:
            info(f"Device profile {device!r} runs {plan.precision}: benchmarking {len(chosen)} of {len(facts)} artifacts.")
            facts = chosen
        else:
            warn(f"Device profile {device!r} expects {plan.precision} artifacts; none found, benchmarking all.")

    system = system_info()
    previous = pin_cpus(cpu_list)
    peak_resets = reset_peak_rss()
    results: list[BenchResult] = []
    data_cache: dict[Path, DataFigures | Exception] = {}
    interrupted: KeyboardInterrupt | None = None
    total, started = len(facts) * len(plan.threads) * len(plan.batches), time.perf_counter()

    def announce(r: BenchResult) -> None:  # progress: row n of N and the time left, then the caller's callback
        done = len(results) + sum(1 for _ in pending) + 1
        pending.append(r)
        left = (time.perf_counter() - started) / done * (total - done)
        what = f"{r.file} threads={'auto' if r.threads is None else r.threads} batch={r.batch}"
        figure = (f"p50 {r.latency.p50_ms / max(1, r.batch):.3f} ms/img" if r.ok  # type: ignore[union-attr]
                  else f"{r.status} ({r.error})")
        info(f"[{done}/{total}] {what}: {figure}" + (f"; about {left:.0f}s left" if done < total else ""))
        if on_row:
            on_row(r)

    try:
        for f in facts:
            for n_threads in plan.threads:
                pending: list[BenchResult] = []
                results += bench_artifact(
                    f, backend=plan.backend_for_file(f.path), threads=n_threads, batches=plan.batches, delegate=plan.delegate,
                    delegate_options=plan.delegate_options, providers=plan.providers, settings=settings,
                    data=data_path, max_images=max_images, data_cache=data_cache, on_row=announce, unsafe=unsafe,
                    conventions=conventions,
                )
                fault_point("bench:row")
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: keep the rows measured so far, marked partial
        interrupted = exc
    finally:
        pinned_to = sorted(os.sched_getaffinity(0)) if previous is not None and hasattr(os, "sched_getaffinity") else None
        unpin_cpus(previous)

    providers_used = sorted({r.provider for r in results if r.provider})
    delegates_used = sorted({r.delegate for r in results if r.delegate})
    system["accelerators_used"] = {"providers": providers_used, "delegates": delegates_used}
    if not any(p.startswith(("CUDA", "Tensorrt")) for p in providers_used) and not delegates_used:
        system["gpu_used"] = None
    else:
        system["gpu_used"] = (system.get("gpus") or [None])[0]
    report = BenchReport(
        label=label or plan.label or system.get("hostname") or "device",
        system=system,
        settings={
            **settings.to_dict(),
            "models": [str(m) for m in models],
            "backend": plan.backend,
            "threads": plan.threads,
            "batches": plan.batches,
            "delegate": plan.delegate,
            "delegate_options": plan.delegate_options,
            "providers": plan.providers,
            "device_profile": device,
            "cpus": pinned_to,
            "data": str(data_path) if data_path else None,
            "max_images": max_images,
            "peak_rss_per_row": peak_resets,
            "timer": "time.perf_counter_ns",
        },
        results=results,
        gates={"fail_above_ms": fail_above_ms, "min_accuracy": min_accuracy, "metric": gate_metric},
    )
    report.gate_failures = check_gates(report)
    if interrupted is not None:
        from edgecnn.errors import Terminated

        report.partial = "SIGTERM" if isinstance(interrupted, Terminated) else "SIGINT"
        warn(f"Benchmark stopped by {report.partial}: {len(results)} rows measured; the report is marked partial.")
        report.interrupted = interrupted  # type: ignore[attr-defined]  (the CLI re-raises it after printing)
    return report

