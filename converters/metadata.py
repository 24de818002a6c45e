"""Embedding the model card into artifacts.

The contract (repeated from ``edgecnn.modelcard``, which reads it back without TensorFlow):

* TFLite: a zip archive appended to the flatbuffer (TFLite's associated-file style) holding
  ``modelcard.json`` (the card as JSON) and ``labels.txt``. The interpreter ignores trailing bytes.
* ONNX: ``metadata_props`` key ``edgecnn.modelcard`` (the card as JSON) and ``labels`` (newline-joined).
* SavedModel: ``modelcard.json`` and ``labels.txt`` inside the folder.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from typing import Any

TFLITE_MEMBER = "modelcard.json"
LABELS_MEMBER = "labels.txt"
ONNX_KEY = "edgecnn.modelcard"
ONNX_LABELS_KEY = "labels"


def card_json(metadata: dict[str, Any]) -> str:
    """The card as the JSON text embedded in artifacts."""
    return json.dumps(metadata, indent=2, ensure_ascii=False)


def labels_text(labels: list[str]) -> str:
    return "".join(f"{lbl}\n" for lbl in labels)


def embed_tflite(flatbuffer: bytes, metadata: dict[str, Any], labels: list[str]) -> bytes:
    """Append a zip holding the card and labels to a TFLite flatbuffer."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(TFLITE_MEMBER, card_json(metadata))
        zf.writestr(LABELS_MEMBER, labels_text(labels))
    return bytes(flatbuffer) + buf.getvalue()


def embed_onnx(model: Any, metadata: dict[str, Any], labels: list[str]) -> Any:
    """Set the card and labels in an ``onnx.ModelProto``'s ``metadata_props`` (in place; returns it)."""
    keep = [p for p in model.metadata_props if p.key not in (ONNX_KEY, ONNX_LABELS_KEY)]
    del model.metadata_props[:]
    for p in keep:
        entry = model.metadata_props.add()
        entry.key, entry.value = p.key, p.value
    for key, value in ((ONNX_KEY, card_json(metadata)), (ONNX_LABELS_KEY, "\n".join(labels))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def complete_card(
    metadata: dict[str, Any] | None,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    artifact: dict[str, Any],
) -> dict[str, Any]:
    """A copy of the card with the input/output dtype and quantization read from the converted tensors.

    Args:
        metadata: The card as a dict (``input``/``output`` sections are updated when present).
        inputs: Tensor descriptions of the artifact (``dtype``, ``quantization``) as read back from it.
        outputs: Same for outputs.
        artifact: The ``artifact`` section (format, precision, io_dtype, opset...).
    """
    card = copy.deepcopy(metadata or {})
    for section, tensors in (("input", inputs), ("output", outputs)):
        if not tensors:
            continue
        spec = card.setdefault(section, {})
        spec["dtype"] = tensors[0]["dtype"]
        spec["quantization"] = tensors[0].get("quantization")
    card["artifact"] = {**(card.get("artifact") or {}), **artifact}
    return card
