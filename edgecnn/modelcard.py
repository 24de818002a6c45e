"""The one schema every edgecnn artifact carries: labels, input spec, preprocessing, provenance.

Pure Python (stdlib + nothing else): readable on an edge box without TensorFlow, onnx or onnxruntime.

Where the card lives:

* run folder / ``.keras`` model: ``modelcard.json`` beside the model;
* ``.tflite``: the standard TFLite metadata (``TFLITE_METADATA``: name, ImageProperties, NormalizationOptions,
  labels as a ``TENSOR_AXIS_LABELS`` file) plus :data:`TFLITE_MEMBER` (the card as JSON), an associated file
  that metadata references, both zipped after the flatbuffer. Files from edgecnn 0.1 carry only the zip
  (``modelcard.json`` + ``labels.txt``, no metadata) and stay readable;
* ``.onnx``: ``metadata_props`` entry :data:`ONNX_KEY` (the card as JSON), plus ``labels`` (newline-joined).

Models made elsewhere are read too (:func:`read`): a ``.tflite`` with only standard metadata (MediaPipe
Model Maker, tflite-support's writers) gives a card built from its labels, normalization and tensors, and
an ONNX file's ``labels``/``names``/``classes`` metadata gives its labels.

Validating a card read from a file (every field's type and bounds) lives in :mod:`edgecnn.card_validation`.
The embedding side lives in :mod:`converters.metadata` (which must not import edgecnn); the constants
below are the contract between the two and are repeated there.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.card_validation import (  # noqa: F401  (re-exported: the validation lived here)
    ACTIVATIONS,
    DTYPES,
    LAYOUTS,
    MAX_CARD_BYTES,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_SIDE,
    _bad,
    _kind,
    check_card_against_model,
    validate_card,
)
from edgecnn.errors import ModelError
from edgecnn.packed_files import read_packed_files
from edgecnn.standard_metadata import (  # noqa: F401  (_pb_fields is re-exported for edgecnn.inspect)
    _onnx_protobuf_metadata,
    _pb_fields,
    _pb_varint,
)

SCHEMA = "edgecnn.modelcard/1"
TFLITE_MEMBER = "modelcard.json"
ONNX_KEY = "edgecnn.modelcard"
CARD_FILENAME = "modelcard.json"
LABELS_FILENAME = "labels.txt"


@dataclass
class Quantization:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    def quantize(self, x: Any, dtype: Any) -> Any:
        import numpy as np

        info = np.iinfo(dtype)
        q = np.round(np.asarray(x, dtype=np.float32) / self.scale + self.zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize(self, q: Any) -> Any:
        import numpy as np

        return (np.asarray(q, dtype=np.float32) - self.zero_point) * np.float32(self.scale)


@dataclass
class InputSpec:
    """What the model's input tensor expects.

    ``range`` is the value range the model's float input takes (rescaling to 0–1 lives inside the graph, so
    this is ``[0, 255]`` for edgecnn models; ``[0, 1]`` for Ultralytics and torchvision, ``[-1, 1]`` for many
    TF Hub/MobileNet files): the host maps 0..255 pixels onto it, then applies ``preprocessing.mean/std``.
    ``layout`` is ``NHWC`` or ``NCHW`` (channels-first models, e.g. exported from PyTorch): the backend
    transposes each batch once. ``dtype`` and ``quantization`` describe the artifact's actual input tensor
    (int8/uint8 for fully quantized TFLite).
    """

    height: int
    width: int
    channels: int
    layout: str = "NHWC"
    dtype: str = "float32"
    range: list[float] = field(default_factory=lambda: [0.0, 255.0])
    quantization: Quantization | None = None


@dataclass
class OutputSpec:
    """What the model's output tensor holds. ``activation`` is ``softmax`` (one unit per class),
    ``sigmoid`` (one unit: the probability of ``labels[1]``) or ``logits`` (raw scores: edgecnn applies
    softmax on the host, sigmoid for one unit, and says so in ``info`` and the result rows)."""

    activation: str = "softmax"
    dtype: str = "float32"
    units: int | None = None
    quantization: Quantization | None = None


@dataclass
class Preprocessing:
    """Host-side preprocessing. Training and every runtime call :func:`edgecnn.imaging.preprocess`
    with these values, so there is one definition."""

    color: str = "rgb"  # "rgb" | "bgr" | "grayscale"
    resize: str = "area"  # interpolation name, see edgecnn.imaging.INTERPOLATIONS
    rescale_in_graph: bool = True
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    #: Host-side normalization applied to the 0..255 pixels before the input tensor, ``(x - mean) / std``
    #: (TFLite NormalizationOptions; one value or one per channel). ``[0]``/``[1]`` for edgecnn models,
    #: whose graph rescales; models made elsewhere may need e.g. ``[127.5]``/``[127.5]``.
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    #: ``stretch`` (the whole image to the input size) or ``shortest-side+center-crop`` (Ultralytics, torchvision).
    resize_mode: str = "stretch"
    #: The producer whose conventions the model follows (``ultralytics``, ``torchvision``), when one is known.
    convention: str | None = None

    @property
    def normalizes(self) -> bool:
        """Whether the host must normalize (anything but mean 0, std 1)."""
        return any(float(m) != 0.0 for m in self.mean) or any(float(s) != 1.0 for s in self.std)


@dataclass
class ModelCard:
    """Everything needed to run a model correctly, carried by every artifact."""

    labels: list[str]
    input: InputSpec
    output: OutputSpec = field(default_factory=OutputSpec)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    name: str = "model"
    task: str = "image-classification"
    architecture: str | None = None
    artifact: dict[str, Any] = field(default_factory=dict)  # format, precision, io_dtype, opset, ...
    config: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # edgecnn_version, created, source_sha256, versions
    #: What the validation split looked like to the model (intensity histograms, sharpness, score and entropy
    #: distributions; :func:`edgecnn.monitor.stats.reference_from`): the station's drift monitor compares with it.
    reference: dict[str, Any] = field(default_factory=dict)
    #: Where each input/output convention of a model made elsewhere came from: field → "from the file",
    #: "from the flags" or "assumed" (empty for edgecnn's own artifacts, whose card states everything).
    origins: dict[str, str] = field(default_factory=dict)
    schema: str = SCHEMA

    # ------------------------------------------------------------------ conversion
    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input.height, self.input.width, self.input.channels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=_default)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """A card from its JSON object, every value validated (:func:`validate_card`).

        Raises:
            ModelError: one line naming the field, what was expected and what was received.
        """
        if not isinstance(data, dict):
            raise ModelError(f"Model card: expected a JSON object; received {_kind(data)}. Re-export the model.")
        for section in ("input", "output", "preprocessing"):
            if data.get(section) is not None and not isinstance(data[section], dict):
                raise ModelError(f"Model card field {section}: expected an object; received {_kind(data[section])}.")
        for section in ("input", "output"):
            q = (data.get(section) or {}).get("quantization")
            if q is not None and not isinstance(q, dict):
                raise ModelError(f"Model card field {section}.quantization: expected an object with scale and "
                                 f"zero_point; received {_kind(q)}.")
        card = cls._from_dict(data)
        validate_card(card)
        return card

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> ModelCard:
        try:
            schema = data.get("schema", SCHEMA)
            if not str(schema).startswith("edgecnn.modelcard/"):
                raise ModelError(f"Expected an edgecnn model card (schema {SCHEMA}); received schema={schema!r}.")
            inp = dict(data["input"])
            if inp.get("quantization"):
                inp["quantization"] = Quantization(**inp["quantization"])
            out = dict(data.get("output") or {})
            if out.get("quantization"):
                out["quantization"] = Quantization(**out["quantization"])
            known = {f for f in cls.__dataclass_fields__}
            rest = {k: v for k, v in data.items() if k in known and k not in {"input", "output", "preprocessing"}}
            return cls(
                input=InputSpec(**inp),
                output=OutputSpec(**out),
                preprocessing=Preprocessing(**(data.get("preprocessing") or {})),
                **rest,
            )
        except ModelError:
            raise
        except KeyError as exc:
            raise ModelError(f"Model card is malformed: field {exc.args[0]} is missing (expected it present). Re-export "
                             "the model with `edgecnn export`.") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"Model card is malformed ({str(exc)[:200]}); re-export the model with `edgecnn export`.") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        if len(text) > MAX_CARD_BYTES:
            raise ModelError(f"Model card is {len(text):,} bytes; expected at most {MAX_CARD_BYTES:,} (a card is a few KB).")
        try:
            data = json.loads(text)
        except RecursionError as exc:
            raise ModelError("Model card is nested too deeply to be a model card; expected a flat JSON object.") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"Model card is not valid JSON ({str(exc)[:160]}).") from exc
        return cls.from_dict(data)

    def with_artifact(self, **artifact: Any) -> ModelCard:
        """A copy whose ``artifact`` section is replaced (used when a converter derives a new file)."""
        card = ModelCard.from_dict(json.loads(self.to_json()))
        card.artifact = dict(artifact)
        return card

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Atomically write ``modelcard.json``."""
        from edgecnn.fileio import write_text

        return write_text(path, self.to_json() + "\n")


def _default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


# ---------------------------------------------------------------------- reading back
def read_tflite_card(data: bytes, name: str = "model") -> ModelCard | None:
    """The edgecnn card packed in a ``.tflite`` file (associated file :data:`TFLITE_MEMBER`, referenced by the
    standard metadata, or the plain appended zip of edgecnn 0.1), or None when it carries none."""
    text = read_packed_files(data, name).get(TFLITE_MEMBER)
    return ModelCard.from_json(text) if text is not None else None


def card_from_tflite_metadata(meta: Any, name: str = "model", labels: list[str] | None = None) -> ModelCard | None:
    """A card built from a ``.tflite`` file's standard metadata and tensors (a model made elsewhere).

    Labels come from the output's ``TENSOR_AXIS_LABELS`` file, colour from ``ImageProperties``, host-side
    normalization from ``NormalizationOptions``, size/dtype/quantization from the tensors themselves.
    Returns None when the file carries no metadata at all (the caller falls back to ``labels.txt``).

    Args:
        meta: A :class:`edgecnn.standard_metadata.TFLiteMetadata`.
        name: Used when the metadata names no model.
        labels: Labels to use when the file packs no labels file (e.g. a ``labels.txt`` beside it).

    Raises:
        ModelError: the metadata contradicts the model (label count vs output size, non-image input).
    """
    from edgecnn.imaging import color_for_channels

    if not meta.has_metadata or not meta.inputs or not meta.outputs:
        return None
    inp, out = meta.inputs[0], meta.outputs[0]
    im = meta.input_metadata[0] if meta.input_metadata else None
    from edgecnn.conventions import graph_layout

    layout = graph_layout(tuple(inp.shape))
    if layout is None:
        raise ModelError(f"{name}: input shape {inp.shape} is not an image (expected 1×H×W×C or 1×C×H×W, C = 1 or 3).")
    h, w, c = inp.shape[1:4] if layout == "NHWC" else (*inp.shape[2:4], inp.shape[1])
    if (h <= 0 or w <= 0) and im is not None and im.default_size:
        w, h = im.default_size
    if h <= 0 or w <= 0:
        raise ModelError(f"{name}: the input size is dynamic ({inp.shape}) and the metadata gives no default size.")
    units = int(out.shape[-1]) if out.shape else 0
    labels = meta.labels() or labels
    if labels is None:
        labels = [f"class_{i}" for i in range(2 if units == 1 else units)]
    elif units == 1 and len(labels) == 1:  # one sigmoid unit labelled with its positive class
        labels = [f"not {labels[0]}", labels[0]]
    if len(labels) != (2 if units == 1 else units):
        raise ModelError(f"{name}: its labels file lists {len(labels)} labels but the output has {units} values; "
                         "fix the TENSOR_AXIS_LABELS file.")
    color = (im.color_space if im is not None else None) or color_for_channels(c)
    if (color == "grayscale") != (c == 1):
        color = color_for_channels(c)  # the tensor wins over a contradicting ImageProperties
    mean = list(im.mean) if im is not None and im.mean else [0.0]
    std = list(im.std) if im is not None and im.std else [1.0]
    if any(float(v) == 0.0 for v in std) or len(mean) != len(std) or len(mean) not in (1, c):
        raise ModelError(f"{name}: NormalizationOptions mean={mean} std={std} cannot normalize a {c}-channel image.")

    def quant(t: Any) -> Quantization | None:
        return Quantization(t.scale, t.zero_point) if t.scale else None

    return validate_card(ModelCard(
        labels=labels,
        input=InputSpec(height=int(h), width=int(w), channels=int(c), layout=layout, dtype=inp.dtype,
                        quantization=quant(inp)),
        output=OutputSpec(activation="sigmoid" if units == 1 else "softmax", dtype=out.dtype, units=units,
                          quantization=quant(out)),
        preprocessing=Preprocessing(color=color, resize="bilinear", rescale_in_graph=mean == [0.0] and std == [1.0],
                                    mean=mean, std=std),
        origins=_metadata_origins(im, meta.labels() is not None),
        name=meta.name or name,
        artifact={"format": "tflite", "precision": meta.precision()},
        provenance={"source": "tflite-metadata", "description": meta.description, "version": meta.version,
                    "author": meta.author, "license": meta.license},
    ))


def _metadata_origins(im: Any, has_labels: bool) -> dict[str, str]:
    """What a file's standard TFLite metadata states (the rest is assumed; activation is probed by the backend)."""
    from edgecnn.conventions import ASSUMED, FROM_FILE

    stated = {"layout": True, "labels": has_labels, "color": bool(im is not None and im.color_space),
              "mean": bool(im is not None and im.mean), "std": bool(im is not None and im.std),
              "range": bool(im is not None and im.mean),
              # the TFLite Task Library / MediaPipe convention: the whole image stretched, bilinear
              "resize_mode": im is not None, "interpolation": im is not None, "activation": False}
    return {k: FROM_FILE if v else ASSUMED for k, v in stated.items()}


def read_onnx_metadata(data: bytes) -> dict[str, str]:
    """``metadata_props`` of an ONNX ModelProto, parsed from protobuf wire format (the fallback where no
    ONNX runtime is installed; :func:`read` uses onnxruntime's ``get_modelmeta()`` when it is)."""
    return _onnx_protobuf_metadata(data).props


def read_onnx_card(data: bytes) -> ModelCard | None:
    """Card from an ONNX file's ``metadata_props`` (protobuf fallback parser), or None when it carries none."""
    text = read_onnx_metadata(data).get(ONNX_KEY)
    return ModelCard.from_json(text) if text else None


def onnx_labels(props: dict[str, str]) -> list[str] | None:
    """Labels an ONNX file made elsewhere carries: ``labels`` (newline-joined or a JSON list), ``classes``,
    or Ultralytics-style ``names`` (``{0: 'cat', 1: 'dog'}``). None when there are none."""
    import ast

    for key in ("labels", "classes", "names", "class_names"):
        raw = props.get(key)
        if not raw:
            continue
        text = raw.strip()
        if len(text) > MAX_CARD_BYTES:
            raise ModelError(f"ONNX metadata {key!r} is {len(text):,} characters; expected at most {MAX_CARD_BYTES:,}.")
        if text[:1] in "[{":
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError, TypeError, MemoryError):
                    value = None
                except RecursionError as exc:
                    raise ModelError(f"ONNX metadata {key!r} is nested too deeply; expected a flat list of class "
                                     "names.") from exc
            except RecursionError as exc:
                raise ModelError(f"ONNX metadata {key!r} is nested too deeply; expected a flat list of class names.") \
                    from exc
            if isinstance(value, list | dict) and any(isinstance(v, list | dict) for v in
                                                       (value.values() if isinstance(value, dict) else value)):
                raise ModelError(f"ONNX metadata {key!r}: expected a flat list of class names (or index → name); "
                                 "received nested lists or objects.")
            from edgecnn.conventions import labels_from_json

            found = labels_from_json(value)
            if found is not None:
                return found
        sep = "\n" if "\n" in text else ","
        return [part.strip() for part in text.split(sep) if part.strip()]
    return None


def read_labels_txt(path: str | os.PathLike[str]) -> list[str]:
    """Labels from a ``labels.txt`` (one per line, UTF-8, blank lines ignored)."""
    from edgecnn.fileio import read_regular

    lines = read_regular(path).decode("utf-8", errors="replace").splitlines()
    return [line.rstrip("\r") for line in lines if line.strip()]


def write_labels_txt(path: str | os.PathLike[str], labels: list[str]) -> Path:
    from edgecnn.fileio import write_text

    return write_text(path, "".join(f"{lbl}\n" for lbl in labels))


def read(model_path: str | os.PathLike[str], *, onnx_session: Any = None) -> ModelCard | None:
    """The card of a model file or run folder, whatever made it, without TensorFlow.

    * ``.tflite``: edgecnn's card packed in the file (current or 0.1 layout), else a card built from the
      standard TFLite metadata (labels, normalization, image properties, tensors);
    * ``.onnx``: the card in ``metadata_props``, read through onnxruntime's ``get_modelmeta()`` (pass an open
      ``onnx_session`` to avoid a second load), or the protobuf fallback where onnxruntime is not installed;
    * else ``modelcard.json`` beside the file (or inside the folder).

    Returns None when nothing describes the model (callers fall back to ``labels.txt`` and the tensors).

    Raises:
        ModelError: the path does not exist, the file is not a model of its kind, or the card is malformed.
    """
    path = Path(model_path)
    try:
        return _read(path, onnx_session)
    except ModelError as exc:
        if path.name in str(exc):
            raise
        raise ModelError(f"{path.name}: {exc}") from exc


def _read_small(path: Path) -> bytes:
    """A card or labels file beside a model: a regular file of at most MAX_CARD_BYTES (a FIFO would block)."""
    from edgecnn.fileio import read_regular

    try:
        return read_regular(path, MAX_CARD_BYTES)
    except OSError as exc:
        raise ModelError(f"Cannot read the model card {path}: {exc.strerror or exc}.") from exc


def check_model_file(path: str | os.PathLike[str]) -> None:
    """Refuse a model path that is not a regular file (or a run folder): a FIFO would block, a device never end.

    Raises:
        ModelError: missing, or a named pipe, device or socket.
    """
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise ModelError(f"Model not found: {path}") from exc
    except OSError as exc:
        raise ModelError(f"Cannot read the model {path}: {exc.strerror or exc}.") from exc
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        kind = ("a named pipe" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise ModelError(f"Expected a model file; {path} is {kind}.")


def _read(path: Path, onnx_session: Any) -> ModelCard | None:
    if not path.exists():
        raise ModelError(f"Model not found: {path}")
    check_model_file(path)
    if path.is_dir():
        candidate = path / CARD_FILENAME
        return ModelCard.from_json(_read_small(candidate)) if candidate.exists() else None
    suffix = path.suffix.lower()
    card: ModelCard | None = None
    if suffix == ".tflite":
        data = path.read_bytes()
        card = read_tflite_card(data, path.name)
        if card is None:
            from edgecnn.standard_metadata import read_tflite

            meta = read_tflite(data, path.name)
            beside = path.parent / LABELS_FILENAME
            labels = None
            if meta.has_metadata and meta.labels() is None:
                from edgecnn.console import warn

                if beside.exists():
                    labels = read_labels_txt(beside)
                    warn(f"{path.name}: its metadata packs no labels file; using labels from {beside}.")
                else:
                    warn(f"{path.name}: its metadata packs no labels file and no labels.txt is beside it; "
                         "using numeric labels.")
            card = card_from_tflite_metadata(meta, path.stem, labels)
    elif suffix == ".onnx":
        from edgecnn.standard_metadata import onnx_metadata, onnx_metadata_from_session

        meta = onnx_metadata_from_session(onnx_session) if onnx_session is not None else onnx_metadata(path)
        text = meta.props.get(ONNX_KEY)
        card = ModelCard.from_json(text) if text else None
    elif suffix == ".json":
        return ModelCard.from_json(_read_small(path))
    if card is None:
        for beside in (path.with_suffix(".json"), path.parent / CARD_FILENAME):
            if beside.exists() and beside != path:
                if read_partial_card(beside) is not None:
                    return None  # a partial card states conventions of a model made elsewhere: the backend reads it
                card = ModelCard.from_json(_read_small(beside))
                break
    return card


def read_partial_card(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A card beside a model made elsewhere that states only some fields (no input size), e.g.
    ``{"preprocessing": {"convention": "torchvision"}, "input": {"layout": "NCHW"}, "labels": [...]}``.

    Returns the JSON object, or None when the file is a full card (it has ``input.height``) or not a card.
    """
    try:
        data = json.loads(_read_small(Path(path)).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not str(data.get("schema", SCHEMA)).startswith("edgecnn.modelcard/"):
        return None
    inp = data.get("input")
    if isinstance(inp, dict) and "height" in inp and "width" in inp:
        return None
    if not any(isinstance(data.get(k), (dict, list)) for k in ("input", "preprocessing", "output", "labels")):
        return None
    return data


def load_card(model_path: str | os.PathLike[str], *, onnx_session: Any = None) -> ModelCard | None:
    """Alias of :func:`read` (the name callers of edgecnn 0.1 use)."""
    return read(model_path, onnx_session=onnx_session)
