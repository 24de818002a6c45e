"""Classify images with MediaPipe Tasks' ImageClassifier: run INSIDE the MediaPipe venv (``make mediapipe-venv``).

Usage: ``python mp_classify.py request.json answer.json``. The request lists ``models`` and ``images``; the
answer maps each model to ``{"results": {image: [category_name, score, index]}}`` or ``{"error": "..."}`` (what
MediaPipe said when it refused the model). A request with ``metadata`` (a list of files holding raw
``TFLITE_METADATA`` flatbuffers) is answered with each one decoded by MediaPipe's own generated schema code
(``mediapipe.tasks.metadata.metadata_schema_py_generated``), the reference reader Netron's schema matches.
Imports nothing of edgecnn: it is the standard consumer's view.
"""

from __future__ import annotations

import json
import sys


def describe(path: str) -> dict:
    """A metadata flatbuffer decoded with MediaPipe's generated object API."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    buf = bytearray(open(path, "rb").read())  # noqa: SIM115
    assert fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0), "no M001 identifier"
    meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(buf, 0))

    def text(v):
        return v.decode("utf-8") if isinstance(v, bytes) else v

    def files(fs):
        return [{"name": text(f.name), "type": f.type, "description": text(f.description)} for f in fs or []]

    def tensor(t):
        out = {"name": text(t.name), "description": text(t.description), "files": files(t.associatedFiles)}
        if t.content is not None:
            out["content_type"] = t.content.contentPropertiesType
            props = t.content.contentProperties
            if t.content.contentPropertiesType == fb.ContentProperties.ImageProperties:
                out["color_space"] = props.colorSpace
                out["default_size"] = [props.defaultSize.width, props.defaultSize.height]
        for unit in t.processUnits or []:
            if unit.optionsType == fb.ProcessUnitOptions.NormalizationOptions:
                out["mean"], out["std"] = [float(v) for v in unit.options.mean], [float(v) for v in unit.options.std]
        if t.stats is not None:
            out["stats"] = [[float(v) for v in t.stats.min], [float(v) for v in t.stats.max]]
        return out

    sg = meta.subgraphMetadata[0]
    return {"name": text(meta.name), "description": text(meta.description), "version": text(meta.version),
            "author": text(meta.author), "min_parser_version": text(meta.minParserVersion),
            "files": files(meta.associatedFiles), "inputs": [tensor(t) for t in sg.inputTensorMetadata],
            "outputs": [tensor(t) for t in sg.outputTensorMetadata],
            "enums": {"TENSOR_AXIS_LABELS": fb.AssociatedFileType.TENSOR_AXIS_LABELS,
                      "DESCRIPTIONS": fb.AssociatedFileType.DESCRIPTIONS, "RGB": fb.ColorSpaceType.RGB,
                      "GRAYSCALE": fb.ColorSpaceType.GRAYSCALE,
                      "ImageProperties": fb.ContentProperties.ImageProperties}}


def main() -> int:
    request = json.loads(open(sys.argv[1], encoding="utf-8").read())  # noqa: SIM115
    answer: dict[str, dict] = {}
    for path in request.get("metadata", []):
        answer[path] = describe(path)
    if request.get("models"):
        classify(request, answer)
    with open(sys.argv[2], "w", encoding="utf-8") as fh:
        json.dump(answer, fh)
    return 0


def classify(request: dict, answer: dict) -> None:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    for model in request["models"]:
        try:
            options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=1)
            classifier = vision.ImageClassifier.create_from_options(options)
        except Exception as exc:  # noqa: BLE001  (MediaPipe raises ValueError/RuntimeError with its status text)
            answer[model] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        with classifier:
            results = {}
            for path in request["images"]:
                image = mp.Image.create_from_file(path)
                top = classifier.classify(image).classifications[0].categories[0]
                results[path] = [top.category_name, float(top.score), int(top.index)]
        answer[model] = {"results": results}


if __name__ == "__main__":
    sys.exit(main())
