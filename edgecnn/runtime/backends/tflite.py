"""TFLite backend: the LiteRT interpreter (XNNPACK on by default), optional external delegate such as the Edge TPU.

Falls back to tflite-runtime, and to ``tf.lite`` only when neither LiteRT nor tflite-runtime is installed and
TensorFlow happens to be (imported inside :func:`tflite_runtime`, never at module level).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from edgecnn.errors import MissingDependencyError, ModelError
from edgecnn.modelcard import Quantization
from edgecnn.runtime.backends.base import Backend, TensorInfo

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
    modules = ("ai_edge_litert", "tflite_runtime", "tensorflow")

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
        self.output_shapes = [tuple(int(v) for v in o["shape"]) for o in self.interpreter.get_output_details()]

    def _producer_metadata(self) -> dict[str, str]:
        """The ``metadata.json`` Ultralytics packs into its ``.tflite`` files (names, imgsz, task), as strings."""
        import json

        from edgecnn.packed_files import read_packed_files

        raw = read_packed_files(self.path.read_bytes()).get("metadata.json")
        if raw is None:
            return {}
        try:
            meta = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()} if isinstance(meta, dict) else {}

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
