"""Pipeline thread-safety regressions found by the code read of ``edgecnn/runtime`` (one test per defect)."""

from __future__ import annotations

import threading
import time

from edgecnn.runtime.backends import TFLiteBackend
from edgecnn.runtime.pipeline import Pipeline
from edgecnn.runtime.sources import open_source


class _SlowTFLite(TFLiteBackend):
    """The real TFLite backend, as slow as a small board (50 ms per call), so the infer thread is busy."""

    def infer(self, prepared):
        time.sleep(0.05)
        return super().infer(prepared)


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("edgecnn-infer", "edgecnn-preprocess")]


def test_leaving_early_stops_the_stage_threads(tflite_model, shapes_dir):
    """Closing the result iterator early (Ctrl-C, a sink raising, ``break``) used to let the drain swallow the
    producer's end marker while the infer thread was busy: that thread then waited forever on an empty queue,
    ``close()`` hung for 10 s and the thread (holding the interpreter) leaked."""
    backend = _SlowTFLite(tflite_model)
    try:
        for _ in range(3):
            source = open_source(str(shapes_dir), workers=2, transform=backend.preprocess)
            results = iter(Pipeline(backend, source, batch=4))
            for n, _item in enumerate(results):
                if n == 5:
                    break
            results.close()
            assert _stage_threads() == []
    finally:
        backend.close()


def test_finite_source_delivers_every_input_in_order_with_a_short_last_batch(tflite_model, shapes_dir):
    backend = TFLiteBackend(tflite_model)
    try:
        source = open_source(str(shapes_dir), workers=3, transform=backend.preprocess)
        files = list(source.files)
        got = [(r.index, r.source) for _f, r in Pipeline(backend, source, batch=7)]
    finally:
        backend.close()
    assert len(files) % 7 != 0
    assert got == [(i, str(f)) for i, f in enumerate(files)]


def test_save_dir_keeps_one_annotated_image_per_input(tflite_model, shapes_dir, tmp_path):
    """``--save-dir`` used to write same-named inputs to one file: a glob's ``cat/1.png`` and ``dog/1.png``
    both became ``out/1.png`` (the glob text is no folder to mirror), and ``a.gif``/``a.webp`` both ``a.png``."""
    import shutil

    from edgecnn.imaging import decode_image
    from edgecnn.runtime.runner import RunOptions, run

    src = sorted((shapes_dir / "alpha").iterdir())[:2]
    data = tmp_path / "data"
    for sub in ("cat", "dog"):
        (data / sub).mkdir(parents=True)
        shutil.copy(src[0], data / sub / "1.png")
    from PIL import Image

    Image.fromarray(decode_image(src[1])).save(data / "cat" / "a.gif")
    Image.fromarray(decode_image(src[1])).save(data / "cat" / "a.webp")
    out = tmp_path / "out"
    summary = run(RunOptions(model=tflite_model, source=str(data / "*" / "*.*"), save_dir=out, print_results=False))
    assert summary.ok == 4
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["cat/1.png", "cat/a.png", "cat/a_2.png", "dog/1.png"]


def test_live_annotated_video_covers_dropped_frames(tflite_model, tmp_path):
    """The annotated video of a live source is written at the source's frame rate, but frames dropped while
    inference was busy were simply missing: a 100 FPS source classified at ~20 FPS played 5x too fast."""
    import cv2

    from edgecnn.runtime.sinks import VideoSaver

    backend = _SlowTFLite(tflite_model)
    try:
        source = open_source("synthetic:100:64x48")
        saver = VideoSaver(tmp_path, "stream", source.fps)
        indices = []
        for frame, result in Pipeline(backend, source, max_frames=6, keep_images=True):
            saver.write(frame.image, result)
            indices.append(result.index)
        saver.close()
    finally:
        backend.close()
    assert source.dropped > 0
    cap = cv2.VideoCapture(str(saver.path))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == saver.count == indices[-1] - indices[0] + 1
