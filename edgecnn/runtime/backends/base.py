"""Inference backends, chosen by file type or by name: TFLite (LiteRT), ONNX Runtime, Keras (reference).

Each backend owns the model's input contract, read from the model card embedded in the artifact:
host preprocessing (:func:`edgecnn.imaging.preprocess` with the card's size, colour and interpolation),
dtype, quantize/dequantize with the tensor's own scale and zero-point, and the batch dimension.

Nothing here imports TensorFlow at module level; the Keras backend imports Keras only when a ``.keras``
model is run, and the TFLite backend falls back to ``tf.lite`` only when neither LiteRT nor
tflite-runtime is installed and TensorFlow happens to be.

Size (over the house's ~400 lines, on purpose for now): the seam is one module per backend
(``runtime/backends/{tflite,onnx,keras}.py`` with this registry in ``__init__``); it waits until the XNNPACK
weight cache / saved ORT model (issue 12) and GPU serving (issue 14), being written in these classes, land.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgecnn.console import warn
from edgecnn.errors import MissingDependencyError, ModelError
from edgecnn.imaging import color_for_channels, preprocess
from edgecnn.metrics import class_probs
from edgecnn.modelcard import (
    LABELS_FILENAME,
    InputSpec,
    ModelCard,
    OutputSpec,
    Preprocessing,
    Quantization,
    load_card,
    onnx_labels,
    read_labels_txt,
)
from edgecnn.runtime.keras_model import KERAS_FORMAT, KERAS_SUFFIXES

#: ONNX Runtime providers tried in this order when ``--providers`` is not given (those not installed are skipped).
DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")

#: Short names accepted by ``--delegate``, mapped to the library each platform ships.
DELEGATE_ALIASES = {
    "edgetpu": {"posix": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "nt": "edgetpu.dll"},
}


def delegate_library(name: str) -> str:
    """``edgetpu`` → ``libedgetpu.so.1`` (per platform); any other name or path is returned unchanged."""
    import sys

    alias = DELEGATE_ALIASES.get(name.lower())
    if alias is None:
        return name
    return alias["darwin"] if sys.platform == "darwin" else alias["nt" if os.name == "nt" else "posix"]


@dataclass
class TensorInfo:
    """Shape, dtype and quantization of a model's input or output tensor."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    quantization: Quantization | None = None


class Backend:
    """A loaded model ready for inference on uint8 NHWC batches.

    Subclasses implement :meth:`_load`, :meth:`infer` and (optionally) :meth:`_resize_batch`.
    """

    name: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""

    def __init__(
        self,
        path: str | os.PathLike[str],
        threads: int | None = None,
        delegate: str | None = None,
        delegate_options: dict[str, str] | None = None,
        providers: list[str] | None = None,
        init_cache: bool = True,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ModelError(f"Model not found: {self.path}")
        self.threads = threads
        self.delegate = delegate
        self.delegate_options = delegate_options or {}
        self.requested_providers = providers
        self.init_cache = init_cache
        #: What the init cache did on this start: "hit", "stored", "rebuilt", "unwritable" or "off"
        #: (see :mod:`edgecnn.runtime.initcache`; backends without one report "off").
        self.init_cache_status = "off"
        t0 = time.perf_counter()
        self._load()
        self.init_seconds = time.perf_counter() - t0
        self.card = self._resolve_card()
        self.output.quantization = self.output.quantization or self.card.output.quantization
        if self.input.quantization is None and self.input.dtype.kind in "iu":
            self.input.quantization = self.card.input.quantization
        if self.input.dtype.kind in "iu" and self.input.quantization is None:
            raise ModelError(f"{self.path.name}: integer input without quantization parameters; re-export the model.")

    # ------------------------------------------------------------------ subclass hooks
    input: TensorInfo
    output: TensorInfo

    def _load(self) -> None:
        raise NotImplementedError

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        """Run the model on an already prepared input tensor; returns the raw output tensor."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """What actually runs: runtime library and version, provider/delegate, threads."""
        return {"backend": self.name, "threads": self.threads}

    def close(self) -> None:
        """Release the runtime's resources."""

    # ------------------------------------------------------------------ common behaviour
    @property
    def max_batch(self) -> int | None:
        """Largest batch the model accepts (None: any)."""
        b = self.input.shape[0] if self.input.shape else None
        return b if isinstance(b, int) and b > 0 and not self._dynamic_batch else None

    _dynamic_batch = True

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 image (any size) → model-sized uint8 HxWxC, the same function training used."""
        spec = self.card.input
        return preprocess(rgb, spec.height, spec.width, self.card.preprocessing.color, self.card.preprocessing.resize)

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        """uint8 NHWC pixels (0..255) → the input tensor's dtype, quantized with its scale/zero-point.

        A model whose metadata asks for host-side normalization (``(x - mean) / std``, e.g. a MediaPipe Model
        Maker export) gets it here; edgecnn models rescale inside the graph (mean 0, std 1) and skip it.
        """
        batch = np.asarray(batch)
        if batch.ndim == 3:
            batch = batch[None]
        q = self.input.quantization
        pre = self.card.preprocessing
        if pre.normalizes:
            x = (batch.astype(np.float32) - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
            if self.input.dtype.kind in "iu" and q is not None:
                return q.quantize(x, self.input.dtype)
            return np.ascontiguousarray(x, dtype=self.input.dtype)
        if self.input.dtype.kind in "iu" and q is not None:
            if self.input.dtype == np.uint8 and q.scale == 1.0 and q.zero_point == 0:
                return np.ascontiguousarray(batch, dtype=np.uint8)
            if self.input.dtype == np.int8 and q.scale == 1.0 and q.zero_point == -128 and batch.dtype == np.uint8:
                return np.bitwise_xor(batch, np.uint8(0x80)).view(np.int8)  # x - 128, exactly, without floats
            return q.quantize(batch, self.input.dtype)
        return np.ascontiguousarray(batch, dtype=self.input.dtype)

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Raw output → float32 probabilities (N, num_classes); a sigmoid head gives two columns [1-p, p]."""
        out = raw
        if self.output.dtype.kind in "iu" and self.output.quantization is not None:
            out = self.output.quantization.dequantize(raw)
        out = np.asarray(out, dtype=np.float32).reshape(len(raw), -1)
        if out.shape[1] == 1 and self.card.num_classes == 2:
            out = class_probs(out)
        return out

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a uint8 NHWC batch (split into chunks when the model's batch is fixed)."""
        batch = np.asarray(batch)
        if batch.ndim == 3:
            batch = batch[None]
        limit = self.max_batch
        if limit is None or len(batch) <= limit:
            return self.postprocess(self.infer(self.prepare(batch)))
        return np.concatenate([self.predict(batch[i : i + limit]) for i in range(0, len(batch), limit)])

    # ------------------------------------------------------------------ model card
    def _read_card(self) -> ModelCard | None:
        """The card from the model file (edgecnn's or one built from standard metadata), or beside it."""
        return load_card(self.path)

    def _standard_labels(self) -> list[str] | None:
        """Labels the file carries in a standard place other than a card (ONNX ``labels``/``names`` metadata)."""
        return None

    def _resolve_card(self) -> ModelCard:
        card = self._read_card()
        if card is not None:
            return card
        h, w, c = (int(v) if isinstance(v, int) else 0 for v in self.input.shape[1:4])
        units = int(self.output.shape[-1] or 0)
        labels_txt = self.path.parent / LABELS_FILENAME
        standard = self._standard_labels()
        if standard and len(standard) == (2 if units == 1 else units):
            labels = standard
        elif labels_txt.exists():
            labels = read_labels_txt(labels_txt)
            warn(f"{self.path.name} carries no model card; using labels from {labels_txt}.")
        else:
            n = 2 if units == 1 else units
            labels = [f"class_{i}" for i in range(n)]
            warn(f"{self.path.name} carries no model card and no labels.txt is beside it; using numeric labels.")
        if not (h and w and c in (1, 3)):
            raise ModelError(f"{self.path.name}: cannot infer the input size (shape {self.input.shape}) without a model card.")
        return ModelCard(
            labels=labels,
            input=InputSpec(height=h, width=w, channels=c, dtype=str(self.input.dtype), quantization=self.input.quantization),
            output=OutputSpec(activation="sigmoid" if units == 1 else "softmax", units=units),
            preprocessing=Preprocessing(color=color_for_channels(c)),
            name=self.path.stem,
        )

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path.name}>"


# ====================================================================== TFLite / LiteRT
def tflite_runtime() -> tuple[Any, Any, str, str]:
    """(Interpreter class, load_delegate, library name, version): LiteRT, else tflite-runtime, else tf.lite."""
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as mod

        # the package's own __version__ first: importlib.metadata costs a cold start ~10-30 ms
        version = getattr(ai_edge_litert, "__version__", None) or _dist_version("ai-edge-litert")
        return mod.Interpreter, mod.load_delegate, "ai-edge-litert", version
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as mod  # type: ignore[import-not-found]

        return mod.Interpreter, mod.load_delegate, "tflite-runtime", _dist_version("tflite-runtime")
    except ImportError:
        pass
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow as tf  # noqa: PLC0415  (only when no TF-free runtime is installed)

        return tf.lite.Interpreter, tf.lite.experimental.load_delegate, "tensorflow.lite", tf.__version__
    raise MissingDependencyError("No TFLite runtime is installed (LiteRT): pip install 'edgecnn[tflite]'")


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _tflite_quant(detail: dict[str, Any]) -> Quantization | None:
    scale, zp = detail.get("quantization", (0.0, 0))
    if scale:
        return Quantization(scale=float(scale), zero_point=int(zp))
    return None


class TFLiteBackend(Backend):
    """LiteRT interpreter (XNNPACK on by default), optional external delegate such as the Edge TPU."""

    name = "tflite"
    suffixes = (".tflite",)
    extra = "tflite"

    def _load(self) -> None:
        interpreter_cls, load_delegate, self.library, self.library_version = tflite_runtime()
        delegates = []
        if self.delegate:
            lib = delegate_library(self.delegate)
            try:
                # dlopen it first: a library that is not there would otherwise leave a half-built Delegate
                # whose __del__ prints "Exception ignored ... AttributeError" after our one-line error.
                import ctypes

                ctypes.CDLL(lib)
                delegates.append(load_delegate(lib, self.delegate_options))
            except (ValueError, OSError, RuntimeError) as exc:
                hint = (" Install the Edge TPU runtime: sudo apt install libedgetpu1-std, plug in the device, and run a "
                        "model compiled with edgetpu_compiler." if "edgetpu" in lib else "")
                raise ModelError(f"Cannot load TFLite delegate {lib!r}: {str(exc).splitlines()[0]}.{hint}") from exc
        try:
            self.interpreter = interpreter_cls(
                model_path=str(self.path), num_threads=self.threads, experimental_delegates=delegates or None
            )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path.name} is not a valid TFLite model: {str(exc).splitlines()[0]}") from exc
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        sig = tuple(int(v) for v in inp.get("shape_signature", inp["shape"]))
        self._dynamic_batch = sig[0] == -1 and not delegates
        self._batch = int(inp["shape"][0])
        self.input = TensorInfo(inp["name"], (None,) + tuple(int(v) for v in inp["shape"][1:]), np.dtype(inp["dtype"]), _tflite_quant(inp))
        if not self._dynamic_batch:
            self.input.shape = (self._batch,) + self.input.shape[1:]
        self.output = TensorInfo(out["name"], tuple(int(v) for v in out["shape"]), np.dtype(out["dtype"]), _tflite_quant(out))

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        n = len(prepared)
        if n != self._batch:
            self.interpreter.resize_tensor_input(self._in_index, [n, *prepared.shape[1:]], strict=False)
            self.interpreter.allocate_tensors()
            self._batch = n
        self.interpreter.set_tensor(self._in_index, prepared)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out_index)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "runtime": self.library,
            "runtime_version": self.library_version,
            "threads": self.threads,
            "delegate": delegate_library(self.delegate) if self.delegate else "xnnpack",
            "delegate_options": dict(self.delegate_options) or None,
            "provider": None,
        }

    def close(self) -> None:
        self.interpreter = None


# ====================================================================== ONNX Runtime
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(double)": np.float64,
}


class ONNXBackend(Backend):
    """onnxruntime (or onnxruntime-gpu) session with providers in order; thread spinning off on CPU.

    With a GPU provider (TensorRT, CUDA) in the session, the first inference runs with ONNX Runtime's profiler on,
    and :meth:`info` then reports which provider ran each node (``node_providers``): a model whose nodes
    fell back to the CPU is visible. A GPU provider that cannot start (no CUDA libraries, no TensorRT) makes the
    session fall back to the next provider, with ONE warning that names the reason.
    """

    name = "onnx"
    suffixes = (".onnx",)
    extra = "onnx"
    #: Profile the first inference to learn the node placement: None = when a non-CPU provider is in the session.
    profile_placement: bool | None = None

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
                if wanted == ["CPUExecutionProvider"]:
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

    def _session_options(self, ort: Any, cpu_only: bool) -> Any:
        so = ort.SessionOptions()
        if self.threads:
            so.intra_op_num_threads = int(self.threads)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if cpu_only:
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


# ====================================================================== Keras (reference)
class KerasBackend(Backend):
    """The original Keras model, imported lazily: the reference for parity and debugging."""

    name = KERAS_FORMAT
    suffixes = KERAS_SUFFIXES
    extra = "train"

    def __init__(self, path: str | os.PathLike[str], *args: Any, unsafe: bool = False, **kwargs: Any) -> None:
        self.unsafe = unsafe
        super().__init__(path, *args, **kwargs)

    def _load(self) -> None:
        from edgecnn.runtime.keras_model import load_keras

        self.model = load_keras(self.path, unsafe=self.unsafe, purpose="to run .keras models")
        import keras

        shape = tuple(self.model.inputs[0].shape)
        self.input = TensorInfo("image", (None,) + tuple(int(v) for v in shape[1:]), np.dtype("float32"))
        self.output = TensorInfo("output", tuple(self.model.outputs[0].shape), np.dtype("float32"))
        self._keras = keras

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(prepared, training=False))

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "runtime": "keras", "runtime_version": self._keras.__version__,
                "threads": self.threads, "delegate": None, "provider": None}


# ====================================================================== registry
BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (TFLiteBackend, ONNXBackend, KerasBackend)}


def backend_for(path: str | os.PathLike[str], backend: str = "auto") -> type[Backend]:
    """The backend class for a model file (by suffix) or by name."""
    p = Path(path)
    if backend != "auto":
        if backend not in BACKENDS:
            raise ModelError(f"Unknown backend {backend!r}; expected auto or one of {sorted(BACKENDS)}.")
        return BACKENDS[backend]
    suffix = p.suffix.lower()
    for cls in BACKENDS.values():
        if suffix in cls.suffixes:
            return cls
    known = sorted(s for cls in BACKENDS.values() for s in cls.suffixes)
    raise ModelError(f"Unknown model type {p.name!r}; expected one of {known} (or a run folder).")


def preferred_backend(model: str | os.PathLike[str], preferred: str | None) -> str:
    """A device profile's backend is a preference: it applies to files it can run; others use their own type's.

    Returns ``preferred`` when it can run ``model`` (a run folder means its ``model.keras``), else ``"auto"``.
    """
    from edgecnn.runs import MODEL_FILENAME

    cls = BACKENDS.get(preferred or "auto")
    path = Path(model)
    suffix = Path(MODEL_FILENAME).suffix if path.is_dir() else path.suffix.lower()
    return preferred if cls is not None and preferred and suffix in cls.suffixes else "auto"


def load_backend(
    model: str | os.PathLike[str],
    backend: str = "auto",
    threads: int | None = None,
    delegate: str | None = None,
    delegate_options: dict[str, str] | None = None,
    providers: list[str] | None = None,
    unsafe: bool = False,
    init_cache: bool = True,
) -> Backend:
    """Load a model file (or a run folder's ``model.keras``) with the right backend.

    ``init_cache=False`` builds the runtime from scratch, neither reading nor writing the init cache
    (:mod:`edgecnn.runtime.initcache`).
    """
    from edgecnn.runs import run_model

    path = run_model(model)
    cls = backend_for(path, backend)
    if path.suffix.lower() not in cls.suffixes:
        raise ModelError(f"Backend {cls.name!r} cannot run {path.name}; it runs {list(cls.suffixes)} files.")
    kwargs: dict[str, Any] = {"threads": threads, "delegate": delegate, "delegate_options": delegate_options,
                              "providers": providers, "init_cache": init_cache}
    if cls is KerasBackend:
        kwargs["unsafe"] = unsafe
    return cls(path, **kwargs)
