"""ONNX Runtime backend: providers in order (with fallback), the saved optimized model, node placement."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.console import warn
from edgecnn.errors import ModelError
from edgecnn.modelcard import ModelCard, load_card, onnx_labels
from edgecnn.runtime.backends.base import Backend, TensorInfo

#: ONNX Runtime providers tried in this order when ``--providers`` is not given (those not installed are skipped).
DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(double)": np.float64,
}


class ONNXBackend(Backend):
    """onnxruntime (or onnxruntime-gpu) session with providers in order.

    ``spin`` keeps onnxruntime's default, worker threads that spin-wait between nodes: on a CPU it is what makes a
    second thread pay for a graph of small int8 kernels (int8/fp32 p50 0.47-0.53 on two threads with it, 0.61-0.68
    without: ``benchmarks/int8_ratio.py``). ``spin=False`` lets them sleep, for a run whose decoding threads share
    the cores (a folder run spent 10 % more wall time and 27 % more CPU with spinning).

    With a GPU provider (TensorRT, CUDA) in the session, the first inference runs with ONNX Runtime's profiler on,
    and :meth:`info` then reports which provider ran each node (``node_providers``): a model whose nodes
    fell back to the CPU is visible. A GPU provider that cannot start (no CUDA libraries, no TensorRT) makes the
    session fall back to the next provider, with ONE warning that names the reason.
    """

    name = "onnx"
    suffixes = (".onnx",)
    extra = "onnx"
    modules = ("onnxruntime",)
    #: Profile the first inference to learn the node placement: None = when a non-CPU provider is in the session.
    profile_placement: bool | None = None

    def __init__(self, path: str | os.PathLike[str], *, spin: bool = True, **kwargs: Any) -> None:
        self.spin = spin
        super().__init__(path, **kwargs)

    def _load(self) -> None:
        from edgecnn.errors import require

        ort = require("onnxruntime", "onnx", "to run .onnx models")
        self._ort = ort
        available = ort.get_available_providers()
        if self.requested_providers:
            wanted = [_provider_name(p) for p in self.requested_providers]
            missing = [p for p in wanted if p not in available]
            if missing:
                raise ModelError(f"ONNX Runtime providers {missing} are not available here; available: {available}.")
        else:
            wanted = [p for p in DEFAULT_PROVIDERS if p in available] or ["CPUExecutionProvider"]
        so = self._session_options(ort, cpu_only=wanted == ["CPUExecutionProvider"])
        self.node_providers: dict[str, int] | None = None
        profile = self.profile_placement if self.profile_placement is not None else wanted != ["CPUExecutionProvider"]
        self._profile_dir = None
        if profile:
            import tempfile

            self._profile_dir = tempfile.mkdtemp(prefix="edgecnn-ort-profile-")
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(self._profile_dir) / "placement")
        self.session = None
        cache, staged = self._ort_cache(ort, wanted), None
        if cache is not None:
            cached = cache.lookup()
            if cached is not None:
                warm = self._session_options(ort, cpu_only=True)
                warm.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # optimized already
                if self._profile_dir is not None:
                    warm.enable_profiling = True
                    warm.profile_file_prefix = so.profile_file_prefix
                try:
                    self.session = ort.InferenceSession(str(cached), warm, providers=wanted)
                    cache.status = "hit"
                except Exception:  # noqa: BLE001  (an entry this onnxruntime cannot load: rebuild it)
                    cache.discard()
            if self.session is None:
                staged = cache.staging_path()
                if staged is not None:
                    so.optimized_model_filepath = str(staged)
        errors = []
        while wanted and self.session is None:
            try:
                self.session = ort.InferenceSession(str(self.path), so, providers=wanted)
                if staged is not None:
                    cache.commit(staged)
                    staged = None
                break
            except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own Fail/InvalidGraph types)
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if "INVALID_PROTOBUF" in msg or "INVALID_GRAPH" in msg or "Protobuf parsing failed" in msg or len(wanted) == 1:
                    raise ModelError(f"{self.path.name} cannot be loaded by onnxruntime: {msg}") from exc
                errors.append(f"{wanted[0]}: {msg}")
                wanted = wanted[1:]
                if wanted == ["CPUExecutionProvider"] and not self.spin:
                    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if staged is not None:  # the session failed: drop the half-written optimized model
            with contextlib.suppress(OSError):
                staged.unlink()
        if cache is not None:
            self.init_cache_status = cache.status
        started = self.session.get_providers()
        silent = [p for p in wanted if p not in started and p != "CPUExecutionProvider"]
        if silent:  # onnxruntime-gpu starts without a provider whose libraries are missing, and only logs it
            errors += [f"{p}: could not start here (missing CUDA/cuDNN/TensorRT libraries?)" for p in silent]
        if errors:
            warn("ONNX Runtime fell back from " + "; ".join(errors) + f"; running on {started[0]}.")
        inp = self.session.get_inputs()[0]
        out = self.session.get_outputs()[0]
        shape = tuple(d if isinstance(d, int) else None for d in inp.shape)
        self._dynamic_batch = shape[0] is None
        self.input = TensorInfo(inp.name, shape, np.dtype(_ORT_DTYPES.get(inp.type, np.float32)))
        self.output = TensorInfo(out.name, tuple(d if isinstance(d, int) else None for d in out.shape), np.dtype(_ORT_DTYPES.get(out.type, np.float32)))
        self._out_name = out.name
        self.output_shapes = [tuple(d if isinstance(d, int) else None for d in o.shape) for o in self.session.get_outputs()]

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        out = self.session.run([self._out_name], {self.input.name: prepared})[0]
        if self._profile_dir is not None:
            self._read_placement()
        return out

    def _read_placement(self) -> None:
        """Stop the profiler after the first run and count the nodes each provider ran."""
        profile_dir, self._profile_dir = self._profile_dir, None
        try:
            self.node_providers = node_placement(self.session.end_profiling())
        except (OSError, ValueError):
            self.node_providers = None
        finally:
            import shutil

            shutil.rmtree(profile_dir, ignore_errors=True)

    def _read_card(self) -> ModelCard | None:
        return load_card(self.path, onnx_session=self.session)  # get_modelmeta() of this session: no second load

    def _standard_labels(self) -> list[str] | None:
        return onnx_labels(dict(self.session.get_modelmeta().custom_metadata_map))

    def _producer_metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def _session_options(self, ort: Any, cpu_only: bool) -> Any:
        so = ort.SessionOptions()
        if self.threads:
            so.intra_op_num_threads = int(self.threads)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if cpu_only and not self.spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def _ort_cache(self, ort: Any, providers: list[str]) -> Any:
        """The saved optimized model's cache entry: CPU sessions only (GPU providers keep their own caches)."""
        from edgecnn.runtime.initcache import InitCache, cache_enabled

        if not (self.init_cache and cache_enabled() and providers == ["CPUExecutionProvider"]):
            return None
        level = "ORT_ENABLE_ALL"  # SessionOptions' default, used for the cold start that writes the entry
        try:
            return InitCache("ort", self.path, {"onnxruntime": ort.__version__, "providers": providers,
                                                "optimization": level}, ".onnx")
        except OSError:
            return None

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "runtime": "onnxruntime",
            "runtime_version": self._ort.__version__,
            "threads": self.threads,
            "delegate": None,
            "provider": self.provider,
            "providers": self.session.get_providers(),
            "node_providers": self.node_providers,
            "init_cache": self.init_cache_status,
            "spin": self.spin,
        }

    def close(self) -> None:
        if self._profile_dir is not None:
            import shutil

            shutil.rmtree(self._profile_dir, ignore_errors=True)
            self._profile_dir = None
        self.session = None


def node_placement(profile_json: str | os.PathLike[str]) -> dict[str, int]:
    """{provider: nodes it ran} from an ONNX Runtime profile (its ``Node`` events carry ``args.provider``)."""
    import json

    events = json.loads(Path(profile_json).read_text(encoding="utf-8"))
    nodes: dict[str, str] = {}
    for e in events:
        args = e.get("args") or {}
        if e.get("cat") == "Node" and args.get("provider"):
            nodes[str(e.get("name", "")).rsplit("_kernel_time", 1)[0]] = args["provider"]
    counts: dict[str, int] = {}
    for provider in nodes.values():
        counts[provider] = counts.get(provider, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def describe_placement(node_providers: dict[str, int] | None) -> str | None:
    """``"14 nodes on CUDAExecutionProvider, 2 on CPUExecutionProvider"``, or None when unknown."""
    if not node_providers:
        return None
    parts = [f"{n} on {p}" for p, n in node_providers.items()]
    return f"{sum(node_providers.values())} nodes: " + ", ".join(parts)


def _provider_name(p: str) -> str:
    short = {"tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
             "cpu": "CPUExecutionProvider", "openvino": "OpenVINOExecutionProvider", "coreml": "CoreMLExecutionProvider"}
    return short.get(p.lower(), p)
