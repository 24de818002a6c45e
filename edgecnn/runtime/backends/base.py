"""The backend base class: a loaded model's input contract, prepare/predict/postprocess, and its model card.

Each backend owns the model's input contract, read from the model card embedded in the artifact:
host preprocessing (:func:`edgecnn.imaging.preprocess` with the card's size, colour and interpolation),
dtype, quantize/dequantize with the tensor's own scale and zero-point, and the batch dimension.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgecnn.console import warn
from edgecnn.errors import ModelError
from edgecnn.imaging import color_for_channels, preprocess
from edgecnn.metrics import class_probs
from edgecnn.modelcard import (
    LABELS_FILENAME,
    InputSpec,
    ModelCard,
    OutputSpec,
    Preprocessing,
    Quantization,
    check_card_against_model,
    check_model_file,
    load_card,
    read_labels_txt,
)


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
    #: Import names of the runtimes that can run this backend's files, in the order it tries them.
    modules: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def installed(cls) -> bool:
        """Whether one of :attr:`modules` can be imported here (looked up, not imported)."""
        import importlib.util

        return any(importlib.util.find_spec(m) is not None for m in cls.modules)

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
        check_model_file(self.path)  # a FIFO or a device is refused before a runtime opens it
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
        check_card_against_model(self.card, self.input.shape, self.output.shape, self.path.name)
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
