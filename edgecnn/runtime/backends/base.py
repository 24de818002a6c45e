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
from edgecnn.conventions import (
    ASSUMED,
    FIELDS,
    FROM_FILE,
    FROM_FLAG,
    LAYOUTS,
    PRODUCERS,
    Conventions,
    graph_layout,
)
from edgecnn.errors import ModelError
from edgecnn.imaging import preprocess
from edgecnn.metrics import class_probs
from edgecnn.modelcard import (
    CARD_FILENAME,
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
    read_partial_card,
    validate_card,
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
        conventions: Conventions | None = None,
    ) -> None:
        self.path = Path(path)
        self.conventions = conventions or Conventions()
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
        self._check_classifier()
        self.card = self._resolve_card()
        check_card_against_model(self.card, self.input.shape, self.output.shape, self.path.name)
        self.output.quantization = self.output.quantization or self.card.output.quantization
        if self.input.quantization is None and self.input.dtype.kind in "iu":
            self.input.quantization = self.card.input.quantization
        if self.input.dtype.kind in "iu" and self.input.quantization is None:
            raise ModelError(f"{self.path.name}: integer input without quantization parameters; re-export the model.")
        self._setup_host()
        if self.card.origins:
            self._settle_foreign()

    # ------------------------------------------------------------------ subclass hooks
    input: TensorInfo
    output: TensorInfo
    #: Shapes of every output of the graph (set by each backend's ``_load``; a classifier has exactly one).
    output_shapes: list[tuple[Any, ...]] | None = None

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
        spec, pre = self.card.input, self.card.preprocessing
        return preprocess(rgb, spec.height, spec.width, pre.color, pre.resize, pre.resize_mode)

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        """uint8 NHWC pixels (0..255) → the input tensor: its dtype, quantized with its scale/zero-point, and
        channels-first for an ``NCHW`` model (one transpose per batch).

        A model whose card asks for another input range or host-side normalization (``[0, 1]`` and ImageNet
        mean/std for a torchvision export, ``(x - 127.5) / 127.5`` for a MediaPipe Model Maker export) gets it
        here, as one multiply-add per batch; edgecnn models rescale inside the graph and skip it.
        """
        x = self._to_tensor(np.asarray(batch))
        if self._nchw:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return x

    def _to_tensor(self, batch: np.ndarray) -> np.ndarray:
        if batch.ndim == 3:
            batch = batch[None]
        q = self.input.quantization
        if self._affine is not None:
            a, b = self._affine
            x = batch.astype(np.float32) * a + b
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
        if self.card.output.activation in RAW_ACTIVATIONS:
            out = _sigmoid(out) if out.shape[1] == 1 else _softmax(out)
        if out.shape[1] == 1 and self.card.num_classes == 2:
            out = class_probs(out)
        return out

    @property
    def scores(self) -> str:
        """What the reported scores are: ``probabilities`` (the model's own), or ``softmax of logits`` /
        ``sigmoid of logits`` when edgecnn applies the activation on the host."""
        if self.card.output.activation not in RAW_ACTIVATIONS:
            return "probabilities"
        return f"{'sigmoid' if (self.output.shape[-1] or 0) == 1 else 'softmax'} of logits"

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

    def _producer_metadata(self) -> dict[str, str]:
        """Key/value metadata the file carries besides a card (ONNX ``metadata_props``, a TFLite's packed
        ``metadata.json`` as Ultralytics writes it)."""
        return {}

    def _check_classifier(self) -> None:
        """Refuse, in one line, a model that is not an image classifier: several outputs or a non-2-D output."""
        shapes = self.output_shapes if self.output_shapes is not None else [tuple(self.output.shape)]
        if len(shapes) != 1:
            found = ", ".join(_shape_text(sh) for sh in shapes)
            raise ModelError(f"{self.path.name} is not an image classifier: expected one output of shape N×classes; "
                             f"found {len(shapes)} outputs ({found}).")
        if len(shapes[0]) != 2:
            raise ModelError(f"{self.path.name} is not an image classifier: expected one output of shape N×classes; "
                             f"found an output of shape {_shape_text(shapes[0])}.")

    def _resolve_card(self) -> ModelCard:
        """The card: edgecnn's (or one from TFLite standard metadata), else one built from the graph, the file's
        metadata and the producer's conventions; the flags (:class:`Conventions`) override either."""
        card = self._read_card()
        if card is None:
            card = self._foreign_card()
        given = self.conventions.given
        if given:
            _apply(card, given, self.path.name)
        units = int(self.output.shape[-1] or 0)
        if units and card.num_classes != (2 if units == 1 else units) and not (units == 1 and card.num_classes == 1):
            raise ModelError(f"{self.path.name} is not a classifier of its labels: its output has {units} values but "
                             f"{card.num_classes} labels were given ({_origin(card, 'labels')}); pass --labels FILE "
                             f"with {2 if units == 1 else units} lines.")
        if units == 1 and card.num_classes == 1:
            card.labels = [f"not {card.labels[0]}", card.labels[0]]
        try:  # every value, whichever file, metadata, convention or flag it came from (issue 19)
            validate_card(card)
        except ModelError as exc:
            raise ModelError(f"{self.path.name}: {exc}") from exc
        return card

    def _foreign_card(self) -> ModelCard:
        """A card for a model made elsewhere, from its graph, metadata and producer (each value's origin kept)."""
        from edgecnn.conventions import ultralytics_metadata

        name = self.path.name
        stated = dict(self.conventions.given)
        origins: dict[str, str] = {}
        partial = self._partial_card()
        props = self._producer_metadata()
        producer = ultralytics_metadata(props) if props else None
        if producer and producer.get("task"):
            raise ModelError(f"{name} is not an image classifier: its Ultralytics metadata says task={producer['task']!r}"
                             " (expected 'classify').")
        file_values: dict[str, Any] = {}
        convention = (partial.get("preprocessing") or {}).get("convention") if partial else None
        if convention:
            if convention not in PRODUCERS:
                raise ModelError(f"{name}: its card names convention {convention!r}; expected one of {sorted(PRODUCERS)}.")
            file_values.update(PRODUCERS[convention])
        if producer:
            convention = convention or "ultralytics"
            file_values.update({k: v for k, v in producer.items() if k in FIELDS or k == "size"})
        if partial:
            file_values.update(_partial_values(partial))
        shape = tuple(self.input.shape)
        layout = stated.get("layout") or file_values.get("layout") or graph_layout(shape)
        if layout is None:
            raise ModelError(f"{name}: input shape {_shape_text(shape)} is not an image batch (expected N×H×W×C or "
                             "N×C×H×W with C = 1 or 3); pass --layout NCHW or NHWC if it is one.")
        origins["layout"] = FROM_FLAG if "layout" in stated else FROM_FILE
        dims = list(shape[1:4]) if layout == "NHWC" else [shape[2], shape[3], shape[1]]
        h, w, c = (int(v) if isinstance(v, int) and v > 0 else 0 for v in dims)
        if not (h and w) and file_values.get("size"):
            h, w = file_values["size"]
        if c not in (1, 3):
            other = "NCHW" if layout == "NHWC" else "NHWC"
            raise ModelError(f"{name}: input shape {_shape_text(shape)} read as {layout} has {c or '?'} channels "
                             f"(expected 1 or 3); pass --layout {other} to read it the other way.")
        if not (h and w):
            raise ModelError(f"{name}: the input size is dynamic ({_shape_text(shape)}) and nothing in the file states "
                             "it; give a card beside the model with input.height and input.width.")
        units = int(self.output.shape[-1] or 0)
        labels = file_values.get("labels") or self._standard_labels()
        if labels:
            origins["labels"] = FROM_FILE
        else:
            labels_txt = self.path.parent / LABELS_FILENAME
            if labels_txt.exists() and "labels" not in stated:
                labels = read_labels_txt(labels_txt)
                warn(f"{name} carries no labels; using labels from {labels_txt}.")
                origins["labels"] = f"from {LABELS_FILENAME}"
            else:
                labels = [f"class_{i}" for i in range(2 if units == 1 else units)]
                if "labels" not in stated:
                    warn(f"{name} carries no labels and no labels.txt is beside it; using numeric labels "
                         "(--labels FILE names them).")
                origins["labels"] = ASSUMED
        integer_input = self.input.dtype.kind in "iu"
        pre: dict[str, Any] = {}
        for key in ("range", "mean", "std", "color", "resize_mode", "interpolation"):
            if key in file_values:
                pre[key], origins[key] = file_values[key], FROM_FILE
            elif integer_input and key in ("range", "mean", "std"):
                pre[key], origins[key] = FIELDS[key][1], FROM_FILE  # an integer input takes the pixels as they are
            else:
                pre[key], origins[key] = FIELDS[key][1], ASSUMED
        color = "grayscale" if c == 1 else pre["color"]
        if c == 1:
            origins["color"] = FROM_FILE
        activation = file_values.get("activation")
        origins["activation"] = FROM_FILE if activation else ASSUMED
        card = ModelCard(
            labels=list(labels),
            input=InputSpec(height=h, width=w, channels=c, layout=layout, dtype=str(self.input.dtype),
                            range=[float(v) for v in pre["range"]], quantization=self.input.quantization),
            output=OutputSpec(activation=activation or ("sigmoid" if units == 1 else "softmax"), units=units),
            preprocessing=Preprocessing(color=color, resize=pre["interpolation"], rescale_in_graph=False,
                                        mean=[float(v) for v in pre["mean"]], std=[float(v) for v in pre["std"]],
                                        resize_mode=pre["resize_mode"], convention=convention),
            name=self.path.stem,
            provenance={"source": convention or "graph"},
            origins=origins,
        )
        return card

    def _partial_card(self) -> dict[str, Any] | None:
        for beside in (self.path.with_suffix(".json"), self.path.parent / CARD_FILENAME):
            if beside.exists() and beside != self.path:
                found = read_partial_card(beside)
                if found is not None:
                    return found
        return None

    # ------------------------------------------------------------------ host-side transform
    _nchw = False
    _affine: tuple[np.ndarray, np.ndarray] | None = None

    def _setup_host(self) -> None:
        """Layout and the pixel → input-tensor multiply-add, from the card (computed once per model)."""
        spec, pre = self.card.input, self.card.preprocessing
        if spec.layout not in LAYOUTS:
            raise ModelError(f"{self.path.name}: its card says layout {spec.layout!r}; expected NHWC or NCHW.")
        self._nchw = spec.layout == "NCHW"
        tensor_shape = tuple(self.input.shape)
        if len(tensor_shape) == 4:
            c_axis = 1 if self._nchw else 3
            if isinstance(tensor_shape[c_axis], int) and tensor_shape[c_axis] != spec.channels:
                raise ModelError(f"{self.path.name}: input shape {_shape_text(tensor_shape)} has no {spec.channels}-channel "
                                 f"axis where layout {spec.layout} puts it; pass --layout "
                                 f"{'NHWC' if self._nchw else 'NCHW'}.")
        lo, hi = (float(v) for v in spec.range)
        mean = np.asarray(pre.mean, np.float32)
        std = np.asarray(pre.std, np.float32)
        if len(mean) not in (1, spec.channels) or len(std) not in (1, spec.channels):
            raise ModelError(f"{self.path.name}: mean {pre.mean} / std {pre.std} do not fit a {spec.channels}-channel "
                             "input (one value or one per channel).")
        a = ((hi - lo) / 255.0) / std
        b = (lo - mean) / std
        identity = bool(np.all(a == 1.0) and np.all(b == 0.0))
        self._affine = None if identity else (a.astype(np.float32), b.astype(np.float32))
        if pre.color == "bgr" and spec.channels != 3:
            raise ModelError(f"{self.path.name}: --color bgr needs a 3-channel input; it has {spec.channels}.")

    def _settle_foreign(self) -> None:
        """For a model made elsewhere: learn whether its output is logits, then warn about (or, strict, refuse)
        what is still assumed."""
        card, origins = self.card, self.card.origins
        if origins.get("activation") == ASSUMED:
            card.output.activation = self._probe_activation()
            origins["activation"] = "from the outputs"
        assumed = [k for k in ("layout", "range", "mean", "std", "color", "resize_mode", "interpolation")
                   if origins.get(k) == ASSUMED]
        if not assumed:
            return
        values = {"range": ",".join(f"{v:g}" for v in card.input.range), "mean": card.preprocessing.mean,
                  "std": card.preprocessing.std, "color": card.preprocessing.color,
                  "resize_mode": card.preprocessing.resize_mode, "interpolation": card.preprocessing.resize,
                  "layout": card.input.layout}
        parts = ", ".join(f"{FIELDS[k][0]} {values[k]}" for k in assumed)
        if self.conventions.strict:
            raise ModelError(f"{self.path.name} does not state its input conventions and --strict refuses to assume "
                             f"them: pass {parts}.")
        warn(f"{self.path.name} does not state all its input conventions; assumed {parts} (pass them to state "
             "them, or --strict to refuse).")

    def _probe_activation(self) -> str:
        """``logits`` when the output on two probe images (mid-grey, noise) has values outside [0, 1] or rows that
        do not sum to 1; else the activation the output's size implies."""
        units = int(self.output.shape[-1] or 0)
        spec = self.card.input
        rng = np.random.default_rng(0)
        images = [np.full((spec.height, spec.width, spec.channels), 128, np.uint8),
                  rng.integers(0, 256, (spec.height, spec.width, spec.channels), dtype=np.uint8)]
        rows = []
        for img in images:
            raw = self.infer(self.prepare(img[None]))
            if self.output.dtype.kind in "iu" and self.output.quantization is not None:
                raw = self.output.quantization.dequantize(raw)
            rows.append(np.asarray(raw, np.float32).reshape(1, -1))
        out = np.concatenate(rows)
        in_unit = bool(np.all(out >= -1e-4) and np.all(out <= 1 + 1e-4))
        if units == 1:
            return "sigmoid" if in_unit else "logits"
        sums_to_one = bool(np.all(np.abs(out.sum(axis=1) - 1.0) < 2e-3))
        return "softmax" if in_unit and sums_to_one else "logits"

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path.name}>"


#: Output activations that mean raw scores: edgecnn applies softmax (sigmoid for one unit) on the host.
RAW_ACTIVATIONS = ("logits", "none", "linear")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "×".join(str(d) if isinstance(d, int) and d >= 0 else "?" for d in shape) or "scalar"


def _origin(card: ModelCard, key: str) -> str:
    return card.origins.get(key, "from the card") if card.origins else "from the card"


def _partial_values(partial: dict[str, Any]) -> dict[str, Any]:
    """Card fields a partial card states (labels, layout, range, size, mean/std, colour, resize, activation)."""
    out: dict[str, Any] = {}
    inp = partial.get("input") or {}
    pre = partial.get("preprocessing") or {}
    if isinstance(partial.get("labels"), list):
        out["labels"] = [str(v) for v in partial["labels"]]
    if inp.get("layout"):
        out["layout"] = str(inp["layout"]).upper()
    if inp.get("range"):
        out["range"] = [float(v) for v in inp["range"]]
    for key in ("mean", "std", "color", "resize_mode"):
        if pre.get(key) is not None:
            out[key] = pre[key]
    if pre.get("resize"):
        out["interpolation"] = pre["resize"]
    act = (partial.get("output") or {}).get("activation")
    if act:
        out["activation"] = act
    return out


def _apply(card: ModelCard, given: dict[str, Any], name: str) -> None:
    """Override a card's conventions with the stated ones (the flags), marking their origin."""
    inp, pre = card.input, card.preprocessing
    if "layout" in given:
        inp.layout = given["layout"]
    if "range" in given:
        inp.range = given["range"]
    if "mean" in given:
        pre.mean = given["mean"]
    if "std" in given:
        pre.std = given["std"]
    if "color" in given:
        pre.color = "grayscale" if inp.channels == 1 else given["color"]
    if "resize_mode" in given:
        pre.resize_mode = given["resize_mode"]
    if "interpolation" in given:
        pre.resize = given["interpolation"]
    if "labels" in given:
        card.labels = list(given["labels"])
    if card.origins or given:
        card.origins.update(dict.fromkeys(given, FROM_FLAG))
