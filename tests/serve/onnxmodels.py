"""Real ONNX models for the serve tests and benchmark, written with onnx.helper (no TensorFlow: fast to make).

- :func:`color_model`: a deterministic 3-class classifier "red" / "green" / "blue": the softmax of each channel's
  mean brightness. A red image is "red" with a high score, so the tests can assert labels.
- :func:`conv_model`: a small random-weight CNN (conv-relu x3, global pooling, dense, softmax) with a dynamic
  batch dimension: heavy enough per call that batching pays, for ``benchmarks/serve_throughput.py``.

Both carry the edgecnn model card in ``metadata_props`` (as ``edgecnn export`` writes it), so edgecnn runs them
like any exported model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOR_LABELS = ["red", "green", "blue"]
#: An RGB colour per label of :func:`color_model`.
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}



def _save(graph, path: Path, labels: list[str], size: int, name: str) -> Path:
    import onnx
    from onnx import helper

    from edgecnn.modelcard import ONNX_KEY, InputSpec, ModelCard, OutputSpec

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    card = ModelCard(labels=labels, input=InputSpec(height=size, width=size, channels=3),
                     output=OutputSpec(activation="softmax", units=len(labels)), name=name,
                     architecture=name).with_artifact(format="onnx", precision="float32")
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, card.to_json()
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def color_model(path: Path, size: int = 32) -> Path:
    """``path``: a .onnx classifier of 0..255 RGB by mean channel brightness (labels red, green, blue)."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, 3])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "scale")
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2], keepdims=0),
             helper.make_node("Mul", ["mean", "scale"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    graph = helper.make_graph(nodes, "color", [x], [y], initializer=[scale])
    return _save(graph, path, COLOR_LABELS, size, "color")


def conv_model(path: Path, size: int = 64, classes: int = 4, widths: tuple[int, ...] = (16, 32, 64),
               hidden: int = 0, seed: int = 0) -> Path:
    """``path``: a random-weight CNN over 0..255 RGB (NHWC in, transposed inside), dynamic batch; ``hidden``: a
    dense layer of that width over the flattened features instead of global pooling (a VGG-style head, whose
    weights a batch reads once for all its images)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, 3])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes])
    inits = [numpy_helper.from_array(np.array(1 / 255, np.float32), "rescale")]
    nodes = [helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Mul", ["nchw", "rescale"], ["h0"])]
    prev, cin = "h0", 3
    for i, cout in enumerate(widths):
        w = rng.normal(0, (2 / (9 * cin)) ** 0.5, (cout, cin, 3, 3)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1],
                                   strides=[2, 2] if i else [1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"h{i + 1}"])]
        prev, cin = f"h{i + 1}", cout
    if hidden:
        side = size // 2 ** (len(widths) - 1)
        feat = cin * side * side
        wh = rng.normal(0, (2 / feat) ** 0.5, (feat, hidden)).astype(np.float32)
        inits.append(numpy_helper.from_array(wh, "wh"))
        nodes += [helper.make_node("Flatten", [prev], ["feat"]), helper.make_node("MatMul", ["feat", "wh"], ["hm"]),
                  helper.make_node("Relu", ["hm"], ["flat"])]
        cin = hidden
    else:
        nodes += [helper.make_node("GlobalAveragePool", [prev], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"])]
    wd = rng.normal(0, 0.1, (cin, classes)).astype(np.float32)
    inits.append(numpy_helper.from_array(wd, "wd"))
    nodes += [helper.make_node("MatMul", ["flat", "wd"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    graph = helper.make_graph(nodes, "conv", [x], [y], initializer=inits)
    return _save(graph, path, [f"class{i}" for i in range(classes)], size, "conv")


def solid_png(rgb: tuple[int, int, int], size: int = 40) -> bytes:
    """An encoded PNG of one colour."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, "PNG")
    return buf.getvalue()


def write_video(path: Path, frames_per_colour: int = 20, rounds: int = 1, size: tuple[int, int] = (96, 72)) -> Path:
    """An MJPG .avi cycling red, green, blue (cv2.VideoWriter, as a camera stand-in)."""
    import cv2
    import numpy as np

    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for _ in range(rounds):
        for rgb in COLOURS.values():
            frame = np.zeros((h, w, 3), np.uint8)
            frame[:] = rgb[::-1]
            cv2.rectangle(frame, (w // 4, h // 4), (3 * w // 4, 3 * h // 4), (255, 255, 255), 1)
            for _ in range(frames_per_colour):
                vw.write(frame)
    vw.release()
    if not path.stat().st_size:
        raise RuntimeError(f"OpenCV wrote an empty video: {path}")
    return path
