"""Classify numpy frames with an exported model, TensorFlow-free: python classify_frames.py MODEL IMAGE..."""
import sys

import numpy as np
from PIL import Image

import edgecnn

clf = edgecnn.load(sys.argv[1])  # .tflite / .onnx / .keras / run folder; labels and preprocessing from its card
for path in sys.argv[2:]:
    frame = np.asarray(Image.open(path).convert("RGB"))  # HxWx3 uint8 RGB, any size (OpenCV frames: bgr=True)
    p = clf.predict(frame)
    print(f"{path}\t{p.label}\t{p.score:.6f}")
