"""Embedding the model card into artifacts, in the standard way each format's consumers read.

The contract (repeated from ``edgecnn.modelcard``, which reads it back without TensorFlow):

* TFLite: the standard ``TFLITE_METADATA`` flatbuffer (:mod:`converters.tflite_metadata`): model name,
  description and version; the input's ImageProperties (RGB/GRAYSCALE, size), NormalizationOptions (mean 0,
  std 1: the graph takes 0..255 pixels and rescales inside) and Stats; the output's labels as a
  ``TENSOR_AXIS_LABELS`` file ``labels.txt``; and ``modelcard.json`` (the card as JSON), a model-level
  associated file the metadata references. Both files are zipped after the flatbuffer as tflite-support's
  MetadataPopulator packs them; the tensors are named ``image`` and ``probabilities`` as in ONNX.
* ONNX: ``metadata_props`` key ``edgecnn.modelcard`` (the card as JSON) and ``labels`` (newline-joined);
  ``doc_string``, graph name and producer describe the model to any ONNX tool.
* SavedModel: ``modelcard.json`` and ``labels.txt`` inside the folder.
"""

from __future__ import annotations

import copy
import json
from typing import Any

TFLITE_MEMBER = "modelcard.json"
LABELS_MEMBER = "labels.txt"
ONNX_KEY = "edgecnn.modelcard"
ONNX_LABELS_KEY = "labels"
INPUT_TENSOR = "image"
OUTPUT_TENSOR = "probabilities"


def card_json(metadata: dict[str, Any]) -> str:
    """The card as the JSON text embedded in artifacts."""
    return json.dumps(metadata, indent=2, ensure_ascii=False)


def labels_text(labels: list[str]) -> str:
    return "".join(f"{lbl}\n" for lbl in labels)


def description(card: dict[str, Any], labels: list[str]) -> str:
    """One paragraph saying what the model is and what it takes, for metadata readers and ONNX doc_string."""
    inp = card.get("input") or {}
    color = (card.get("preprocessing") or {}).get("color", "rgb")
    arch = card.get("architecture") or "CNN"
    shown = ", ".join(labels[:10]) + (f", ... ({len(labels)} in all)" if len(labels) > 10 else "")
    text = (f"{arch} image classifier over {len(labels)} classes ({shown}). "
            f"Input: {inp.get('height', '?')}x{inp.get('width', '?')} {'grayscale' if color == 'grayscale' else 'RGB'} "
            "image, pixel values 0..255 (rescaling is inside the graph). Output: class probabilities.")
    acc = (card.get("metrics") or {}).get("test_accuracy")
    if isinstance(acc, (int, float)):
        text += f" Test accuracy {acc:.4f}."
    version = (card.get("provenance") or {}).get("edgecnn_version")
    return text + (f" Made with edgecnn {version}." if version else " Made with edgecnn.")


def model_version(card: dict[str, Any]) -> str:
    """The card's ``version``, else the training time, else ``1``."""
    return str(card.get("version") or (card.get("provenance") or {}).get("created") or "1")


def tflite_model_info(card: dict[str, Any], labels: list[str]) -> Any:
    """The standard metadata of an edgecnn image classifier (see the module docstring)."""
    from converters.tflite_metadata import (
        FILE_DESCRIPTIONS,
        FILE_TENSOR_AXIS_LABELS,
        AssociatedFile,
        ModelInfo,
        TensorInfo,
    )

    inp = card.get("input") or {}
    out = card.get("output") or {}
    color = (card.get("preprocessing") or {}).get("color", "rgb")
    h, w = int(inp.get("height") or 0), int(inp.get("width") or 0)
    sigmoid = out.get("activation") == "sigmoid" and len(labels) == 2 and int(out.get("units") or 1) == 1
    # a one-unit sigmoid output holds the probability of labels[1]: its axis has that one label (converters.convert
    # writes [1 - p, p] instead, two units; this covers a caller that embeds a one-unit model itself)
    axis_labels = labels[1:] if sigmoid else labels
    dtype = inp.get("dtype", "float32")
    image = TensorInfo(
        name=INPUT_TENSOR,
        description=(f"{h}x{w} {'grayscale' if color == 'grayscale' else 'RGB'} image, pixel values 0..255"
                     + ("" if dtype == "float32" else f", fed as {dtype} with the tensor's quantization")
                     + "; the graph rescales, so normalization is mean 0, std 1."),
        image=(color, w, h), mean=[0.0], std=[1.0], stats_min=[0.0], stats_max=[255.0])
    probs = TensorInfo(
        name=OUTPUT_TENSOR,
        description=(f"Probability of {labels[1]!r} (sigmoid); {labels[0]!r} is 1 minus it." if sigmoid
                     else "Probability of each class (softmax), in the order of labels.txt."),
        stats_min=[0.0], stats_max=[1.0],
        files=[AssociatedFile(LABELS_MEMBER, "Labels of the output's classes, one per line.", FILE_TENSOR_AXIS_LABELS,
                              labels_text(axis_labels).encode("utf-8"))])
    provenance = card.get("provenance") or {}
    return ModelInfo(
        name=str(card.get("name") or "model"), description=description(card, labels), version=model_version(card),
        author=f"edgecnn {provenance['edgecnn_version']}" if provenance.get("edgecnn_version") else "edgecnn",
        license=str(card.get("license") or ""), inputs=[image], outputs=[probs],
        files=[AssociatedFile(TFLITE_MEMBER, "edgecnn model card (JSON): labels, input spec, preprocessing, metrics, "
                              "provenance.", FILE_DESCRIPTIONS, card_json(card).encode("utf-8"))])


def embed_tflite(flatbuffer: bytes, metadata: dict[str, Any], labels: list[str]) -> bytes:
    """A TFLite flatbuffer with standard metadata, its labels and the card packed in (see the module docstring)."""
    from converters.tflite_metadata import populate

    return populate(flatbuffer, tflite_model_info(metadata, labels))


def embed_onnx(model: Any, metadata: dict[str, Any], labels: list[str]) -> Any:
    """Set the card and labels in an ``onnx.ModelProto``'s ``metadata_props``, and its ``doc_string``, graph
    name and producer (in place; returns it)."""
    model.doc_string = description(metadata, labels)
    model.graph.name = str(metadata.get("name") or "model")
    model.graph.doc_string = model.doc_string
    version = (metadata.get("provenance") or {}).get("edgecnn_version")
    model.producer_name = "edgecnn"
    model.producer_version = str(version or "")
    for value, text in ((model.graph.input, "image pixels 0..255, NHWC (the graph rescales)"),
                        (model.graph.output, "class probabilities, in the order of the labels")):
        if len(value):
            value[0].doc_string = text
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
