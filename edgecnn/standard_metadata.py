"""Reading the standard metadata other tools write, without TensorFlow or any flatbuffers package.

* ``.tflite``: the model's ``TFLITE_METADATA`` flatbuffer (tflite-support ``metadata_schema.fbs``: model name,
  description, version, ImageProperties, NormalizationOptions, Stats, associated files such as the
  ``TENSOR_AXIS_LABELS`` file), the input/output tensors of the model flatbuffer itself (shape, type,
  quantization), and the associated files zipped after the model (MediaPipe Model Maker, tflite-support's
  MetadataPopulator and edgecnn all pack them that way).
* ``.onnx``: ``metadata_props``, ``doc_string``, graph name and producer through onnxruntime's
  ``get_modelmeta()`` (see :func:`onnx_metadata`).

A small hand-written flatbuffer table reader (stdlib ``struct`` only) does the work: a Raspberry Pi reads
the labels of any ``.tflite`` with nothing but edgecnn's base install.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from edgecnn.errors import ModelError
from edgecnn.packed_files import read_packed_files

METADATA_NAME = "TFLITE_METADATA"
FILE_TENSOR_AXIS_LABELS = 2
COLOR_SPACES = {1: "rgb", 2: "grayscale"}
#: tflite ``TensorType`` enum → numpy dtype name.
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8",
                10: "float64", 15: "uint32", 16: "uint16"}


class _Malformed(Exception):
    pass


class _TooLarge(Exception):
    """A bound of the reader was exceeded (a hostile file, not a damaged one)."""


#: How much one parse may produce, counted in tables, strings and vector elements (a flatbuffer may point many
#: tables at one shared vector: a 128 KB metadata block could otherwise expand to gigabytes of Python objects).
MODEL_BUDGET = 4_000_000
METADATA_BUDGET = 200_000


class _Budget:
    __slots__ = ("left", "what")

    def __init__(self, units: int, what: str) -> None:
        self.left, self.what = units, what

    def spend(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise _TooLarge(f"its {self.what} expands to more than the reader's bound (shared or repeated structures)")


class _Table:
    """A view of one flatbuffer table: ``pos`` is where the table starts in ``buf``; every table, string and vector
    read is charged to ``budget``."""

    __slots__ = ("buf", "pos", "vtable", "vlen", "budget")

    def __init__(self, buf: bytes, pos: int, budget: _Budget | None = None) -> None:
        self.buf, self.pos = buf, pos
        self.budget = budget or _Budget(MODEL_BUDGET, "flatbuffer")
        self.budget.spend(1)
        self.vtable = pos - _unpack("<i", buf, pos)
        self.vlen = _unpack("<H", buf, self.vtable)

    def _offset(self, slot: int) -> int:
        o = 4 + 2 * slot
        return _unpack("<H", self.buf, self.vtable + o) if o < self.vlen else 0

    def scalar(self, slot: int, fmt: str, default: Any = 0) -> Any:
        o = self._offset(slot)
        return _unpack("<" + fmt, self.buf, self.pos + o) if o else default

    def _indirect(self, slot: int) -> int | None:
        o = self._offset(slot)
        if not o:
            return None
        at = self.pos + o
        return at + _unpack("<I", self.buf, at)

    def table(self, slot: int) -> _Table | None:
        at = self._indirect(slot)
        return _Table(self.buf, at, self.budget) if at is not None else None

    def string(self, slot: int) -> str | None:
        raw = self.bytes(slot)
        return raw.decode("utf-8", errors="replace") if raw is not None else None

    def bytes(self, slot: int) -> bytes | None:
        at = self._indirect(slot)
        if at is None:
            return None
        n = _unpack("<I", self.buf, at)
        if at + 4 + n > len(self.buf):
            raise _Malformed("vector runs past the end")
        self.budget.spend(1 + n // 64)
        return self.buf[at + 4 : at + 4 + n]

    def _vector(self, slot: int) -> tuple[int, int]:
        at = self._indirect(slot)
        if at is None:
            return 0, 0
        n = _unpack("<I", self.buf, at)
        if at + 4 + 4 * n > len(self.buf) and n:
            raise _Malformed("vector runs past the end")
        return at + 4, n

    def tables(self, slot: int) -> list[_Table]:
        start, n = self._vector(slot)
        self.budget.spend(n)
        out = []
        for i in range(n):
            at = start + 4 * i
            out.append(_Table(self.buf, at + _unpack("<I", self.buf, at), self.budget))
        return out

    def scalars(self, slot: int, fmt: str) -> list[Any]:
        start, n = self._vector(slot)
        size = struct.calcsize("<" + fmt)
        if start + n * size > len(self.buf):
            raise _Malformed("vector runs past the end")
        self.budget.spend(1 + n)
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start)) if n else []

    def strings(self, slot: int) -> list[str]:
        start, n = self._vector(slot)
        self.budget.spend(n)
        out = []
        for i in range(n):
            at = start + 4 * i
            at += _unpack("<I", self.buf, at)
            size = _unpack("<I", self.buf, at)
            if at + 4 + size > len(self.buf):
                raise _Malformed("string runs past the end")
            self.budget.spend(1 + size // 64)
            out.append(self.buf[at + 4 : at + 4 + size].decode("utf-8", errors="replace"))
        return out


def _unpack(fmt: str, buf: bytes, pos: int) -> Any:
    if pos < 0 or pos + struct.calcsize(fmt) > len(buf):
        raise _Malformed(f"offset {pos} outside the {len(buf)}-byte buffer")
    return struct.unpack_from(fmt, buf, pos)[0]


def _root(buf: bytes, budget: _Budget | None = None) -> _Table:
    return _Table(buf, _unpack("<I", buf, 0), budget)


# ---------------------------------------------------------------------- TFLite
@dataclass
class Tensor:
    """An input or output tensor of the model flatbuffer."""

    name: str
    shape: list[int]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


@dataclass
class TensorMetadata:
    """What ``TensorMetadata`` says about a tensor (the fields an image classifier uses)."""

    name: str | None = None
    description: str | None = None
    content: str | None = None  # "image" | "feature" | None
    color_space: str | None = None  # "rgb" | "grayscale"
    default_size: tuple[int, int] | None = None  # (width, height)
    mean: list[float] | None = None
    std: list[float] | None = None
    stats_min: list[float] | None = None
    stats_max: list[float] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)  # name, description, type, locale


@dataclass
class TFLiteMetadata:
    """Everything standard a ``.tflite`` file says about itself."""

    inputs: list[Tensor]
    outputs: list[Tensor]
    has_metadata: bool = False
    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    license: str | None = None
    min_parser_version: str | None = None
    input_metadata: list[TensorMetadata] = field(default_factory=list)
    output_metadata: list[TensorMetadata] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # model- and subgraph-level associated files
    packed: dict[str, bytes] = field(default_factory=dict)  # associated files zipped after the model
    tensor_types: set[str] = field(default_factory=set)  # dtypes of every tensor of the main subgraph

    def precision(self) -> str:
        """The precision the file was converted in, read from its tensors: ``int8`` (integer input),
        ``float16`` (float16 weights), ``dynamic`` (int8 weights, float I/O) or ``float32``."""
        if self.inputs and self.inputs[0].dtype in ("uint8", "int8"):
            return "int8"
        if "float16" in self.tensor_types:
            return "float16"
        if "int8" in self.tensor_types:
            return "dynamic"
        return "float32"

    def referenced_files(self) -> list[str]:
        """Names of every associated file the metadata references (model, subgraph and tensor level)."""
        names = [f["name"] for f in self.files]
        for t in (*self.input_metadata, *self.output_metadata):
            names += [f["name"] for f in t.files]
        return [n for n in names if n]

    def labels(self) -> list[str] | None:
        """Labels of the first output's ``TENSOR_AXIS_LABELS`` file (the one without a locale first)."""
        for t in self.output_metadata[:1]:
            files = [f for f in t.files if f.get("type") == FILE_TENSOR_AXIS_LABELS and f.get("name") in self.packed]
            files.sort(key=lambda f: bool(f.get("locale")))
            if files:
                text = self.packed[files[0]["name"]].decode("utf-8", errors="replace")
                return [line.strip("\r") for line in text.split("\n") if line.strip()]
        return None


def read_tflite(data: bytes, name: str = "model") -> TFLiteMetadata:
    """Parse a ``.tflite`` file's tensors, ``TFLITE_METADATA`` and packed associated files.

    Raises:
        ModelError: the bytes are not a TFLite flatbuffer.
    """
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{name} is not a TFLite model: expected the flatbuffer identifier TFL3 at byte 4.")
    try:
        model = _root(data)
        subgraphs = model.tables(2)
        if not subgraphs:
            raise _Malformed("no subgraph")
        graph = subgraphs[0]
        tensors = graph.tables(0)
        info = TFLiteMetadata(inputs=[_tensor(tensors[i]) for i in graph.scalars(1, "i")],
                              outputs=[_tensor(tensors[i]) for i in graph.scalars(2, "i")],
                              tensor_types={TENSOR_TYPES.get(t.scalar(1, "b", 0), "other") for t in tensors})
        buffers = model.tables(4)
        for entry in model.tables(6):
            if entry.string(0) == METADATA_NAME:
                meta = _buffer_bytes(data, buffers[entry.scalar(1, "I")])
                if meta:
                    _read_metadata(meta, info)
                break
    except _TooLarge as exc:
        raise ModelError(f"{name} is refused: {exc}. Expected a model whose metadata lists each thing once; "
                         "re-export it.") from exc
    except (_Malformed, IndexError, struct.error, RecursionError) as exc:
        raise ModelError(f"{name} is not a valid TFLite model ({exc}).") from exc
    info.packed = read_packed_files(data, name)
    return info


def _tensor(t: _Table) -> Tensor:
    shape = t.scalars(0, "i")
    signature = t.scalars(7, "i")
    q = t.table(4)
    scale = zp = None
    if q is not None:
        scales, zps = q.scalars(2, "f"), q.scalars(3, "q")
        if scales and scales[0]:
            scale, zp = float(scales[0]), int(zps[0]) if zps else 0
    dtype = t.scalar(1, "b", 0)
    return Tensor(name=t.string(3) or "", shape=list(signature or shape), dtype=TENSOR_TYPES.get(dtype, f"type{dtype}"),
                  scale=scale, zero_point=zp)


def _buffer_bytes(data: bytes, buffer: _Table) -> bytes | None:
    raw = buffer.bytes(0)
    if raw:
        return raw
    offset, size = buffer.scalar(1, "Q", 0), buffer.scalar(2, "Q", 0)
    if offset > 1 and size:  # models over 2 GB keep buffers after the flatbuffer
        return data[offset : offset + size]
    return None


def _read_metadata(meta: bytes, info: TFLiteMetadata) -> None:
    root = _root(meta, _Budget(METADATA_BUDGET, "TFLITE_METADATA block"))
    info.has_metadata = True
    info.name, info.description, info.version = root.string(0), root.string(1), root.string(2)
    info.author, info.license, info.min_parser_version = root.string(4), root.string(5), root.string(7)
    info.files = [_file(f) for f in root.tables(6)]
    for sg in root.tables(3)[:1]:
        info.input_metadata = [_tensor_metadata(t) for t in sg.tables(2)]
        info.output_metadata = [_tensor_metadata(t) for t in sg.tables(3)]
        info.files += [_file(f) for f in sg.tables(4)]


def _file(t: _Table) -> dict[str, Any]:
    return {"name": t.string(0), "description": t.string(1), "type": t.scalar(2, "b", 0), "locale": t.string(3)}


def _tensor_metadata(t: _Table) -> TensorMetadata:
    out = TensorMetadata(name=t.string(0), description=t.string(1), files=[_file(f) for f in t.tables(6)])
    content = t.table(3)
    if content is not None:
        kind, props = content.scalar(0, "B", 0), content.table(1)
        if kind == 2 and props is not None:
            out.content = "image"
            out.color_space = COLOR_SPACES.get(props.scalar(0, "b", 0))
            size = props.table(1)
            if size is not None:
                out.default_size = (size.scalar(0, "I", 0), size.scalar(1, "I", 0))
        elif kind == 1:
            out.content = "feature"
    for unit in t.tables(4):
        if unit.scalar(0, "B", 0) == 1:  # NormalizationOptions
            opts = unit.table(1)
            if opts is not None:
                out.mean, out.std = opts.scalars(0, "f"), opts.scalars(1, "f")
            break
    stats = t.table(5)
    if stats is not None:
        out.stats_max, out.stats_min = stats.scalars(0, "f") or None, stats.scalars(1, "f") or None
    return out


# ---------------------------------------------------------------------- ONNX
@dataclass
class OnnxMetadata:
    """Model-level metadata of an ONNX file."""

    props: dict[str, str]
    doc_string: str = ""
    graph_name: str = ""
    producer: str = ""
    source: str = "onnxruntime"  # or "protobuf" (the fallback parser)


def onnx_metadata_from_session(session: Any) -> OnnxMetadata:
    """Metadata of an ``onnxruntime.InferenceSession`` already created (no second load)."""
    try:
        meta = session.get_modelmeta()
        return OnnxMetadata(props=dict(meta.custom_metadata_map), doc_string=meta.description or "",
                            graph_name=meta.graph_name or "", producer=meta.producer_name or "")
    except UnicodeDecodeError as exc:  # onnxruntime decodes metadata strings strictly
        raise ModelError(f"The ONNX model's metadata is not valid UTF-8 (byte {exc.start} of a metadata string); "
                         "expected UTF-8 text in metadata_props, doc_string and names. Re-export the model.") from exc


def onnx_metadata(path: Any, data: bytes | None = None) -> OnnxMetadata:
    """Metadata of an ONNX file through onnxruntime's ``get_modelmeta()`` where onnxruntime is installed,
    else through a minimal protobuf walk (a box with only LiteRT can still ``edgecnn info`` an ONNX file).

    Raises:
        ModelError: the file is not an ONNX model.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own Fail/InvalidGraph types)
            raise ModelError(f"{getattr(path, 'name', path)} is not a loadable ONNX model: {str(exc).splitlines()[0][:200]}") from exc
        return onnx_metadata_from_session(session)
    return _onnx_protobuf_metadata(data if data is not None else open(path, "rb").read())  # noqa: SIM115


def _onnx_protobuf_metadata(raw: bytes) -> OnnxMetadata:
    """The fallback: metadata_props, doc_string, producer and graph name from the protobuf wire format."""
    out = OnnxMetadata(props={}, source="protobuf")
    for f, w, v in _pb_fields(raw):
        if f == 14 and w == 2:  # ModelProto.metadata_props: StringStringEntryProto
            key = val = ""
            for kf, kw, kv in _pb_fields(v):
                if kw == 2 and kf == 1:
                    key = kv.decode("utf-8", errors="replace")
                elif kw == 2 and kf == 2:
                    val = kv.decode("utf-8", errors="replace")
            out.props[key] = val
        elif f == 6 and w == 2:  # doc_string
            out.doc_string = v.decode("utf-8", errors="replace")
        elif f == 2 and w == 2:  # producer_name
            out.producer = v.decode("utf-8", errors="replace")
        elif f == 7 and w == 2:  # graph
            for gf, gw, gv in _pb_fields(v):
                if gf == 2 and gw == 2:  # GraphProto.name
                    out.graph_name = gv.decode("utf-8", errors="replace")
    return out


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
