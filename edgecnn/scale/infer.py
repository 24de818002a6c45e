"""Batch inference on Ray Data: the same decode → preprocess → infer → top-k code as a local run, on many nodes.

::

    driver: paths (sorted like a local run) ─▶ Ray Data blocks of ``rows_per_task`` paths
              ─▶ map_batches(BatchPredictor, compute=ActorPoolStrategy)   one actor per worker, model loaded once
              ─▶ rows back in path order ─▶ dedupe/verify by index ─▶ CSV / JSONL / Parquet on the driver

Each actor runs edgecnn's own :class:`~edgecnn.runtime.pipeline.Pipeline` over its batch of files
(:class:`~edgecnn.runtime.sources.ImageFilesSource` decoding with :func:`edgecnn.imaging.decode_image`, the
backend's ``preprocess``), so a row is exactly the row a local ``edgecnn run`` writes for that file; an
undecodable file is a ``skipped`` row with the same error.

Fault tolerance: actors are restartable (``max_restarts=-1``) and their tasks retried (``max_task_retries=-1``),
so Ray Data re-runs the batches of a worker that died. The driver still trusts nothing: rows are keyed by
input index, a duplicate is dropped, and indices missing at the end are re-run in a second Ray pass. What was
retried is reported as a warning; the run still exits 0 when every input has exactly one row.

Workers need ``edgecnn[ray]`` plus the runtime of the model (``[tflite]`` or ``[onnx]``), never TensorFlow.
Input paths must be readable under the same name on every node (a shared or replicated filesystem).

Size (~470 lines, over the house's ~400): the actor, the driver's ordering/dedupe/re-run of missing inputs and
the lost-node detection are one protocol; split apart, the exactly-once argument would span files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import info, interactive, is_quiet, warn
from edgecnn.errors import ConfigError, EdgeCNNError, ModelError
from edgecnn.runtime.backends import BACKENDS
from edgecnn.runtime.pipeline import Result

#: Backends the Ray engine ships to workers: the edge runtimes (the Keras reference backend, extra ``train``, would
#: need TensorFlow on every node).
RAY_BACKENDS = tuple(name for name, cls in BACKENDS.items() if cls.extra != "train")
RAY_SUFFIXES = tuple(sfx for name in RAY_BACKENDS for sfx in BACKENDS[name].suffixes)
#: Files of a model's folder that a worker needs beside the model (the fallback labels when no card is embedded).
SIDE_FILES = ("labels.txt",)
#: Paths per Ray task: large enough to amortise a task's overhead, small enough to balance and to retry cheaply.
DEFAULT_ROWS_PER_TASK = 256


class RayJobError(EdgeCNNError):
    """The Ray job failed (and its retries did not bring every input back)."""


@dataclass
class ScaleOptions:
    """How a job is spread over the cluster.

    Attributes:
        address: ``HOST:PORT`` of a running cluster's head; None starts a local Ray for the command.
        workers: Ray actors, each loading the model once (default: one per node with CPUs).
        threads: CPUs each actor reserves, used as its interpreter threads and decoding threads
            (default: the cluster's CPUs divided by ``workers``).
        batch: Images per inference call inside an actor (``--batch``).
        rows_per_task: Paths per Ray task (default :data:`DEFAULT_ROWS_PER_TASK`, a multiple of ``batch``).
        progress: Show Ray Data's progress bars (default: on a terminal and not ``--quiet``).
        verbose: Show Ray's own logs and the workers' output.
    """

    address: str | None = None
    workers: int | None = None
    threads: int | None = None
    batch: int = 1
    rows_per_task: int | None = None
    progress: bool | None = None
    verbose: bool = False
    #: Input conventions of a model made elsewhere (:class:`edgecnn.conventions.Conventions`, labels read into a
    #: list on the driver: a worker on another node cannot read the driver's --labels file).
    conventions: Any = None


@dataclass
class JobReport:
    """What the Ray side of a job did, for the summary and the retry warning."""

    inputs: int = 0
    workers: int = 0
    threads: int = 0
    nodes: int = 0
    cluster: str = ""
    passes: int = 0
    duplicates: int = 0
    rerun: list[str] = field(default_factory=list)
    lost_nodes: list[str] = field(default_factory=list)
    actor_restarts: int = 0
    actors: int = 0
    replaced_workers: int = 0
    rows_by_node: dict[str, int] = field(default_factory=dict)  # updated as rows arrive
    busy_s_by_worker: dict[str, float] = field(default_factory=dict)  # time actors spent classifying
    first_row_s: float = 0.0  # job start to the first row (actor start-up and the first block)

    def images_per_busy_second(self) -> float:
        """Images per second of one worker while it works (start-up excluded): the per-node rate."""
        busy = sum(self.busy_s_by_worker.values())
        rows = sum(self.rows_by_node.values())
        return rows / busy * 1.0 if busy > 0 else 0.0
    pass_errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def retried(self) -> bool:
        return bool(self.duplicates or self.rerun or self.lost_nodes or self.actor_restarts or self.pass_errors
                    or self.replaced_workers)

    def retry_warning(self) -> str:
        """One sentence naming what was retried (empty when nothing was)."""
        if not self.retried:
            return ""
        parts = []
        if self.lost_nodes:
            parts.append(f"node{'s' if len(self.lost_nodes) > 1 else ''} {', '.join(self.lost_nodes)} left the "
                         f"cluster during the job")
        if self.actor_restarts or self.replaced_workers:
            parts.append(f"Ray restarted or replaced worker actors {max(self.actor_restarts, self.replaced_workers)} "
                         f"time(s) and re-ran their unfinished batches")
        elif self.lost_nodes:
            parts.append("Ray re-ran the batches that were on it")
        if self.pass_errors:
            parts.append(f"a pass failed ({self.pass_errors[0]})")
        if self.rerun:
            shown = ", ".join(self.rerun[:3]) + (f" and {len(self.rerun) - 3} more" if len(self.rerun) > 3 else "")
            parts.append(f"{len(self.rerun)} input(s) missing after the first pass were re-run ({shown})")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate row(s) from retried batches were dropped")
        return ("Ray retried work: " + "; ".join(parts) +
                f". Every one of the {self.inputs} inputs has exactly one row.")


# ====================================================================== worker side
class BatchPredictor:
    """The callable class of ``map_batches``: loads the model once per actor, classifies batches of paths.

    Args:
        model_name: File name of the model (its suffix picks the backend).
        model_bytes: The model file, shipped from the driver so nodes need no copy of it: the bytes, or a
            one-element list holding their ``ray.put`` reference (a list, so that Ray does not make the actor's
            constructor argument an object-store value, which a restart could not recover once lost).
        side_files: Files that sit beside the model (``labels.txt``), name → bytes.
        backend: ``tflite``, ``onnx`` or ``auto``.
        threads: Interpreter threads and decoding threads (the CPUs the actor reserved).
        batch: Images per inference call.
        topk: Labels per row.
        threshold: Top-1 below it is reported as ``unknown``.
        providers: ONNX Runtime providers.
        want_probs: Also return every class probability (for ``evaluate``).
    """

    def __init__(self, model_name: str, model_bytes: bytes | list[Any], side_files: dict[str, bytes], backend: str,
                 threads: int, batch: int, topk: int, threshold: float, providers: list[str] | None,
                 want_probs: bool, conventions: Any = None) -> None:
        from edgecnn.runtime.backends import load_backend

        self._dir = tempfile.mkdtemp(prefix="edgecnn-ray-")
        path = Path(self._dir) / model_name
        if isinstance(model_bytes, list):
            import ray

            model_bytes = ray.get(model_bytes[0])
        path.write_bytes(model_bytes)
        for name, data in side_files.items():
            (Path(self._dir) / name).write_bytes(data)
        # batches are decoded in this worker between inferences: onnxruntime's threads sleep, not spin (runner)
        self.backend = load_backend(path, backend=backend, threads=threads, providers=providers, spin=False,
                                    conventions=conventions)
        self.threads = threads
        self.batch = batch
        self.topk = min(topk, len(self.backend.labels))
        self.threshold = threshold
        self.want_probs = want_probs
        try:
            import ray

            ctx = ray.get_runtime_context()
            self.worker = f"{ctx.get_node_id()}:{os.getpid()}"
        except Exception:  # noqa: BLE001  (only a label for the report)
            self.worker = f"?:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from edgecnn.runtime.pipeline import Pipeline
        from edgecnn.runtime.sources import ImageFilesSource

        t0 = time.perf_counter()
        paths = [str(p) for p in batch["path"]]
        indices = np.asarray(batch["index"], dtype=np.int64)
        source = ImageFilesSource([Path(p) for p in paths], "ray batch", workers=self.threads,
                                  transform=self.backend.preprocess)
        pipe = Pipeline(self.backend, source, batch=self.batch, topk=self.topk, threshold=self.threshold)
        results = [r for _frame, r in pipe]
        if len(results) != len(paths):  # a pipeline never drops a file of a finite source
            raise RuntimeError(f"pipeline returned {len(results)} results for {len(paths)} files")
        out = encode_results(results, indices, self.worker, len(self.backend.labels) if self.want_probs else 0)
        out["busy_ms"] = np.full(len(results), (time.perf_counter() - t0) * 1000.0 / max(1, len(results)))
        return out

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


def encode_results(results: list[Result], indices: np.ndarray, worker: str, num_classes: int) -> dict[str, np.ndarray]:
    """Results as columns for Ray Data (plain strings and numbers; ``num_classes`` > 0 adds ``probs``)."""
    def col(values: list[Any], dtype: Any = object) -> np.ndarray:
        return np.asarray(values, dtype=dtype)

    out = {
        "index": indices[[r.index for r in results]],
        "source": col([r.source for r in results]),
        "label": col([r.label for r in results]),
        "score": col([float(r.score) if r.ok else float("nan") for r in results], np.float64),
        "topk": col([json.dumps([[lbl, float(s)] for lbl, s in r.topk]) for r in results]),
        "error": col([r.error or "" for r in results]),
        "class_index": col([r.class_index for r in results], np.int64),
        "pre_ms": col([r.pre_ms for r in results], np.float64),
        "infer_ms": col([r.infer_ms for r in results], np.float64),
        "post_ms": col([r.post_ms for r in results], np.float64),
        "latency_ms": col([r.latency_ms for r in results], np.float64),
        "worker": col([worker] * len(results)),
    }
    if num_classes:
        probs = np.zeros((len(results), num_classes), np.float32)
        for i, r in enumerate(results):
            if r.probs is not None:
                probs[i] = r.probs
        out["probs"] = probs
    return out


def decode_rows(batch: dict[str, np.ndarray]) -> Iterator[tuple[Result, str]]:
    """Rows of an output batch back as (:class:`Result`, worker) pairs."""
    probs = batch.get("probs")
    for i in range(len(batch["index"])):
        error = str(batch["error"][i]) or None
        yield Result(
            source=str(batch["source"][i]),
            index=int(batch["index"][i]),
            label=str(batch["label"][i]),
            score=float(batch["score"][i]),
            topk=[(str(lbl), float(s)) for lbl, s in json.loads(str(batch["topk"][i]))],
            error=error,
            pre_ms=float(batch["pre_ms"][i]),
            infer_ms=float(batch["infer_ms"][i]),
            post_ms=float(batch["post_ms"][i]),
            latency_ms=float(batch["latency_ms"][i]),
            class_index=int(batch["class_index"][i]),
            probs=None if probs is None or error else np.asarray(probs[i], np.float32),
        ), str(batch["worker"][i])


# ====================================================================== driver side
class InOrder:
    """Puts rows arriving in any order, possibly twice, back into index order, each index once."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.next = 0
        self.pending: dict[int, Result] = {}
        self.seen = np.zeros(total, dtype=bool)
        self.duplicates = 0

    def add(self, result: Result) -> list[Result]:
        """Accept one row; returns the rows that can now be emitted in order."""
        i = result.index
        if not 0 <= i < self.total:
            raise RayJobError(f"A Ray worker returned row index {i}, outside 0..{self.total - 1}.")
        if self.seen[i]:
            self.duplicates += 1
            return []
        self.seen[i] = True
        self.pending[i] = result
        ready = []
        while self.next in self.pending:
            ready.append(self.pending.pop(self.next))
            self.next += 1
        return ready

    def missing(self) -> np.ndarray:
        return np.flatnonzero(~self.seen)

    @property
    def done(self) -> bool:
        return self.next == self.total


def check_model(model: str | os.PathLike[str]) -> Path:
    """The model file a Ray job can ship to workers (.tflite/.onnx), or a one-line :class:`ModelError`."""
    path = Path(model)
    if path.is_dir():
        raise ModelError(f"--engine ray runs exported models (.tflite or .onnx); {path} is a folder. "
                         f"Pass the exported file, e.g. {path}/export/model_int8.tflite.")
    if not path.exists():
        raise ModelError(f"Model not found: {path}")
    if path.suffix.lower() not in RAY_SUFFIXES:
        raise ModelError(f"--engine ray runs .tflite or .onnx models (workers have no TensorFlow); received "
                         f"{path.name}. Export it first: edgecnn export {path}.")
    return path


def _model_payload(model: str | os.PathLike[str]) -> tuple[str, bytes, dict[str, bytes]]:
    path = check_model(model)
    names = (*SIDE_FILES, path.with_suffix(".json").name, "modelcard.json")  # a partial card beside a foreign model
    side = {n: (path.parent / n).read_bytes() for n in names if (path.parent / n).is_file()}
    return path.name, path.read_bytes(), side


def shippable(conventions: Any) -> Any:
    """Conventions a worker on any node can use: a ``--labels`` file read into its labels here."""
    if conventions is None or conventions.labels is None or isinstance(conventions.labels, list):
        return conventions
    import dataclasses

    from edgecnn.conventions import read_labels

    return dataclasses.replace(conventions, labels=read_labels(conventions.labels))


def plan_workers(cluster: Any, opts: ScaleOptions) -> tuple[int, int]:
    """(actors, CPUs per actor) for a cluster: ``--workers``/``--threads`` or one actor per node using its CPUs."""
    nodes = cluster.cpu_nodes()
    total = cluster.cpus
    if total < 1:
        raise ConfigError(f"The Ray cluster {cluster.describe()} has no CPUs to run on.")
    workers = opts.workers or max(1, len(nodes))
    if opts.threads:
        threads = opts.threads
    else:
        per_node = min(int(n["Resources"]["CPU"]) for n in nodes) if nodes else 1
        threads = max(1, min(per_node, total // workers))
    biggest = max((int(n["Resources"]["CPU"]) for n in nodes), default=0)
    if threads > biggest:
        raise ConfigError(f"Expected --threads at most {biggest} (the most CPUs of one node in "
                          f"{cluster.describe()}); received {threads}.")
    return workers, threads


def _raylet_reachable(node: dict[str, Any], timeout: float = 2.0) -> bool:
    """Whether a node's raylet still accepts TCP connections (True when its address is unknown)."""
    import socket

    host, port = node.get("NodeManagerAddress"), node.get("NodeManagerPort")
    if not host or not port:
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _actor_report(job_id: str) -> tuple[int, int]:
    """(actors of this job's predictor, their restarts) from the GCS actor table; (0, 0) when unavailable."""
    try:
        from ray._private.state import state  # GCS-backed; the public state API needs the dashboard

        table = state.actor_table(None)
    except Exception:  # noqa: BLE001  (a report detail, never a reason to fail the job)
        return 0, 0
    actors = [a for a in table.values() if "BatchPredictor" in str(a.get("ActorClassName", ""))
              and a.get("JobID") == job_id]
    return len(actors), sum(int(a.get("NumRestarts", 0)) for a in actors)


def predict_files(
    files: list[str],
    model: str | os.PathLike[str],
    opts: ScaleOptions,
    *,
    backend: str = "auto",
    providers: list[str] | None = None,
    topk: int = 5,
    threshold: float = 0.0,
    want_probs: bool = False,
    report: JobReport | None = None,
) -> Iterator[Result]:
    """Classify ``files`` on Ray; yields one :class:`Result` per file, in the order of ``files``.

    Must run inside :func:`edgecnn.scale.cluster.ray_session`. ``report`` is filled as the job runs.

    Raises:
        RayJobError: the job failed and a second pass did not bring every input back.
    """
    import pyarrow as pa
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    from edgecnn.scale.cluster import ClusterInfo, alive_nodes

    if backend not in ("auto", *RAY_BACKENDS):
        raise ConfigError(f"Expected --backend auto or one of {list(RAY_BACKENDS)} with --engine ray; received "
                          f"{backend!r}.")
    report = report if report is not None else JobReport()
    name, payload, side = _model_payload(model)
    start_nodes = {n["NodeID"]: n for n in alive_nodes()}
    cluster = ClusterInfo(address=opts.address, started_here=False, nodes=alive_nodes())
    workers, threads = plan_workers(cluster, opts)
    batch = max(1, opts.batch)
    rows = opts.rows_per_task or max(batch, DEFAULT_ROWS_PER_TASK // batch * batch)
    report.inputs, report.workers, report.threads, report.nodes = len(files), workers, threads, len(cluster.nodes)
    report.cluster = cluster.describe()

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True
    show = opts.progress if opts.progress is not None else (interactive() and not is_quiet())
    ctx.enable_progress_bars = show
    ctx.print_on_execution_start = opts.verbose
    t0 = time.perf_counter()
    order = InOrder(len(files))
    job_id = ray.get_runtime_context().get_job_id()
    todo = np.arange(len(files), dtype=np.int64)
    model_ref = [ray.put(payload)]
    last_status = time.perf_counter()
    rows_by_worker: Counter[str] = Counter()
    for attempt in (1, 2):
        report.passes = attempt
        table = pa.table({"index": pa.array(todo, pa.int64()), "path": pa.array([files[i] for i in todo], pa.string())})
        blocks = [table.slice(i, rows) for i in range(0, len(todo), rows)]
        ds = ray.data.from_arrow(blocks).map_batches(
            BatchPredictor,
            fn_constructor_kwargs={"model_name": name, "model_bytes": model_ref, "side_files": side, "backend": backend,
                                   "threads": threads, "batch": batch, "topk": topk, "threshold": threshold,
                                   "providers": providers, "want_probs": want_probs,
                                   "conventions": shippable(opts.conventions)},
            batch_size=rows,
            batch_format="numpy",
            compute=ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers),
            num_cpus=threads,
            # Ray Data's actor pool already makes its actors restartable (max_restarts=-1) and retries their
            # tasks (max_task_retries=-1); passing them here is deprecated (ray_remote_args) since Ray 2.5x.
        )
        try:
            for out in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
                before = order.duplicates
                rows = list(decode_rows(out))
                ready = [r for result, _w in rows for r in order.add(result)]
                if rows:  # one batch comes from one actor; duplicates are not counted
                    worker = rows[0][1]
                    if not report.first_row_s:
                        report.first_row_s = time.perf_counter() - t0
                    if "busy_ms" in out:
                        report.busy_s_by_worker[worker] = (report.busy_s_by_worker.get(worker, 0.0)
                                                           + float(np.sum(out["busy_ms"])) / 1000.0)
                    rows_by_worker[worker] += len(rows) - (order.duplicates - before)
                    node = worker.split(":")[0][:8]
                    report.rows_by_node[node] = report.rows_by_node.get(node, 0) + len(rows) - (
                        order.duplicates - before)
                yield from ready
                if not show and not is_quiet() and time.perf_counter() - last_status >= 10.0:
                    last_status = time.perf_counter()
                    done = int(order.seen.sum())
                    info(f"ray: {done}/{len(files)} inputs, {done / (last_status - t0):.1f}/s")
        except (ray.exceptions.RayError, ray.exceptions.RaySystemError) as exc:
            text = str(exc).strip().splitlines()
            first = next((ln for ln in text if "Error" in ln), text[0] if text else type(exc).__name__)
            if isinstance(exc, ray.exceptions.RayTaskError) and "EdgeCNNError" in "".join(text) or \
                    "MissingDependencyError" in "".join(text) or "ModelError" in "".join(text):
                raise RayJobError(f"A Ray worker could not run {name}: {first.strip()} (install "
                                  f"'edgecnn[ray,tflite]' or 'edgecnn[ray,onnx]' on every node).") from exc
            report.pass_errors.append(f"{type(exc).__name__}: {first.strip()[:200]}")
            if attempt == 2:
                raise RayJobError(f"The Ray job failed twice; {len(order.missing())} of {len(files)} inputs have no "
                                  f"row. Last error: {first.strip()[:300]}") from exc
        todo = order.missing()
        if not len(todo):
            break
        if attempt == 1:
            report.rerun = [files[i] for i in todo]
            warn(f"{len(todo)} of {len(files)} inputs came back without a row; re-running them on Ray.")
    if not order.done:
        raise RayJobError(f"{len(order.missing())} of {len(files)} inputs still have no row after a second Ray "
                          f"pass (first: {files[int(order.missing()[0])]}).")
    report.duplicates = order.duplicates
    alive = {n["NodeID"] for n in alive_nodes()}
    # The GCS marks a dead node only after its health checks time out (seconds to a minute); a raylet that no
    # longer accepts connections is gone already.
    report.lost_nodes = [f"{n.get('NodeManagerAddress', '?')} ({nid[:8]})" for nid, n in start_nodes.items()
                         if nid not in alive or not _raylet_reachable(n)]
    report.actors, report.actor_restarts = _actor_report(job_id)
    # A worker process that died mid-job is replaced by a new one (new pid) that re-runs its batches.
    report.replaced_workers = max(0, len(rows_by_worker) - workers)
    report.elapsed_s = time.perf_counter() - t0
