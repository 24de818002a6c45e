"""What ``edgecnn run`` takes (:class:`RunOptions`) and the checks that need no model.

Lower than the run loop (:mod:`edgecnn.runtime.runner`) and than what resolves options from profiles
(:mod:`edgecnn.runtime.resolve`), so ``devices service`` and the station plan check values without importing either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import ConfigError
from edgecnn.runs import MODEL_FILENAME
from edgecnn.runtime.sources.kinds import source_kind


@dataclass
class RunOptions:
    """Everything ``edgecnn run`` takes (a device profile fills the ones left as None)."""

    model: str | os.PathLike[str] | None
    source: str | None = None
    camera: int | None = None
    device: str | None = None
    backend: str | None = None
    threads: int | None = None
    delegate: str | None = None
    delegate_options: dict[str, str] | None = None
    providers: list[str] | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    batch: int | None = None
    topk: int = 5
    threshold: float = 0.0
    save_csv: str | os.PathLike[str] | None = None
    save_jsonl: str | os.PathLike[str] | None = None
    save_parquet: str | os.PathLike[str] | None = None
    save_dir: str | os.PathLike[str] | None = None
    show: bool = False
    max_frames: int | None = None
    duration: float | None = None
    workers: int | None = None
    reconnect_tries: int = 5
    print_results: bool | None = None
    status_every: float = 1.0
    unsafe: bool = False
    profile: str | os.PathLike[str] | None = None  # a deploy profile from ``bench --pick``: artifact, backend, threads, batch
    # hostile inputs (issue 19): one pixel limit for every decoder, credentials masked, logs that cannot be forged
    max_pixels: int | None = None  # --max-pixels (None: $EDGECNN_MAX_PIXELS or edgecnn.imaging.DEFAULT_MAX_PIXELS)
    secret_params: list[str] | None = None  # --secret-param NAME: more parameter names whose values are masked
    csv_raw: bool = False  # --csv-raw: formula-leading CSV cells written as they are (no leading ')
    follow_symlinks: bool = False  # --follow-symlinks: an output path may be a symlink
    # input conventions of a model made elsewhere (issue 23, edgecnn.conventions.Conventions; None: the file's)
    layout: str | None = None
    input_range: str | None = None
    mean: str | None = None
    std: str | None = None
    color: str | None = None
    resize: str | None = None
    interpolation: str | None = None
    labels: str | os.PathLike[str] | None = None
    strict: bool = False
    #: The device and deploy profiles were applied (:func:`edgecnn.runtime.resolve.resolve_options`): resolving
    #: again changes nothing, so engines that receive a plan's options never re-derive them.
    resolved: bool = False


def conventions_of(opts: RunOptions) -> object:
    """The :class:`edgecnn.conventions.Conventions` stated in run options (None when none is)."""
    from edgecnn.conventions import Conventions

    return Conventions.from_options(opts)


#: Sources whose frames are decoded while inference runs, on worker threads (folders, globs, lists, Parquet tables
#: of paths) or on the reading thread (video files): the cores are shared, so onnxruntime's threads sleep between
#: nodes instead of spin-waiting (spinning cost a folder run 10 % wall time and 27 % CPU).
DECODING_KINDS = frozenset({"glob", "folder", "list", "parquet", "video"})


def decodes_on_threads(opts: RunOptions) -> bool:
    """Whether the run's source decodes on threads that share the cores with inference (see :data:`DECODING_KINDS`);
    a camera, a stream or one image is latency first."""
    if opts.source is None:
        return False
    kind = source_kind(str(opts.source))
    return kind is not None and kind.name in DECODING_KINDS


def validate_options(opts: RunOptions) -> None:
    """The checks of :func:`run` that need no model (``devices service`` applies them to its ``--args``).

    Raises:
        ConfigError / SourceError: a value out of range, or both a camera and a source.
    """
    if opts.topk < 1:
        raise ConfigError(f"Expected --top-k >= 1; received {opts.topk}.")
    if not 0.0 <= opts.threshold <= 1.0:
        raise ConfigError(f"Expected --threshold between 0 and 1; received {opts.threshold}.")
    if opts.batch is not None and opts.batch < 1:
        raise ConfigError(f"Expected --batch >= 1; received {opts.batch}.")
    if opts.max_frames is not None and opts.max_frames < 1:
        raise ConfigError(f"Expected --max-frames >= 1; received {opts.max_frames}.")
    if opts.source is not None and opts.camera is not None:
        from edgecnn.errors import SourceError

        raise SourceError("Expected --camera or --source, not both; received both.")
    if opts.camera is not None and opts.camera < 0:
        raise ConfigError(f"Expected --camera >= 0 (a V4L2 index); received {opts.camera}.")
    for key in ("threads", "width", "height", "workers"):
        value = getattr(opts, key)
        if value is not None and value < 1:
            raise ConfigError(f"Expected --{key} >= 1; received {value}.")
    if opts.fps is not None and not opts.fps > 0:
        raise ConfigError(f"Expected --fps > 0; received {opts.fps}.")
    if opts.duration is not None and opts.duration < 0:
        raise ConfigError(f"Expected --duration >= 0; received {opts.duration}.")
    if opts.reconnect_tries < 0:
        raise ConfigError(f"Expected --reconnect-tries >= 0; received {opts.reconnect_tries}.")


def _source_inputs(source: str | None) -> list[str]:
    """The local files and folders a ``--source`` reads (a glob's matches), for the output-path check."""
    if not source or "://" in source or source.startswith(("synthetic", "picamera2")) or "!" in source:
        return []
    if os.path.exists(source):
        return [source]
    if any(c in source for c in "*?["):
        import glob
        import itertools

        return list(itertools.islice(glob.iglob(source, recursive=True), 100_000))
    return []


def check_run_outputs(opts: RunOptions, writable: bool = True) -> None:
    """Refuse ``--save-csv``/``--save-jsonl``/``--save`` that are the model, a source file or folder, or each other.

    Raises:
        OutputConflictError: exit 2, before the model is loaded.
        OutputPathError: an output that cannot be written (read-only, permissions, a folder where a file goes).
    """
    from edgecnn.outputs import check_outputs

    model = Path(opts.model)
    models = [model / MODEL_FILENAME] if model.is_dir() else [model]  # a run folder is not image data
    check_outputs({"--save-csv": opts.save_csv, "--save-jsonl": opts.save_jsonl, "--save-parquet": opts.save_parquet,
                   "--save": opts.save_dir},
                  {"MODEL": models, "--source": _source_inputs(opts.source)}, folders={"--save"}, writable=writable,
                  follow_symlinks=opts.follow_symlinks)


__all__ = ["DECODING_KINDS", "RunOptions", "check_run_outputs", "decodes_on_threads", "validate_options"]
