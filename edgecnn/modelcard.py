"""The one schema every edgecnn artifact carries: labels, input spec, preprocessing, provenance.

Pure Python (stdlib + nothing else): readable on an edge box without TensorFlow, onnx or onnxruntime.

Where the card lives:

* run folder / ``.keras`` model: ``modelcard.json`` beside the model;
* ``.tflite``: a zip archive appended to the flatbuffer (TFLite's associated-file style) holding
  :data:`TFLITE_MEMBER` (the card as JSON) and ``labels.txt``;
* ``.onnx``: ``metadata_props`` entry :data:`ONNX_KEY` (the card as JSON), plus ``labels`` (newline-joined).

The embedding side lives in :mod:`converters.metadata` (which must not import edgecnn); the constants
below are the contract between the two and are repeated there.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.errors import ModelError

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

    ``range`` is the value range the model takes (rescaling to 0–1 lives inside the graph, so
    this is ``[0, 255]`` for edgecnn models). ``dtype`` and ``quantization`` describe the artifact's
    actual input tensor (int8/uint8 for fully quantized TFLite).
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
    """What the model's output tensor holds. ``activation`` is ``softmax`` (one unit per class) or
    ``sigmoid`` (one unit: the probability of ``labels[1]``)."""

    activation: str = "softmax"
    dtype: str = "float32"
    units: int | None = None
    quantization: Quantization | None = None


@dataclass
class Preprocessing:
    """Host-side preprocessing. Training and every runtime call :func:`edgecnn.imaging.preprocess`
    with these values, so there is one definition."""

    color: str = "rgb"  # "rgb" | "grayscale"
    resize: str = "area"  # interpolation name, see edgecnn.imaging.INTERPOLATIONS
    rescale_in_graph: bool = True
    scale: float = 1.0 / 255.0
    offset: float = 0.0


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
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"Model card is malformed ({exc}); re-export the model with `edgecnn export`.") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ModelError(f"Model card is not valid JSON ({exc}).") from exc

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
def read_tflite_card(data: bytes) -> ModelCard | None:
    """Card from a ``.tflite`` file's appended zip, or None when it carries none."""
    if b"PK\x05\x06" not in data[-(1 << 16) - 22 :]:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if TFLITE_MEMBER not in zf.namelist():
                return None
            return ModelCard.from_json(zf.read(TFLITE_MEMBER))
    except zipfile.BadZipFile:
        return None


def read_onnx_metadata(data: bytes) -> dict[str, str]:
    """``metadata_props`` of an ONNX ModelProto, parsed from protobuf wire format without onnx installed."""
    props: dict[str, str] = {}
    for field_no, wire, value in _pb_fields(data):
        if field_no == 14 and wire == 2:  # ModelProto.metadata_props: StringStringEntryProto
            key = val = ""
            for f, w, v in _pb_fields(value):
                if w == 2 and f == 1:
                    key = v.decode("utf-8")
                elif w == 2 and f == 2:
                    val = v.decode("utf-8")
            props[key] = val
    return props


def read_onnx_card(data: bytes) -> ModelCard | None:
    """Card from an ONNX file's ``metadata_props``, or None when it carries none."""
    text = read_onnx_metadata(data).get(ONNX_KEY)
    return ModelCard.from_json(text) if text else None


def _pb_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelError("ONNX file is truncated (protobuf varint runs past the end).")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _pb_fields(buf: bytes):
    """Yield (field number, wire type, value) for the top-level fields of a protobuf message."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _pb_varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _pb_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _pb_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ModelError(f"Not an ONNX model: unexpected protobuf wire type {wire}.")
        if pos > end:
            raise ModelError("ONNX file is truncated.")
        yield field_no, wire, value


def read_labels_txt(path: str | os.PathLike[str]) -> list[str]:
    """Labels from a ``labels.txt`` (one per line, UTF-8, blank lines ignored)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.rstrip("\r") for line in lines if line.strip()]


def write_labels_txt(path: str | os.PathLike[str], labels: list[str]) -> Path:
    from edgecnn.fileio import write_text

    return write_text(path, "".join(f"{lbl}\n" for lbl in labels))


def load_card(model_path: str | os.PathLike[str]) -> ModelCard | None:
    """The card of a model file or run folder, without TensorFlow.

    Looks inside ``.tflite``/``.onnx`` first, then at ``modelcard.json`` beside the file (or inside the
    folder). Returns None when no card is found (callers decide whether to fall back to labels.txt).

    Raises:
        ModelError: the path does not exist or the card is malformed.
    """
    path = Path(model_path)
    if not path.exists():
        raise ModelError(f"Model not found: {path}")
    if path.is_dir():
        candidate = path / CARD_FILENAME
        return ModelCard.from_json(candidate.read_bytes()) if candidate.exists() else None
    suffix = path.suffix.lower()
    card: ModelCard | None = None
    if suffix == ".tflite":
        card = read_tflite_card(path.read_bytes())
    elif suffix == ".onnx":
        card = read_onnx_card(path.read_bytes())
    elif suffix == ".json":
        return ModelCard.from_json(path.read_bytes())
    if card is None:
        for beside in (path.with_suffix(".json"), path.parent / CARD_FILENAME):
            if beside.exists() and beside != path:
                card = ModelCard.from_json(beside.read_bytes())
                break
    return card
