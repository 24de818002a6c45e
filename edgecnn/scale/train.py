"""``edgecnn train --engine ray --workers N``: Keras data-parallel training across Ray Train workers (JAX).

Each Ray Train worker is one JAX process. Rank 0 publishes a coordinator address (``broadcast_from_rank_zero``),
every worker calls ``keras.distribution.initialize`` (``jax.distributed``), and then runs edgecnn's own trainer
(:func:`edgecnn.training.train`) with ``--backend jax --devices all``: the devices of all processes form one
``keras.distribution.DataParallel`` mesh, each process feeds its slice of every global batch, gradients are
all-reduced, so N workers take the same optimisation steps (global batch ``--batch``) as one.

Rank 0 writes the normal run folder (``--project``/``--name``, on a filesystem every worker and the driver
share); the other ranks train in a scratch folder that is removed. The result exports like any run.

Why JAX and not TensorFlow's ``MultiWorkerMirroredStrategy`` (Ray Train's ``TensorflowTrainer``): Keras 3 does not
work with MultiWorkerMirroredStrategy (keras-team/keras#20585), Ray's TensorFlow trainer example fails with
Keras 3 (ray-project/ray#47464), and Ray's TensorFlow backend sets ``TF_USE_LEGACY_KERAS=1`` on its workers
(Keras 2 semantics). ``keras.distribution`` is Keras 3's multi-process API, on JAX.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgecnn.console import info
from edgecnn.errors import ConfigError, EdgeCNNError
from edgecnn.scale.cluster import ray_session
from edgecnn.scale.infer import ScaleOptions, plan_workers


class RayTrainError(EdgeCNNError):
    """Multi-worker training failed on the cluster."""


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: join the JAX process group, then train with edgecnn's trainer."""
    os.environ["KERAS_BACKEND"] = "jax"
    import socket

    import ray.train
    from ray.train.collective import broadcast_from_rank_zero

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    address = None
    if rank == 0:
        host = ray.util.get_node_ip_address()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            address = f"{host}:{s.getsockname()[1]}"
    address = broadcast_from_rank_zero(address)
    import keras

    keras.distribution.initialize(address, world, rank)

    from edgecnn.console import set_quiet
    from edgecnn.training import TrainConfig, train

    cfg = TrainConfig(**config["cfg"])
    cfg.backend, cfg.devices = "jax", "all"
    scratch = None
    if rank:
        scratch = tempfile.mkdtemp(prefix="edgecnn-train-rank")
        cfg.project, cfg.name, cfg.plots, cfg.exist_ok, cfg.resume = scratch, "run", False, False, False
        set_quiet(True)
    try:
        result = train(cfg)
        metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float, str))}
        ray.train.report({"run_dir": str(result.run_dir), "rank": rank, **metrics})
    finally:
        if scratch:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)


def train_on_ray(scale: ScaleOptions, *, preset: str | None = None, config: Any = None, **options: Any) -> Any:
    """``edgecnn train --engine ray``: options as :func:`edgecnn.train` takes them (``workers`` = Ray Train workers)."""
    from enum import Enum

    from edgecnn.training import build_config

    def plain(v: Any) -> Any:
        return v.value if isinstance(v, Enum) else str(v) if isinstance(v, os.PathLike) else v

    overrides = {k: plain(v) for k, v in options.items()}
    overrides["workers"] = None  # --workers counts Ray Train workers here, not decoding threads
    overrides["backend"] = overrides.get("backend") or "jax"  # multi-process Keras 3 is keras.distribution
    return train_ray(build_config(preset=preset, config_file=config, overrides=overrides), scale)


def train_ray(cfg: Any, scale: ScaleOptions) -> Any:
    """Train ``cfg`` across ``scale.workers`` Ray Train workers; returns the :class:`TrainResult` of the run folder.

    Raises:
        ConfigError: a backend other than JAX, or more workers than the cluster can hold.
        RayTrainError: training failed on a worker.
    """
    from edgecnn.scale.cluster import require_ray

    require_ray("for train --engine ray")
    if cfg.backend not in (None, "jax"):
        raise ConfigError(
            f"train --engine ray trains with --backend jax (keras.distribution across processes); received --backend "
            f"{cfg.backend}. Keras 3 does not run TensorFlow's MultiWorkerMirroredStrategy (keras-team/keras#20585)."
        )
    from ray.train import RunConfig, ScalingConfig
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    from edgecnn.training.trainer import TrainResult, resolve_run_dir

    cfg.backend = "jax"
    run_dir = Path(resolve_run_dir(cfg)).resolve()  # refuse an existing run now, not on a worker
    cfg.project, cfg.name = str(run_dir.parent), run_dir.name
    if cfg.data:
        cfg.data = str(Path(cfg.data).resolve())
    if cfg.test_data:
        cfg.test_data = str(Path(cfg.test_data).resolve())
    with ray_session(scale.address, verbose=scale.verbose) as cluster:
        workers, threads = plan_workers(cluster, scale)
        if cfg.batch % workers:
            raise ConfigError(f"Expected --batch divisible by --workers {workers} (the global batch is split evenly); "
                              f"received {cfg.batch}. Use --batch {max(workers, cfg.batch - cfg.batch % workers)}.")
        info(f"Training on {cluster.describe()}: {workers} Ray Train worker(s) x {threads} CPU(s), JAX data-parallel, "
             f"global batch {cfg.batch}")
        storage = tempfile.mkdtemp(prefix="edgecnn-raytrain-")
        trainer = DataParallelTrainer(
            _worker_loop,
            train_loop_config={"cfg": asdict(cfg)},
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": threads}),
            run_config=RunConfig(name=f"edgecnn-{run_dir.name}", storage_path=storage),
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # noqa: BLE001  (Ray wraps a worker's error; name its first line)
            text = str(exc).strip().splitlines()
            raise RayTrainError(f"Training on Ray failed: {text[-1] if text else type(exc).__name__}") from exc
    reported = result.metrics or {}
    if not (run_dir / "model.keras").exists():
        raise RayTrainError(f"Training on Ray finished but {run_dir}/model.keras is missing; the run folder must be on "
                            f"a filesystem that the workers and this machine share.")
    import json

    from edgecnn.modelcard import ModelCard

    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    card = ModelCard.from_json((run_dir / "modelcard.json").read_bytes())
    info(f"Ray Train: {workers} workers; rank 0 reported {reported.get('run_dir', run_dir)}")
    return TrainResult(run_dir=run_dir, model_path=run_dir / "model.keras", metrics=metrics, card=card, history=[])
