"""``edgecnn info``: what is inside a model file — its card, tensors, dtypes, quantization, size and op counts.

TF-free for ``.tflite`` (LiteRT interpreter through :func:`edgecnn.runtime.backends.load_backend`) and
``.onnx`` (the ``onnx`` package when installed, else a minimal protobuf walk plus onnxruntime for tensors).
Only a ``.keras`` model imports Keras.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from converters.registry import FORMATS
from edgecnn.errors import ModelError
from edgecnn.fileio import human_size, path_size
from edgecnn.modelcard import ModelCard, _pb_fields, load_card
from edgecnn.runs import is_run_folder, run_model
from edgecnn.runtime.keras_model import KERAS_SUFFIXES


@dataclass
class TensorSummary:
    """One input or output tensor."""

    name: str
    shape: list[int | None]
    dtype: str
    quantization: dict[str, float] | None = None


@dataclass
class ModelInfo:
    """Everything ``edgecnn info`` prints."""

    path: str
    format: str
    size_bytes: int
    card: ModelCard | None
    inputs: list[TensorSummary] = field(default_factory=list)
    outputs: list[TensorSummary] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    tensors: int | None = None
    parameters: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["card"] = self.card.to_dict() if self.card else None
        return d


def inspect_model(path: str | os.PathLike[str], unsafe: bool = False, conventions: Any = None) -> ModelInfo:
    """Describe a ``.tflite``, ``.onnx``, ``.keras``/``.h5`` file, SavedModel folder or run folder.

    ``unsafe`` allows a ``.keras`` with Lambda layers (arbitrary code: trusted files only). ``conventions``
    (:class:`edgecnn.conventions.Conventions`) states what a model made elsewhere leaves unknown; the card shown is
    the one ``run`` uses, each convention marked "from the file", "from the flags" or "assumed".

    Raises:
        ModelError: missing file, unknown type, or a file its runtime cannot parse.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model not found: {p}")
    from edgecnn.modelcard import check_model_file

    check_model_file(p)  # a FIFO would block, /dev/zero (a link named model.onnx) fill memory
    if p.is_dir():
        if is_run_folder(p):
            p = run_model(p)
        elif (p / "saved_model.pb").exists():
            return ModelInfo(path=str(p), format="saved_model", size_bytes=path_size(p), card=load_card(p))
        else:
            raise ModelError(f"Expected a model file, a run folder or a SavedModel folder; {p} is neither.")
    suffix = p.suffix.lower()
    readers: dict[str, Any] = {FORMATS["tflite"].suffix: lambda q: _tflite(q, conventions),
                               FORMATS["onnx"].suffix: lambda q: _onnx(q, conventions)}
    readers |= dict.fromkeys(KERAS_SUFFIXES, lambda q: _keras(q, unsafe))
    if suffix in readers:
        return readers[suffix](p)
    raise ModelError(f"Unknown model type {p.name!r}; expected {', '.join(readers)}, a run folder or a SavedModel folder.")


def _tflite(p: Path, conventions: Any = None) -> ModelInfo:
    from edgecnn.runtime.backends import load_backend

    with load_backend(p, conventions=conventions) as backend:
        interp = backend.interpreter

        def summary(d: dict[str, Any]) -> TensorSummary:
            import numpy as np

            scale, zp = d.get("quantization", (0.0, 0))
            shape = [int(v) if int(v) >= 0 else None for v in d.get("shape_signature", d["shape"])]
            return TensorSummary(d["name"], shape, np.dtype(d["dtype"]).name,
                                 {"scale": float(scale), "zero_point": int(zp)} if scale else None)

        # DELEGATE nodes are added by the runtime (XNNPACK) when it takes over a subgraph; they are not model ops
        ops = Counter(str(op.get("op_name", "?")) for op in interp._get_ops_details()
                      if op.get("op_name") != "DELEGATE")
        info = ModelInfo(
            path=str(p), format="tflite", size_bytes=p.stat().st_size, card=backend.card,
            inputs=[summary(d) for d in interp.get_input_details()],
            outputs=[summary(d) for d in interp.get_output_details()],
            ops=dict(ops.most_common()), tensors=len(interp.get_tensor_details()),
            extra={"runtime": backend.info().get("runtime"), "runtime_version": backend.info().get("runtime_version"),
                   **_tflite_metadata(p)},
        )
    return info


_ONNX_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}


def _onnx(p: Path, conventions: Any = None) -> ModelInfo:
    data = p.read_bytes()
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:  # noqa: BLE001  (protobuf DecodeError)
            raise ModelError(f"{p.name} is not a valid ONNX model: {exc}") from exc
        g = model.graph
        if not g.node or not g.input:  # an empty or zero-byte file parses as an empty ModelProto
            raise ModelError(f"{p.name} is not a valid ONNX model: it holds no graph ({len(data)} bytes).")
    card = load_card(p)
    if onnx is not None:
        import importlib.util

        if (card is None or conventions is not None) and importlib.util.find_spec("onnxruntime") is not None:
            # a model made elsewhere: the card run builds (graph, metadata, flags)
            from edgecnn.runtime.backends import load_backend

            with load_backend(p, conventions=conventions, init_cache=False) as backend:
                card = backend.card
        inits = {i.name for i in g.initializer}

        def summary(v: Any) -> TensorSummary:
            t = v.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            return TensorSummary(v.name, shape, _ONNX_TYPES.get(t.elem_type, str(t.elem_type)))

        import math

        params = sum(math.prod(i.dims) for i in g.initializer)
        return ModelInfo(
            path=str(p), format="onnx", size_bytes=len(data), card=card,
            inputs=[summary(v) for v in g.input if v.name not in inits], outputs=[summary(v) for v in g.output],
            ops=dict(Counter(n.op_type for n in g.node).most_common()), tensors=len(g.value_info) + len(inits),
            parameters=int(params),
            extra={"opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
                   "producer": f"{model.producer_name} {model.producer_version}".strip(), "graph": g.name,
                   "description": model.doc_string},
        )
    # without the onnx package: walk the protobuf for op types, ask onnxruntime for the tensors
    ops: Counter[str] = Counter()
    for f, w, v in _pb_fields(data):
        if f == 7 and w == 2:  # ModelProto.graph
            for gf, gw, gv in _pb_fields(v):
                if gf == 1 and gw == 2:  # GraphProto.node
                    for nf, nw, nv in _pb_fields(gv):
                        if nf == 4 and nw == 2:  # NodeProto.op_type
                            ops[nv.decode("utf-8", errors="replace")] += 1
    info = ModelInfo(path=str(p), format="onnx", size_bytes=len(data), card=card, ops=dict(ops.most_common()))
    from edgecnn.runtime.backends import load_backend

    with load_backend(p) as backend:
        for t, target in ((backend.input, info.inputs), (backend.output, info.outputs)):
            target.append(TensorSummary(t.name, list(t.shape), t.dtype.name))
        from edgecnn.standard_metadata import onnx_metadata_from_session

        meta = onnx_metadata_from_session(backend.session)
        info.extra = {"producer": meta.producer, "graph": meta.graph_name, "description": meta.doc_string}
    return info


def _tflite_metadata(p: Path) -> dict[str, Any]:
    """The standard TFLite metadata's name, version, author, description and packed files, for display."""
    from edgecnn.standard_metadata import read_tflite

    meta = read_tflite(p.read_bytes(), p.name)
    if not meta.has_metadata:
        return {"standard metadata": "none (no TFLITE_METADATA)"}
    out = {"metadata": f"TFLITE_METADATA {meta.name or ''} {meta.version or ''}".strip(),
           "description": meta.description, "author": meta.author,
           "associated files": ", ".join(sorted(meta.packed)) or "none"}
    return {k: v for k, v in out.items() if v}


def _keras(p: Path, unsafe: bool = False) -> ModelInfo:
    import zipfile

    from edgecnn.runtime.backends import load_backend

    if p.suffix.lower() == ".keras" and not zipfile.is_zipfile(p):
        raise ModelError(f"{p.name} is not a valid .keras model: expected a Keras zip archive ({p.stat().st_size} bytes).")
    with load_backend(p, unsafe=unsafe) as backend:
        model = backend.model
        ops = Counter(type(layer).__name__ for layer in model.layers)
        return ModelInfo(
            path=str(p), format="keras", size_bytes=p.stat().st_size, card=backend.card,
            inputs=[TensorSummary(t.name, list(t.shape), str(t.dtype)) for t in model.inputs],
            outputs=[TensorSummary(t.name, list(t.shape), str(t.dtype)) for t in model.outputs],
            ops=dict(ops.most_common()), parameters=int(model.count_params()),
        )


def _row(table: Any, *cells: Any) -> None:
    """A table row of data from the model file: control characters escaped, Rich markup shown as written."""
    from edgecnn.console import rich_safe

    table.add_row(*(rich_safe(c) for c in cells))


def render(info: ModelInfo) -> list[Any]:
    """Rich renderables for the terminal: a summary, the tensors, the op counts."""
    from rich.table import Table

    from edgecnn.console import rich_safe

    out: list[Any] = []
    head = Table(show_header=False, box=None, title=rich_safe(Path(info.path).name), title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    _row(head, "format", info.format)
    _row(head, "file size", f"{human_size(info.size_bytes)} ({info.size_bytes:,} bytes)")
    if info.parameters is not None:
        _row(head, "parameters", f"{info.parameters:,}")
    for k, v in info.extra.items():
        _row(head, k, str(v))
    card = info.card
    if card is None:
        head.add_row("model card", "[yellow]none embedded[/yellow]")
    else:
        _row(head, "name", f"{card.name} ({card.architecture or 'unknown architecture'})")
        _row(head, "labels", f"{card.num_classes}: {', '.join(card.labels[:20])}{' ...' if card.num_classes > 20 else ''}")
        spec = card.input
        q = f", q(scale={spec.quantization.scale:.6g}, zp={spec.quantization.zero_point})" if spec.quantization else ""
        _row(head, "input", f"{spec.height}×{spec.width}×{spec.channels} {spec.layout} {spec.dtype}{q}, "
                              f"range {spec.range}, {card.preprocessing.color}, resize {card.preprocessing.resize}"
                              + (f" ({card.preprocessing.resize_mode})" if card.preprocessing.resize_mode != "stretch"
                                 else "")
                              + (f", normalize (x - {card.preprocessing.mean}) / {card.preprocessing.std} on the host"
                                 if card.preprocessing.normalizes else ""))
        _row(head, "output", f"{card.output.activation} ({card.output.dtype})")
        if card.output.activation == "logits":
            _row(head, "scores", f"edgecnn applies {'sigmoid' if card.output.units == 1 else 'softmax'} to the logits")
        if card.origins:
            from edgecnn.conventions import describe_origins

            _row(head, "conventions", describe_origins(card.origins))
        if card.artifact:
            _row(head, "artifact", ", ".join(f"{k}={v}" for k, v in card.artifact.items() if k != "converter" and v is not None))
        prov = card.provenance or {}
        if prov:
            _row(head, "provenance", ", ".join(f"{k}={v}" for k, v in prov.items() if not isinstance(v, dict)))
        if card.metrics:
            _row(head, "metrics", ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in card.metrics.items() if not isinstance(v, (dict, list))))
    out.append(head)
    if info.inputs or info.outputs:
        t = Table(title="tensors", title_justify="left")
        for col in ("io", "name", "shape", "dtype", "quantization"):
            t.add_column(col)
        for io, tensors in (("input", info.inputs), ("output", info.outputs)):
            for ts in tensors:
                q = f"scale={ts.quantization['scale']:.6g} zp={ts.quantization['zero_point']}" if ts.quantization else "—"
                _row(t, io, ts.name, "×".join("?" if d is None else str(d) for d in ts.shape), ts.dtype, q)
        out.append(t)
    if info.ops:
        t = Table(title=f"ops ({sum(info.ops.values())} total{f', {info.tensors} tensors' if info.tensors else ''})",
                  title_justify="left")
        t.add_column("op")
        t.add_column("count", justify="right")
        for op, n in info.ops.items():
            _row(t, op, str(n))
        out.append(t)
    return out
