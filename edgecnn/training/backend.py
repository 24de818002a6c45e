"""Which Keras backend trains, choosing it before Keras is imported, and what accelerators it sees.

Keras 3 reads ``KERAS_BACKEND`` once, when ``keras`` is first imported. :func:`activate` sets it (and, for JAX,
the XLA flag that splits a CPU-only host into N devices) when Keras is not imported yet; when Keras is already
imported with another backend it says so, and the trainer then trains in a child process instead.

Importing this module imports no framework; :func:`detect` imports the active backend only.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from edgecnn.errors import ConfigError

#: The Keras backends that can train (the registry behind ``--backend``).
KERAS_BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
#: ``--devices``: a count or this word for every accelerator the backend sees.
ALL_DEVICES = "all"
_XLA_CPU_DEVICES = "--xla_force_host_platform_device_count"


def default_backend() -> str:
    """``$KERAS_BACKEND`` when it names a training backend, else tensorflow."""
    env = os.environ.get("KERAS_BACKEND", "").strip().lower()
    return env if env in KERAS_BACKENDS else DEFAULT_BACKEND


def parse_devices(text: str | int) -> int | None:
    """``"N"`` → N (>= 1); ``"all"`` → None. Raises ConfigError otherwise."""
    value = str(text).strip().lower()
    if value == ALL_DEVICES:
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ConfigError(f"Expected --devices N (>= 1) or '{ALL_DEVICES}'; received {text!r}.")


def imported_backend() -> str | None:
    """The backend of an already imported Keras, or None when Keras is not imported yet."""
    if "keras" not in sys.modules:
        return None
    import keras

    return str(keras.backend.backend())


def activate(backend: str, devices: int | None = 1) -> bool:
    """Make ``backend`` the one Keras will use in this process. Returns False when Keras is already imported with
    another backend (this process cannot switch; train in a child process).

    With ``devices`` > 1 on JAX, also asks XLA for that many host (CPU) devices when JAX is not imported yet, so a
    CPU-only host can run the data-parallel path; on a GPU host JAX lists the GPUs and the flag changes nothing.
    """
    current = imported_backend()
    if current is not None:
        return current == backend
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax" and devices and devices > 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if _XLA_CPU_DEVICES not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {_XLA_CPU_DEVICES}={devices}".strip()
    if backend == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return True


@dataclass
class Accelerators:
    """What the active backend trains on: ``kind`` is ``gpu`` (or ``tpu``) or ``cpu``; ``names`` one per device."""

    backend: str
    backend_version: str
    kind: str
    names: list[str] = field(default_factory=list)
    handles: list[Any] = field(default_factory=list, repr=False)  # the backend's own device objects / names

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def on_gpu(self) -> bool:
        return self.kind != "cpu"

    def describe(self) -> str:
        if not self.names:
            return f"{self.backend} on CPU"
        counts: dict[str, int] = {}
        for n in self.names:
            counts[n] = counts.get(n, 0) + 1
        what = ", ".join(f"{c} × {n}" if c > 1 else n for n, c in counts.items())
        return f"{self.backend} {self.backend_version} on {self.kind.upper()}: {what}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("handles")
        d["count"] = self.count
        return d


def cpu_name() -> str:
    from edgecnn.sysinfo import cpu_model

    return cpu_model() or platform.processor() or platform.machine()


def detect(backend: str) -> Accelerators:
    """Accelerators the (active) ``backend`` sees; CPU devices when it sees none."""
    if backend == "jax":
        import jax

        devs = jax.devices()
        kind = devs[0].platform if devs else "cpu"
        names = [cpu_name() if d.platform == "cpu" else str(getattr(d, "device_kind", d)) for d in devs]
        return Accelerators("jax", jax.__version__, "cpu" if kind == "cpu" else kind, names, list(devs))
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            names = [torch.cuda.get_device_name(i) for i in range(n)]
            return Accelerators("torch", torch.__version__, "gpu", names, [f"cuda:{i}" for i in range(n)])
        return Accelerators("torch", torch.__version__, "cpu", [cpu_name()], ["cpu"])
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for g in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(g).get("device_name") or g.name)
            except Exception:  # noqa: BLE001 - details are informational
                names.append(g.name)
        return Accelerators("tensorflow", tf.__version__, "gpu", names,
                            [re.sub(r"^/physical_device:", "/", g.name) for g in gpus])
    cpus = tf.config.list_logical_devices("CPU")
    return Accelerators("tensorflow", tf.__version__, "cpu", [cpu_name()] * max(1, len(cpus)),
                        [c.name for c in cpus] or ["/CPU:0"])



def keep_tensorflow_out(backend: str) -> None:
    """On jax/torch, stop Keras from importing an installed TensorFlow behind our back.

    Keras probes ``module_utils.tensorflow.available`` (importing TensorFlow, seconds and ~1 GB) in
    ``set_random_seed`` and ``model.save`` only to test ``isinstance(obj, tf.TensorShape)``-like cases, which
    cannot be true when TensorFlow was never imported. The probe is answered "not available"; any real use of
    ``tf.<name>`` still imports it.
    """
    if backend == "tensorflow" or "tensorflow" in sys.modules:
        return
    from keras.src.utils import module_utils

    if module_utils.tensorflow.module is None:
        module_utils.tensorflow._available = False
