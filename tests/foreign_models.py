"""Models made elsewhere, built inside the tests from configuration (no download), and their own predictions.

* :func:`torch_onnx`: a PyTorch CNN exported with ``torch.onnx.export`` (NCHW, dynamic batch, logits output), with a
  partial card beside it that says ``convention: torchvision`` (ImageNet mean/std on 0..1, shortest side + crop);
* :func:`ultralytics_onnx`: the same graph conventions as ``yolo export format=onnx`` of a classifier (NCHW,
  softmax probabilities, 0..1 input) and its ``metadata_props`` (``author``, ``task``, ``names``, ``imgsz``);
* :func:`ultralytics_tflite`: as Ultralytics' TFLite export (NHWC float, 0..1, softmax) with its packed
  ``metadata.json``;
* :func:`minus_one_tflite`: a plain TFLite taking [-1, 1], no metadata;
* :func:`two_output_tflite` / :func:`two_output_onnx`: models that are not classifiers.

Each returns the model path and ``reference(images) -> top-1 indices``: the producing framework's own predictions
on RGB uint8 images, with the producer's own preprocessing written out here (centre crop, scaling, mean/std).
Images come from :func:`write_images`: sizes whose shortest side equals the input size, so the producer's resize is
the identity and only the crop is exercised (agreement then measures conventions, not resampling filters).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

SIZE = 32
LABELS = ["cat", "dog", "fox"]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def write_images(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """A labelled folder (class sub-folders named by :data:`LABELS`) of PNGs, 32×40, 40×32 or 32×32, with coloured
    shapes so that images differ in colour and layout."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = [(SIZE, SIZE + 8), (SIZE + 8, SIZE), (SIZE, SIZE)]
    for k, label in enumerate(LABELS):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = sizes[i % 3]
            img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
            y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
            img[y : y + h // 2, x : x + w // 2, k] = rng.integers(150, 256)
            img[..., (k + 1) % 3] //= 2
            Image.fromarray(img).save(folder / f"{label}_{i:02d}.png")
    return root


def center_crop(img: np.ndarray, size: int = SIZE) -> np.ndarray:
    """torchvision's CenterCrop on an image whose shortest side already is ``size``."""
    h, w = img.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img[top : top + size, left : left + size]


def _torch_net(num_outputs: int = 1, softmax: bool = False):
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten())
            self.head = torch.nn.Linear(16, len(LABELS))
            self.aux = torch.nn.Linear(16, 4)

        def forward(self, x):
            f = self.body(x)
            logits = self.head(f) * 4.0
            out = torch.softmax(logits, dim=1) if softmax else logits
            return (out, self.aux(f)) if num_outputs == 2 else out

    return Net().eval()


def _train_torch(net, x_nchw: np.ndarray, y: np.ndarray, steps: int = 30) -> None:
    """A few full-batch Adam steps so the tiny net predicts several classes with margin (not one class by chance)."""
    import torch

    torch.set_num_threads(1)  # tiny tensors: more threads only contend with the other tests' processes
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    x, t = torch.from_numpy(np.ascontiguousarray(x_nchw, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        out = net.body(x)
        loss = torch.nn.functional.cross_entropy(net.head(out) * 4.0, t)
        loss.backward()
        opt.step()
    net.eval()


def _export_torch(net, path: Path, outputs: list[str]) -> None:
    import torch

    x = torch.zeros(1, 3, SIZE, SIZE)
    torch.onnx.export(net, (x,), str(path), input_names=["images"], output_names=outputs, opset_version=17,
                      dynamic_axes={"images": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}, dynamo=False)


def _torch_top1(net, nchw: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(nchw)))
    return out.numpy().argmax(axis=1)


def training_set(data: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The RGB images of a :func:`write_images` folder and their class indices."""
    from edgecnn.imaging import decode_image, scan_labelled_folder

    ds = scan_labelled_folder(data, LABELS)
    return [decode_image(f) for f in ds.files], np.asarray(ds.targets)


def torch_onnx(folder: Path, data: Path):
    """PyTorch → ONNX (legacy exporter): NCHW, logits, a partial card beside it saying torchvision's conventions."""
    net = _torch_net()

    def prep(images: list[np.ndarray]) -> np.ndarray:
        x = np.stack([center_crop(i) for i in images]).astype(np.float32) / 255.0
        return ((x - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)

    images, y = training_set(data)
    _train_torch(net, prep(images), y)
    path = folder / "torchnet.onnx"
    _export_torch(net, path, ["logits"])
    (folder / "torchnet.json").write_text(json.dumps({"labels": LABELS,
                                                      "preprocessing": {"convention": "torchvision"}}))
    return path, lambda images: _torch_top1(net, prep(images))


def ultralytics_onnx(folder: Path, data: Path):
    """An ONNX file with Ultralytics' classify conventions: NCHW 0..1 input, softmax output, its metadata_props."""
    import onnx

    net = _torch_net(softmax=True)

    def prep(images: list[np.ndarray]) -> np.ndarray:
        return (np.stack([center_crop(i) for i in images]).astype(np.float32) / 255.0).transpose(0, 3, 1, 2)

    images, y = training_set(data)
    _train_torch(net, prep(images), y)
    path = folder / "yolo-cls.onnx"
    _export_torch(net, path, ["output0"])
    model = onnx.load(str(path))
    names = {i: n for i, n in enumerate(LABELS)}
    for key, value in {"description": "Ultralytics YOLOv8n-cls model", "author": "Ultralytics", "task": "classify",
                       "stride": "1", "batch": "1", "imgsz": str([SIZE, SIZE]), "names": str(names)}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path, lambda images: _torch_top1(net, prep(images))


def _fit_keras(model, x: np.ndarray, y: np.ndarray) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(0.03), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=not isinstance(model.layers[-1], keras.layers.Softmax)))
    model.fit(x, y, epochs=25, batch_size=len(x), verbose=0)


def _keras_net(outputs: int = 1, softmax: bool = True, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(len(LABELS), kernel_initializer=keras.initializers.RandomNormal(stddev=2.0))(x)
    head = keras.layers.Softmax()(logits) if softmax else logits
    outs = [head, keras.layers.Dense(4)(x)] if outputs == 2 else head
    return keras.Model(inputs, outs)


def _tflite_bytes(model) -> bytes:
    import tensorflow as tf

    return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def ultralytics_tflite(folder: Path, data: Path):
    """A float TFLite as Ultralytics writes one: NHWC 0..1, softmax, ``metadata.json`` zipped after the model."""
    model = _keras_net()

    def prep(images: list[np.ndarray]) -> np.ndarray:
        return np.stack([center_crop(i) for i in images]).astype(np.float32) / 255.0

    images, y = training_set(data)
    _fit_keras(model, prep(images), y)
    path = folder / "yolo-cls_float32.tflite"
    path.write_bytes(_tflite_bytes(model))
    meta = {"description": "Ultralytics YOLOv8n-cls model", "author": "Ultralytics", "task": "classify",
            "stride": 1, "batch": 1, "imgsz": [SIZE, SIZE], "names": {str(i): n for i, n in enumerate(LABELS)}}
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta, indent=2))

    return path, lambda images: np.asarray(model(prep(images), training=False)).argmax(axis=1)


def minus_one_tflite(folder: Path, data: Path):
    """A plain float TFLite (no metadata, no labels) whose model takes [-1, 1] and stretches the image (bilinear)."""
    import cv2

    model = _keras_net(seed=1)

    def prep(images: list[np.ndarray]) -> np.ndarray:
        x = np.stack([cv2.resize(i, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for i in images])
        return x.astype(np.float32) / 127.5 - 1.0

    images, y = training_set(data)
    _fit_keras(model, prep(images), y)
    path = folder / "minus_one.tflite"
    path.write_bytes(_tflite_bytes(model))
    return path, lambda images: np.asarray(model(prep(images), training=False)).argmax(axis=1)


def two_output_tflite(folder: Path) -> Path:
    path = folder / "two_outputs.tflite"
    path.write_bytes(_tflite_bytes(_keras_net(outputs=2)))
    return path


def two_output_onnx(folder: Path) -> Path:
    path = folder / "two_outputs.onnx"
    _export_torch(_torch_net(num_outputs=2), path, ["scores", "boxes"])
    return path
