"""Videos written with OpenCV whose frames come from held-out images, and FrameEvents from a real Pipeline run
over them (what the station engine hands its observers)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from edgecnn.imaging import load_image, scan_labelled_folder
from edgecnn.station.events import WHOLE_FRAME, FrameEvent, Region, RegionPrediction

FRAME_SIDE = 48


def heldout_images(folder: Path, side: int = FRAME_SIDE) -> list[np.ndarray]:
    """Every image of a labelled folder as RGB uint8 ``side`` x ``side``."""
    files = scan_labelled_folder(folder)
    return [load_image(f, side, side, "rgb", "area") for f in files.files]


def write_video(path: Path, images: list[np.ndarray], frames: int, seed: int = 0,
                transform: Callable[[int, np.ndarray], np.ndarray] | None = None, fps: float = 30.0,
                repeat: int = 1) -> Path:
    """An MJPG ``.avi`` of ``frames`` frames, each a random held-out image (``transform(index, rgb)`` applied;
    ``repeat``: each image stays that many frames, as a part standing under the camera)."""
    h, w = images[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert out.isOpened(), "OpenCV cannot write MJPG video"
    rng = np.random.default_rng(seed)
    try:
        img = images[0]
        for i in range(frames):
            if i % repeat == 0:
                img = images[int(rng.integers(len(images)))]
            shown = transform(i, img) if transform is not None else img
            out.write(cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
    finally:
        out.release()
    return path


def darker(after: int, factor: float = 0.7) -> Callable[[int, np.ndarray], np.ndarray]:
    """Frames from ``after`` on are ``factor`` as bright (0.7: a 30 % drop)."""
    def f(i: int, img: np.ndarray) -> np.ndarray:
        return img if i < after else np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)
    return f


def blurred(after: int, sigma: float = 2.5) -> Callable[[int, np.ndarray], np.ndarray]:
    def f(i: int, img: np.ndarray) -> np.ndarray:
        return img if i < after else cv2.GaussianBlur(img, (0, 0), sigma)
    return f


def frozen(after: int) -> Callable[[int, np.ndarray], np.ndarray]:
    held: list[np.ndarray] = []

    def f(i: int, img: np.ndarray) -> np.ndarray:
        if i < after:
            return img
        if not held:
            held.append(img)
        return held[0]
    return f


def pipeline_events(model: Path, video: Path, source: str = "cam", batch: int = 64) -> Iterator[FrameEvent]:
    """Run the real pipeline (the model's backend over the video) and yield the FrameEvents the engine would."""
    from edgecnn.runtime.backends import load_backend
    from edgecnn.runtime.pipeline import Pipeline
    from edgecnn.runtime.sources.files import VideoFileSource

    be = load_backend(model)
    try:
        for frame, r in Pipeline(be, VideoFileSource(video), batch=batch, topk=3, keep_images=True):
            img = frame.image
            h, w = img.shape[:2]
            now = time.time()
            pred = RegionPrediction(source=source, region=WHOLE_FRAME, frame=frame.index, captured_at=now,
                                    label=r.label, score=float(r.score), topk=tuple(r.topk),
                                    class_index=r.class_index, probs=r.probs)
            yield FrameEvent(source=source, frame=frame.index, captured_at=now, image=img,
                             regions=(Region(WHOLE_FRAME, 0, 0, w, h),), predictions=(pred,))
    finally:
        be.close()
