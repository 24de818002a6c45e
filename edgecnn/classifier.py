"""``edgecnn.load(model)`` → :class:`Classifier`: classify numpy frames, PIL images, files or whole sources.

The classifier is a thin layer over the runtime that ``edgecnn run`` uses: the same backend (LiteRT,
ONNX Runtime or Keras), the same host preprocessing (:func:`edgecnn.imaging.preprocess` with the model
card's size, colour and interpolation), the same quantization and the same top-k rule. So
``clf.predict(frame)`` gives the label and score that ``edgecnn run`` prints for the same pixels.

>>> import edgecnn
>>> clf = edgecnn.load("model_int8.tflite")
>>> p = clf.predict(frame)                 # HxWxC uint8 RGB (bgr=True for OpenCV frames), PIL image or path
>>> p.label, p.score, p.topk, p.probs
>>> for p in clf.stream(camera=0): ...     # the sources of `edgecnn run`, as an iterator of predictions

Inputs that cannot be right (float arrays, values outside 0..255, a wrong number of channels or
dimensions, empty arrays, unreadable files) raise :class:`~edgecnn.errors.DataError` with one line
saying what was expected, what was received and the fix; nothing is silently rescaled or guessed.

The checks of each input live in :mod:`edgecnn.classifier_inputs` (re-exported here).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from edgecnn.classifier_inputs import array_to_rgb, to_rgb
from edgecnn.console import quiet_library
from edgecnn.errors import DataError, EdgeCNNError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image as PILImage

    from edgecnn.modelcard import ModelCard
    from edgecnn.runtime.backends import Backend
    from edgecnn.runtime.options import RunOptions
    from edgecnn.runtime.pipeline import Stats

#: One input of :meth:`Classifier.predict`: an image array, a PIL image, a file path or encoded file bytes.
ImageLike = Union[np.ndarray, "PILImage", str, os.PathLike, bytes]


@dataclass
class Prediction:
    """The classification of one input, as ``edgecnn run`` reports it.

    Attributes:
        label: Top-1 label (``"unknown"`` when its score is below the ``threshold`` asked for).
        score: Top-1 probability.
        class_index: Index of the top-1 class in :attr:`Classifier.labels`.
        topk: ``[(label, score), ...]``, highest first; ties go to the lower class index, as in ``run``.
        probs: Probabilities of every class (float32, in label order; a sigmoid head gives ``[1-p, p]``).
        source: The file path, ``"<array>"``, ``"<PIL image>"``, ``"<bytes>"``, or the stream's source name.
        frame: Position in the input list or stream (0-based).
        image: The RGB frame (uint8 HxWx3), only for streams opened with ``keep_images=True``.
    """

    label: str
    score: float
    class_index: int
    topk: list[tuple[str, float]]
    probs: np.ndarray = field(repr=False)
    source: str = "<array>"
    frame: int = 0
    image: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (probabilities as a list; the image left out)."""
        return {"source": self.source, "frame": self.frame, "label": self.label, "score": float(self.score),
                "class_index": self.class_index, "topk": [[lbl, float(s)] for lbl, s in self.topk],
                "probs": [float(v) for v in self.probs]}


# ---------------------------------------------------------------------------------------------- inputs
# ---------------------------------------------------------------------------------------------- classifier
class Classifier:
    """A loaded model that classifies images like ``edgecnn run``. Create it with :func:`edgecnn.load`.

    :meth:`predict` may be called from several threads (calls run one at a time on the one interpreter); a
    stream runs inference on its own threads, so don't call :meth:`predict` while a stream of the same
    classifier is being iterated (load a second classifier for that).

    Attributes:
        path: The model file that runs (a run folder resolves to its ``model.keras``).
        card: The model card: labels, input size, colour, interpolation, provenance.
        labels: Class names, in the order of :attr:`Prediction.probs`.
        backend: The runtime backend object (``tflite``, ``onnx`` or ``keras``).
    """

    def __init__(self, backend: Backend, options: RunOptions) -> None:
        self.backend = backend
        self._options = options
        self._lock = threading.Lock()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise EdgeCNNError(f"This classifier of {self.backend.path.name} is closed; expected predict()/stream() "
                               "before close() (or outside its `with` block). Load it again with edgecnn.load().")

    # ------------------------------------------------------------------ facts
    @property
    def path(self) -> Path:
        return self.backend.path

    @property
    def card(self) -> ModelCard:
        return self.backend.card

    @property
    def labels(self) -> list[str]:
        return list(self.backend.labels)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(height, width, channels) the model takes; inputs of any size are resized to it."""
        spec = self.card.input
        return spec.height, spec.width, spec.channels

    @property
    def max_batch(self) -> int | None:
        """The largest batch one inference call takes (None: any); longer lists are split."""
        return self.backend.max_batch

    def info(self) -> dict[str, Any]:
        """What runs: backend, runtime library and version, delegate or provider, threads."""
        return self.backend.info()

    def __repr__(self) -> str:
        b = self.backend.info()
        where = b.get("provider") or b.get("delegate") or "cpu"
        h, w, c = self.input_size
        return (f"<Classifier {self.path.name} on {b.get('runtime')} ({where}): {h}x{w}x{c} input, "
                f"{len(self.labels)} labels>")

    # ------------------------------------------------------------------ single images and lists
    def preprocess(self, item: ImageLike, bgr: bool = False) -> np.ndarray:
        """The model-sized uint8 HxWxC tensor of one input: exactly what ``edgecnn run`` feeds the model."""
        rgb, _ = to_rgb(item, bgr)
        return self.backend.preprocess(rgb)

    def predict(self, inputs: ImageLike | Sequence[ImageLike], *, bgr: bool = False, topk: int = 5,
                threshold: float = 0.0, batch: int | None = None) -> Prediction | list[Prediction]:
        """Classify one image, or a list of images (batched where the model allows).

        Args:
            inputs: A HxWxC uint8 numpy array (RGB; any size: it is resized with the model's interpolation), a
                HxW gray array, a PIL image, a path, encoded image bytes; or a list/tuple of these, or an NxHxWxC
                array, which give a list of predictions in the same order.
            bgr: Arrays are BGR(A), as OpenCV's ``cv2.imread``/``VideoCapture.read`` return them.
            topk: Labels kept in :attr:`Prediction.topk` (at most the number of classes).
            threshold: A top-1 score below it is reported as the label ``"unknown"`` (as ``run --threshold``).
            batch: Images per inference call for lists (default: the model's own limit, else 32).

        Returns:
            One :class:`Prediction` for one input; a list for a list, tuple or 4-D array.

        Raises:
            DataError: an input that cannot be right (see the module docstring); a list names the bad item.
        """
        self._check_open()
        if topk < 1:
            raise EdgeCNNError(f"Expected topk >= 1; received {topk}.")
        if not 0.0 <= threshold <= 1.0:
            raise EdgeCNNError(f"Expected threshold between 0 and 1; received {threshold}.")
        single = not isinstance(inputs, (list, tuple)) and not (isinstance(inputs, np.ndarray) and inputs.ndim == 4)
        items: Sequence[Any] = [inputs] if single else inputs
        n = len(items)
        tensors: list[np.ndarray] = []
        sources: list[str] = []
        for i, item in enumerate(items):
            what = "input" if single else f"input {i} of {n}"
            if isinstance(item, np.ndarray) and item.ndim == 4 and not single:
                raise DataError(f"Expected an image array HxW or HxWxC in {what}; received a 4-D array of shape "
                                f"{tuple(item.shape)}. Pass one NxHxWxC array, or a flat list of images.")
            rgb, src = to_rgb(item, bgr, what)
            tensors.append(self.backend.preprocess(rgb))
            sources.append(src)
        if not tensors:
            return []
        probs = self._infer(np.stack(tensors), batch)
        preds = [self._prediction(p, i, s, topk, threshold) for i, (p, s) in enumerate(zip(probs, sources))]
        return preds[0] if single else preds

    __call__ = predict

    def _infer(self, tensors: np.ndarray, batch: int | None) -> np.ndarray:
        limit = self.backend.max_batch
        size = max(1, min(batch or limit or 32, limit or batch or 32))
        with self._lock:
            return np.concatenate([self.backend.predict(tensors[i : i + size]) for i in range(0, len(tensors), size)])

    def _prediction(self, probs: np.ndarray, frame: int, source: str, topk: int, threshold: float,
                    image: np.ndarray | None = None) -> Prediction:
        from edgecnn.runtime.pipeline import UNKNOWN_LABEL, topk_of

        labels = self.backend.labels
        top = topk_of(probs, labels, min(topk, len(labels)))
        best, score = top[0]
        kept = [(labels[i], s) for i, s in top if s >= threshold] if threshold > 0 else [(labels[i], s) for i, s in top]
        return Prediction(label=labels[best] if score >= threshold else UNKNOWN_LABEL, score=score, class_index=best,
                          topk=kept, probs=probs, source=source, frame=frame, image=image)

    # ------------------------------------------------------------------ sources
    def stream(self, source: str | os.PathLike[str] | None = None, *, camera: int | None = None,
               width: int | None = None, height: int | None = None, fps: float | None = None,
               batch: int | None = None, topk: int = 5, threshold: float = 0.0, max_frames: int | None = None,
               duration: float | None = None, workers: int | None = None, reconnect_tries: int = 5,
               keep_images: bool = False, skip_unreadable: bool = True) -> PredictionStream:
        """Classify every frame of a source, as ``edgecnn run --source/--camera`` does, lazily.

        Args:
            source: An image, folder (recursive), glob, video file, rtsp/http URL, GStreamer pipeline,
                ``picamera2[:N]`` or ``synthetic[:FPS[:WxH]]`` (see ``edgecnn run --help``).
            camera: A camera index instead of ``source``.
            width, height, fps: Camera capture settings (default: the device profile's, else the camera's).
            batch: Images per inference call for folders and videos (live sources are never batched further).
            topk, threshold: As in :meth:`predict`.
            max_frames, duration: Stop after this many inputs or seconds.
            workers: Decoding threads for folders (default ``min(4, cores)``).
            reconnect_tries: Reopen attempts when a live source stops delivering.
            keep_images: Keep each RGB frame on :attr:`Prediction.image` (to draw on it or save it).
            skip_unreadable: Skip files that cannot be decoded with a warning, as ``run`` does (default);
                False raises :class:`~edgecnn.errors.DataError` at the first one.

        Returns:
            A :class:`PredictionStream`: iterate it (once) for :class:`Prediction` objects in input order;
            use it as a context manager, or call ``stop()``/``close()``, to end early.

        Raises:
            SourceError, DataError: a source that cannot be opened (raised here, before iterating).
        """
        self._check_open()
        return PredictionStream(self, source=source, camera=camera, width=width, height=height, fps=fps,
                                batch=batch, topk=topk, threshold=threshold, max_frames=max_frames, duration=duration,
                                workers=workers, reconnect_tries=reconnect_tries, keep_images=keep_images,
                                skip_unreadable=skip_unreadable)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Release the runtime (the classifier cannot predict afterwards: it then raises one clear error)."""
        self._closed = True
        self.backend.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PredictionStream:
    """An iterator of :class:`Prediction` over a source; see :meth:`Classifier.stream`.

    Attributes:
        name: The source's (masked) name.
        live: True for cameras and streams (frames are dropped to keep up, never batched).
        skipped: ``(source, error)`` of inputs that could not be decoded.
        stop_reason: Why iteration ended (``end``, ``max-frames``, ``duration``, ``stopped``), once it has.
    """

    def __init__(self, classifier: Classifier, *, source: str | os.PathLike[str] | None, camera: int | None,
                 width: int | None, height: int | None, fps: float | None, batch: int | None, topk: int,
                 threshold: float, max_frames: int | None, duration: float | None, workers: int | None,
                 reconnect_tries: int, keep_images: bool, skip_unreadable: bool) -> None:
        from edgecnn.errors import ConfigError
        from edgecnn.runtime.pipeline import Pipeline
        from edgecnn.runtime.sources import open_source

        if topk < 1:
            raise ConfigError(f"Expected topk >= 1; received {topk}.")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"Expected threshold between 0 and 1; received {threshold}.")
        if max_frames is not None and max_frames < 1:
            raise ConfigError(f"Expected max_frames >= 1; received {max_frames}.")
        if batch is not None and batch < 1:
            raise ConfigError(f"Expected batch >= 1; received {batch}.")
        opts = classifier._options
        self._classifier = classifier
        self._threshold = threshold
        self._keep = keep_images
        self._skip_unreadable = skip_unreadable
        backend = classifier.backend
        self._source = open_source(
            str(source) if source is not None else None, camera,
            width if width is not None else opts.width, height if height is not None else opts.height,
            fps if fps is not None else opts.fps, workers=workers or max(1, min(4, os.cpu_count() or 1)),
            transform=backend.preprocess, keep_image=keep_images, reconnect_tries=reconnect_tries)
        self._pipeline = Pipeline(backend, self._source, batch=batch or opts.batch or 1,
                                  topk=min(topk, len(backend.labels)), threshold=threshold, max_frames=max_frames,
                                  duration=duration, keep_images=keep_images)
        self.name = self._source.name
        self.live = self._source.live
        self.skipped: list[tuple[str, str]] = []
        self._started = False
        self._closed = False

    @property
    def stop_reason(self) -> str | None:
        return self._pipeline.stop_reason

    @property
    def stats(self) -> Stats:
        """Running counts and mean preprocess/inference/postprocess times (``stats.fps()``)."""
        return self._pipeline.stats

    @property
    def dropped(self) -> int:
        """Frames a live source dropped to stay current."""
        return self._source.dropped

    def __iter__(self) -> Iterator[Prediction]:
        if self._started or self._closed:
            raise EdgeCNNError(f"This stream of {self.name} was already iterated or closed; call clf.stream(...) again.")
        self._started = True
        from edgecnn.console import warn

        results = iter(self._pipeline)
        try:
            for frame, r in results:
                if not r.ok:
                    self.skipped.append((r.source, r.error or ""))
                    if not self._skip_unreadable:
                        raise DataError(r.error or f"Cannot decode {r.source}.")
                    warn(f"Skipped {r.source}: {r.error}")
                    continue
                yield Prediction(label=r.label, score=r.score, class_index=r.class_index, topk=list(r.topk),
                                 probs=r.probs if r.probs is not None else np.zeros(0, np.float32),
                                 source=r.source, frame=r.index, image=frame.image if self._keep else None)
        finally:
            results.close()
            self._closed = True

    def stop(self) -> None:
        """End the stream after the frames in flight (safe from another thread or a signal handler)."""
        self._pipeline.stop("stopped")

    def close(self) -> None:
        """Stop and release the source (a stream never iterated still holds an open camera)."""
        self._pipeline.stop("stopped")
        if not self._started:
            self._source.close()
        self._closed = True

    def __enter__(self) -> PredictionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._started and not self._closed:
                self._source.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass


@quiet_library()
def load(model: str | os.PathLike[str], *, backend: str = "auto", threads: int | None = None,
         device: str | None = None, delegate: str | None = None, delegate_options: dict[str, str] | None = None,
         providers: Sequence[str] | None = None, unsafe: bool = False, layout: str | None = None,
         input_range: str | tuple[float, float] | None = None, mean: str | Sequence[float] | None = None,
         std: str | Sequence[float] | None = None, color: str | None = None, resize: str | None = None,
         interpolation: str | None = None, labels: str | os.PathLike[str] | Sequence[str] | None = None,
         strict: bool = False, conventions: Any = None) -> Classifier:
    """Load a model for inference, as ``edgecnn run`` does.

    Args:
        model: A ``.tflite``, ``.onnx`` or ``.keras`` file, a training run folder (its ``model.keras`` where Keras is
            installed, else its best exported artifact) or an export folder (its best artifact for the installed
            runtime, as ``edgecnn run`` picks it).
        backend: ``auto`` (by file type), ``tflite``, ``onnx`` or ``keras``.
        threads: Interpreter / intra-op threads (default: the runtime's, or the device profile's).
        device: A device profile (``edgecnn devices list``, e.g. ``rpi4``) whose backend, threads, delegate,
            providers, camera settings and batch fill what is not given here.
        delegate: TFLite external delegate library, e.g. ``libedgetpu.so.1`` (or ``edgetpu``).
        delegate_options: Options of that delegate, e.g. ``{"device": "usb"}``.
        providers: ONNX Runtime providers in order (``["cuda", "cpu"]`` or full names).
        unsafe: Allow Keras models with Lambda layers (only files you trust).
        verbose: Let the runtime's own lines through (LiteRT's "Created TensorFlow Lite XNNPACK delegate", ...);
            by default loading is as quiet as ``edgecnn run``.
        layout, input_range, mean, std, color, resize, interpolation, labels, strict: the input conventions of a
            model made elsewhere, as ``run``'s flags (``layout="NCHW"``, ``input_range="0,1"``,
            ``mean=[0.485, 0.456, 0.406]``, ``labels="labels.txt"`` or a list; see :mod:`edgecnn.conventions`).
            What they state wins over the file; ``strict`` refuses a model whose conventions would be assumed.
        conventions: The same, as one :class:`edgecnn.conventions.Conventions` (the CLI's; wins over the above).

    Returns:
        A :class:`Classifier`.

    Raises:
        ModelError: missing or invalid model, unknown backend, a delegate that does not load.
        MissingDependencyError: the runtime for this file type is not installed (``pip install 'edgecnn[tflite]'``).
        ConfigError: unknown device profile.
    """
    from edgecnn.runtime.backends import load_backend
    from edgecnn.runtime.options import RunOptions
    from edgecnn.runtime.resolve import apply_device

    if Path(model).is_dir() and backend == "auto":
        from edgecnn.runtime.deploy import load_deploy_profile, pick_from_folder

        picked = pick_from_folder(model, prefer_keras=True)  # an export folder, or a run folder on an edge box
        model = load_deploy_profile(picked.profile).artifact if picked.profile else picked.model
    opts = apply_device(RunOptions(model=model, device=device, backend=None if backend == "auto" else backend,
                                   threads=threads, delegate=delegate, delegate_options=delegate_options,
                                   providers=list(providers) if providers else None, unsafe=unsafe))
    from edgecnn.conventions import Conventions

    conventions = conventions or Conventions(layout=layout, input_range=input_range, mean=None if mean is None else list(mean) if
                              not isinstance(mean, str) else mean, std=None if std is None else list(std) if
                              not isinstance(std, str) else std, color=color, resize=resize,
                              interpolation=interpolation, labels=list(labels) if isinstance(labels, (list, tuple))
                              else labels, strict=strict)
    be = load_backend(opts.model, backend=opts.backend or "auto", threads=opts.threads, delegate=opts.delegate,
                      delegate_options=opts.delegate_options, providers=opts.providers, unsafe=opts.unsafe,
                      conventions=conventions)
    return Classifier(be, opts)


__all__ = ["Classifier", "ImageLike", "Prediction", "PredictionStream", "array_to_rgb", "load", "to_rgb"]
