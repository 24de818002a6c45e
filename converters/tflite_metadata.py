"""Standard TFLite metadata: the ``TFLITE_METADATA`` flatbuffer that MediaPipe Tasks, the LiteRT support
library, Android Studio's ML binding and Netron read.

Written from the published schema (tflite-support ``metadata_schema.fbs``, file identifier ``M001``) with the
``flatbuffers`` package's builder, and packed the way tflite-support's ``MetadataPopulator`` packs it:

1. the metadata flatbuffer becomes a new entry of the model's ``buffers`` and a ``metadata`` entry named
   ``TFLITE_METADATA`` points at it (the model is re-serialized with file identifier ``TFL3``);
2. the associated files (labels, our model card) are appended to the model as a zip archive
   (``zipfile`` in append mode, so the zip's offsets are absolute in the file, as MetadataPopulator writes them).

Every associated file packed is referenced by the metadata: MediaPipe crashes on an unreferenced one.

Only the tables an image classifier needs are written; field slots follow the schema's declaration order.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
TFLITE_IDENTIFIER = b"TFL3"
#: Smallest metadata parser version that understands every field written here (all exist since 1.0.0).
MIN_PARSER_VERSION = "1.0.0"

# enums of metadata_schema.fbs
FILE_DESCRIPTIONS = 1
FILE_TENSOR_AXIS_LABELS = 2
COLOR_SPACES = {"rgb": 1, "grayscale": 2}
_CONTENT_FEATURE, _CONTENT_IMAGE = 1, 2  # union ContentProperties
_PROCESS_NORMALIZATION = 1  # union ProcessUnitOptions


@dataclass
class AssociatedFile:
    """A file packed into the model and referenced by the metadata."""

    name: str
    description: str
    type: int = FILE_DESCRIPTIONS
    data: bytes = b""


@dataclass
class TensorInfo:
    """Metadata of one input or output tensor.

    Attributes:
        name: Tensor name shown by readers (also written as the tensor's own name in the model).
        description: One line.
        image: ``(color_space, width, height)`` for an image tensor (ImageProperties), else a feature tensor.
        mean: NormalizationOptions mean (per channel or one value); None for no process unit.
        std: NormalizationOptions std.
        stats_min: Stats.min (value range of the tensor before normalization).
        stats_max: Stats.max.
        files: Files attached to this tensor (labels).
        content: Write a Content table (ImageProperties or FeatureProperties); False leaves it out.
    """

    name: str
    description: str = ""
    image: tuple[str, int, int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    stats_min: list[float] | None = None
    stats_max: list[float] | None = None
    files: list[AssociatedFile] = field(default_factory=list)
    content: bool = True


@dataclass
class ModelInfo:
    """Top-level metadata: name, description, version, author, license, tensors and model-level files."""

    name: str
    description: str
    version: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    author: str = ""
    license: str = ""
    files: list[AssociatedFile] = field(default_factory=list)

    def all_files(self) -> list[AssociatedFile]:
        return [*self.files, *(f for t in (*self.inputs, *self.outputs) for f in t.files)]


# ---------------------------------------------------------------------- the metadata flatbuffer
def build(info: ModelInfo) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``) for ``info``."""
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def string(s: str | None) -> int | None:
        return b.CreateString(s) if s else None

    def table_vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def float_vector(values: list[float]) -> int:
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(float(v))
        return b.EndVector()

    def assoc_file(f: AssociatedFile) -> int:
        name, desc = string(f.name), string(f.description)
        b.StartObject(4)  # name, description, type, locale
        if name is not None:
            b.PrependUOffsetTRelativeSlot(0, name, 0)
        if desc is not None:
            b.PrependUOffsetTRelativeSlot(1, desc, 0)
        b.PrependInt8Slot(2, f.type, 0)
        return b.EndObject()

    def files_vector(files: list[AssociatedFile]) -> int | None:
        return table_vector([assoc_file(f) for f in files]) if files else None

    def content(t: TensorInfo) -> int | None:
        if not t.content:
            return None
        if t.image is not None:
            color, width, height = t.image
            b.StartObject(2)  # ImageSize: width, height
            b.PrependUint32Slot(0, int(width), 0)
            b.PrependUint32Slot(1, int(height), 0)
            size = b.EndObject()
            b.StartObject(2)  # ImageProperties: color_space, default_size
            b.PrependInt8Slot(0, COLOR_SPACES[color], 0)
            b.PrependUOffsetTRelativeSlot(1, size, 0)
            props, kind = b.EndObject(), _CONTENT_IMAGE
        else:
            b.StartObject(0)  # FeatureProperties
            props, kind = b.EndObject(), _CONTENT_FEATURE
        b.StartObject(3)  # Content: content_properties_type, content_properties, range
        b.PrependUint8Slot(0, kind, 0)
        b.PrependUOffsetTRelativeSlot(1, props, 0)
        return b.EndObject()

    def process_units(t: TensorInfo) -> int | None:
        if t.mean is None or t.std is None:
            return None
        mean, std = float_vector(t.mean), float_vector(t.std)
        b.StartObject(2)  # NormalizationOptions: mean, std
        b.PrependUOffsetTRelativeSlot(0, mean, 0)
        b.PrependUOffsetTRelativeSlot(1, std, 0)
        norm = b.EndObject()
        b.StartObject(2)  # ProcessUnit: options_type, options
        b.PrependUint8Slot(0, _PROCESS_NORMALIZATION, 0)
        b.PrependUOffsetTRelativeSlot(1, norm, 0)
        return table_vector([b.EndObject()])

    def stats(t: TensorInfo) -> int | None:
        if t.stats_min is None and t.stats_max is None:
            return None
        hi = float_vector(t.stats_max) if t.stats_max is not None else None
        lo = float_vector(t.stats_min) if t.stats_min is not None else None
        b.StartObject(2)  # Stats: max, min
        if hi is not None:
            b.PrependUOffsetTRelativeSlot(0, hi, 0)
        if lo is not None:
            b.PrependUOffsetTRelativeSlot(1, lo, 0)
        return b.EndObject()

    def tensor(t: TensorInfo) -> int:
        name, desc = string(t.name), string(t.description)
        cont, units, st, files = content(t), process_units(t), stats(t), files_vector(t.files)
        b.StartObject(7)  # name, description, dimension_names, content, process_units, stats, associated_files
        if name is not None:
            b.PrependUOffsetTRelativeSlot(0, name, 0)
        if desc is not None:
            b.PrependUOffsetTRelativeSlot(1, desc, 0)
        if cont is not None:
            b.PrependUOffsetTRelativeSlot(3, cont, 0)
        if units is not None:
            b.PrependUOffsetTRelativeSlot(4, units, 0)
        if st is not None:
            b.PrependUOffsetTRelativeSlot(5, st, 0)
        if files is not None:
            b.PrependUOffsetTRelativeSlot(6, files, 0)
        return b.EndObject()

    inputs = table_vector([tensor(t) for t in info.inputs])
    outputs = table_vector([tensor(t) for t in info.outputs])
    sg_name = string(info.name)
    b.StartObject(7)  # SubGraphMetadata: name, description, input_tensor_metadata, output_tensor_metadata, ...
    if sg_name is not None:
        b.PrependUOffsetTRelativeSlot(0, sg_name, 0)
    b.PrependUOffsetTRelativeSlot(2, inputs, 0)
    b.PrependUOffsetTRelativeSlot(3, outputs, 0)
    subgraph = table_vector([b.EndObject()])

    fields = [(0, string(info.name)), (1, string(info.description)), (2, string(info.version)), (3, subgraph),
              (4, string(info.author)), (5, string(info.license)), (6, files_vector(info.files)),
              (7, string(MIN_PARSER_VERSION))]
    b.StartObject(8)  # ModelMetadata
    for slot, off in fields:
        if off is not None:
            b.PrependUOffsetTRelativeSlot(slot, off, 0)
    b.Finish(b.EndObject(), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


# ---------------------------------------------------------------------- packing into the model
def populate(flatbuffer: bytes, info: ModelInfo) -> bytes:
    """The model with ``info`` as its ``TFLITE_METADATA`` and the associated files zipped after it.

    The first input and output tensors are renamed to ``info``'s tensor names (so every reader, and the
    interpreter's ``get_input_details()``, shows ``image``/``probabilities`` as ONNX does), and the
    SignatureDef keys with them. Any previous ``TFLITE_METADATA`` is replaced; the model must carry no
    zip yet (converters hand over a bare flatbuffer).

    Raises:
        ValueError: not a TFLite flatbuffer, or the tensor counts do not match the metadata.
    """
    model_bytes = _repack(bytes(flatbuffer), build(info), info)
    files = info.all_files()
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise ValueError(f"Associated file names must be unique; received {names}.")
    buf = io.BytesIO()
    buf.write(model_bytes)
    with zipfile.ZipFile(buf, "a") as zf:  # appended, absolute offsets: as MetadataPopulator does
        for f in files:
            zf.writestr(f.name, f.data)
    return buf.getvalue()


def _repack(flatbuffer: bytes, metadata: bytes, info: ModelInfo) -> bytes:
    import flatbuffers
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema

    if flatbuffer[4:8] != TFLITE_IDENTIFIER:
        raise ValueError("Not a TFLite flatbuffer (file identifier is not TFL3).")
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    graph = model.subgraphs[0]
    if len(graph.inputs) != len(info.inputs) or len(graph.outputs) != len(info.outputs):
        raise ValueError(f"The model has {len(graph.inputs)} input(s) and {len(graph.outputs)} output(s); the metadata "
                         f"describes {len(info.inputs)} and {len(info.outputs)}.")
    renames: dict[str, str] = {}
    for ids, tensors in ((graph.inputs, info.inputs), (graph.outputs, info.outputs)):
        for index, meta in zip(ids, tensors):
            tensor = graph.tensors[index]
            old = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            renames[old] = meta.name
            tensor.name = meta.name
    for sig in model.signatureDefs or []:
        for tmaps, tensors, ids in ((sig.inputs, info.inputs, graph.inputs), (sig.outputs, info.outputs, graph.outputs)):
            by_index = {int(i): t.name for i, t in zip(ids, tensors)}
            for tmap in tmaps or []:
                if sig.subgraphIndex == 0 and int(tmap.tensorIndex) in by_index:
                    tmap.name = by_index[int(tmap.tensorIndex)]

    aligned_buffer = _aligned_buffer_class()
    for i, buffer in enumerate(model.buffers):
        aligned = aligned_buffer()
        aligned.data, aligned.offset, aligned.size = buffer.data, buffer.offset, buffer.size
        model.buffers[i] = aligned
    entry = next((m for m in model.metadata or [] if _text(m.name) == METADATA_NAME), None)
    meta_buffer = aligned_buffer()
    meta_buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    if entry is not None:
        model.buffers[entry.buffer] = meta_buffer
    else:
        model.buffers.append(meta_buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(max(1024, len(flatbuffer) + len(metadata) + 4096))
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _aligned_buffer_class():
    from tensorflow.lite.python import schema_py_generated as schema

    class AlignedBuffer(schema.BufferT):
        """A ``Buffer`` whose data vector keeps the schema's ``force_align: 16`` (the generated Python drops it)."""

        def Pack(self, builder):  # noqa: N802  (the generated API's name)
            import numpy as np

            data = None
            if self.data is not None and len(self.data):
                raw = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(raw), 16)
                builder.head = builder.head - len(raw)
                builder.Bytes[builder.head : builder.head + len(raw)] = raw
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            if self.offset:
                schema.BufferAddOffset(builder, self.offset)
            if self.size:
                schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBuffer
