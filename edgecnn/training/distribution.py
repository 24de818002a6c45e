"""Data-parallel training across the local devices of the active backend (``--devices N|all``).

- JAX: ``keras.distribution.DataParallel`` (one replica per device, the batch sharded along its first axis).
- TensorFlow: ``tf.distribute.MirroredStrategy`` (model built and compiled in its scope).
- PyTorch: Keras 3 has no data-parallel ``fit`` on this backend, so more than one device is refused in one line.

``--batch`` is the GLOBAL batch: each of N devices gets batch/N images per step, and the learning rate is
used as given (no linear scaling), so N devices take the same optimisation steps as one. Both facts are
written into metrics.json and the model card.

On a host without enough accelerators, N > 1 splits the CPU into N logical devices (TensorFlow's
``set_logical_device_configuration``, JAX's ``--xla_force_host_platform_device_count``): it exercises the
data-parallel path (CI does) without a speed-up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from edgecnn.console import warn
from edgecnn.errors import ConfigError
from edgecnn.training.backend import Accelerators

LR_SCALING = "none"


def prepare(backend: str, requested: int | None) -> None:
    """Before the backend initialises: on a TensorFlow host without GPUs, split the CPU into ``requested`` devices."""
    if backend != "tensorflow" or not requested or requested < 2:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * requested)
    except RuntimeError as exc:  # the runtime is already up in this process
        if len(tf.config.list_logical_devices("CPU")) < requested:
            raise ConfigError(
                f"TensorFlow is already initialised in this process with "
                f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s), so --devices {requested} cannot split "
                "the CPU; run edgecnn train in a fresh process."
            ) from exc
    warn(f"No GPU: splitting the CPU into {requested} logical devices (exercises data-parallel training, no speed-up).")


@dataclass
class Plan:
    """How a run is spread over devices."""

    backend: str
    devices: int
    strategy: str
    global_batch: int
    device_names: list[str] = field(default_factory=list)
    _strategy: Any = field(default=None, repr=False)
    #: JAX processes of a multi-process run (``edgecnn train --engine ray``) and this one's index: each process
    #: feeds its slice of every global batch.
    processes: int = 1
    process_index: int = 0

    @property
    def per_device_batch(self) -> int:
        return self.global_batch // self.devices

    @property
    def parallel(self) -> bool:
        return self.devices > 1

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where the model must be built, loaded and compiled (the MirroredStrategy scope on TensorFlow)."""
        return self._strategy.scope() if self._strategy is not None else contextlib.nullcontext()

    def to_dict(self) -> dict[str, Any]:
        out = {"strategy": self.strategy, "devices": self.devices, "global_batch": self.global_batch,
               "per_device_batch": self.per_device_batch, "lr_scaling": LR_SCALING}
        if self.processes > 1:  # edgecnn train --engine ray: devices of several JAX processes
            out["processes"] = self.processes
        return out


def plan(acc: Accelerators, requested: int | None, batch: int) -> Plan:
    """Check ``requested`` devices (None = all) against what the backend sees and set the distribution up.

    Raises:
        ConfigError: more devices than the backend sees, torch with more than one device, or a batch that does
            not split evenly.
    """
    n = acc.count if requested is None else requested
    if n > 1 and acc.backend == "torch":
        raise ConfigError(
            f"--devices {n} with --backend torch: Keras 3 has no data-parallel fit on PyTorch; "
            "use --backend jax (DataParallel) or tensorflow (MirroredStrategy), or --devices 1."
        )
    if n > acc.count:
        hint = (" On a CPU-only host start it with XLA_FLAGS=--xla_force_host_platform_device_count=N."
                if acc.backend == "jax" and not acc.on_gpu else "")
        raise ConfigError(f"Expected {n} devices for --devices; {acc.describe()} has {acc.count}.{hint}")
    if batch % n:
        raise ConfigError(f"Expected --batch divisible by {n} devices; received {batch}. Use --batch {batch - batch % n or n}.")
    names = acc.names[:n]
    if n == 1:
        return Plan(acc.backend, 1, "single-device", batch, names)
    if acc.backend == "jax":
        import jax
        import keras

        devices = keras.distribution.list_devices()[:n]
        processes = jax.process_count()
        # Several processes (keras.distribution.initialize): Keras auto-shards only tf.data, so each process feeds
        # its own slice of the global batch (ArrayBatches(shard=...)) and Keras assembles the global array.
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices,
                                                                            auto_shard_dataset=processes == 1))
        return Plan("jax", n, "keras.distribution.DataParallel", batch, names, processes=processes,
                    process_index=jax.process_index())
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(devices=acc.handles[:n])
    return Plan("tensorflow", n, "tf.distribute.MirroredStrategy", batch, names, strategy)


def release(p: Plan | None) -> None:
    """Undo :func:`plan` (the process-wide JAX distribution)."""
    if p is not None and p.parallel and p.backend == "jax":
        import keras

        keras.distribution.set_distribution(None)


@contextlib.contextmanager
def planned(acc: Accelerators, requested: int | None, batch: int) -> Iterator[Plan]:
    p = plan(acc, requested, batch)
    try:
        yield p
    finally:
        release(p)
