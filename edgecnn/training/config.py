"""``TrainConfig``: every option of ``edgecnn train``, its validation, and the preset < file < flags layering.

Layers, lowest first: dataclass defaults < preset TOML (``--preset``) < ``--config`` TOML < CLI flags.
TOML files may group keys in the tables ``[data]``, ``[model]``, ``[augment]``, ``[train]`` and ``[output]``
or write them flat; unknown keys are an error that suggests the closest valid key.

Pure Python: importing this module never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edgecnn import config as cfgmod
from edgecnn.errors import ConfigError, DataError
from edgecnn.imaging import INTERPOLATIONS, color_for_channels, parse_img_size
from edgecnn.runs import latest_run
from edgecnn.training.architectures import ARCHITECTURES, ArchKnobs
from edgecnn.training.augmentation import AugmentSpec
from edgecnn.training.backend import KERAS_BACKENDS, default_backend, parse_devices
from edgecnn.training.builtin import BUILTIN_DATASETS

SECTIONS = ("data", "model", "augment", "train", "output")
LR_SCHEDULES = ("constant", "step", "cosine")
HEADS = ("auto", "softmax", "sigmoid")
#: Options that act on one invocation (what to do with the run folder) and are never written to ``config.toml``.
INVOCATION_ONLY = ("resume", "exist_ok")


@dataclass
class TrainConfig:
    """All options of a training run (the resolved copy is written to the run's ``config.toml``).

    Attributes:
        data: Folder with one sub-folder per class.
        test_data: Optional separate test folder (same class names); else a held-out split is made.
        dataset: Built-in dataset name instead of ``data`` (``digits``).
        preset: Name of the preset the run started from (informational once resolved).
        img_size: ``"N"`` or ``"HxW"``.
        channels: 1 (grayscale) or 3 (RGB).
        interpolation: Resize interpolation, shared with every runtime (see ``edgecnn.imaging``).
        resize_augment: Train on each image resized by a method drawn per image and epoch from
            :data:`edgecnn.imaging.TRAIN_RESIZES` (area, bilinear with and without antialiasing, nearest), so the
            model does not hang on one resampler (a consumer such as MediaPipe resizes its own way). Validation,
            test and every runtime keep ``interpolation``.
        arch: Architecture name from :data:`edgecnn.training.architectures.ARCHITECTURES` (a Keras Applications
            backbone among them: ``mobilenet-v3-small``, ``mobilenet-v3-large``, ``mobilenet-v2``, ``efficientnet-b0``).
        weights: Starting weights (:mod:`edgecnn.training.weights`): None (random), ``imagenet`` (Keras' cache),
            a ``.h5``/``.weights.h5`` file, a ``model.keras`` or an edgecnn run folder.
        finetune_epochs: A pretrained backbone trains in two phases: ``epochs`` with the backbone frozen, then
            ``finetune_epochs`` with its top ``unfreeze_blocks`` blocks trainable at ``finetune_lr``
            (default ``lr / 10``); 0 = the frozen phase only.
        unfreeze_blocks: Blocks of the backbone (from the top) trained in the fine-tuning phase.
        finetune_lr: Learning rate of the fine-tuning phase (None = ``lr / 10``).
        head: ``auto`` (sigmoid for two classes, softmax otherwise), ``softmax`` or ``sigmoid``.
        filters, kernel_size, strides, pool_size, dropout, l2, dense_units, depth: Architecture knobs.
        epochs, batch, lr, lr_schedule, lr_step, lr_gamma, patience: Optimisation (Adam).
        val_split, test_split, seed: Shuffled, stratified splits.
        class_weights: Weight classes inversely to their frequency ("balanced").
        label_smoothing: Label smoothing of the softmax cross-entropy.
        mixed_precision: float16 compute on GPU (ignored with a warning on CPU).
        backend: Keras backend that trains (``tensorflow``, ``jax``, ``torch``); None = ``$KERAS_BACKEND``, else
            tensorflow. Resolved when the config is built, so ``config.toml`` records the backend that trained.
        devices: Local devices to train on, data-parallel: ``"1"``, ``"N"`` or ``"all"``. ``batch`` is the global
            batch, split evenly across devices; the learning rate is not scaled.
        rotation, width_shift, height_shift, shear, zoom, hflip, vflip: Training-time augmentation with the
            meaning of Keras' classic ``ImageDataGenerator`` (degrees, fractions of the size, flips).
        top_k: k of the top-k accuracy metric.
        strict: Unreadable images are an error instead of a warning.
        workers: Decoding threads (0 = one per CPU core).
        project, name, exist_ok, resume: Where the run folder goes and what to do if it exists.
        from_run: Fine-tune from this earlier run's weights (``--from RUN``): its architecture, input and
            augmentation options are the defaults, its classes must all be in ``data`` (new ones grow the head),
            and the new card names it as the parent.
        plots: Write the PNG plots.
        quiet: Silence the progress display.
    """

    data: str | None = None
    test_data: str | None = None
    dataset: str | None = None
    preset: str | None = None
    img_size: str = "64"
    channels: int = 3
    interpolation: str = "area"
    resize_augment: bool = True
    arch: str = "simple"
    weights: str | None = None
    finetune_epochs: int = 0
    unfreeze_blocks: int = 2
    finetune_lr: float | None = None
    head: str = "auto"
    filters: int = ArchKnobs.filters  # the knob defaults live in ArchKnobs and AugmentSpec
    kernel_size: int = ArchKnobs.kernel_size
    strides: int = ArchKnobs.strides
    pool_size: int = ArchKnobs.pool_size
    dropout: float = ArchKnobs.dropout
    l2: float = ArchKnobs.l2
    dense_units: int = ArchKnobs.dense_units
    depth: int = ArchKnobs.depth
    epochs: int = 25
    batch: int = 32
    lr: float = 0.001
    lr_schedule: str = "constant"
    lr_step: int = 10
    lr_gamma: float = 0.5
    patience: int = 5
    val_split: float = 0.2
    test_split: float = 0.1
    seed: int = 0
    class_weights: bool = False
    label_smoothing: float = 0.0
    mixed_precision: bool = False
    backend: str | None = None
    devices: str = "1"
    rotation: float = AugmentSpec.rotation
    width_shift: float = AugmentSpec.width_shift
    height_shift: float = AugmentSpec.height_shift
    shear: float = AugmentSpec.shear
    zoom: float = AugmentSpec.zoom
    hflip: bool = AugmentSpec.hflip
    vflip: bool = AugmentSpec.vflip
    top_k: int = 5  # one default with run, evaluate and predict (issue 25)
    strict: bool = False
    workers: int = 0
    project: str = "runs/train"
    name: str | None = None
    exist_ok: bool = False
    resume: bool = False
    from_run: str | None = None
    plots: bool = True
    quiet: bool = False

    # ------------------------------------------------------------------ derived values
    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        return parse_img_size(self.img_size)

    @property
    def color(self) -> str:
        """``rgb`` or ``grayscale``."""
        return color_for_channels(self.channels)

    @property
    def resize_variants(self) -> tuple[str, ...]:
        """Resize methods the training images are also cached with (``--resize-augment``), besides ``interpolation``."""
        from edgecnn.imaging import TRAIN_RESIZES

        return tuple(m for m in TRAIN_RESIZES if m != self.interpolation) if self.resize_augment else ()

    @property
    def augmenting(self) -> bool:
        return AugmentSpec.from_config(self).active

    def to_dict(self) -> dict[str, Any]:
        return cfgmod.to_dict(self)

    def to_toml(self) -> str:
        """The resolved configuration as TOML (loadable again with ``--config``).

        The per-invocation actions ``resume`` and ``exist_ok`` are left out: loaded again with ``--config``
        they would turn a new run into a resume of this one, or silently wipe this run folder.
        """
        return cfgmod.dumps(
            {k: v for k, v in self.to_dict().items() if v is not None and k not in INVOCATION_ONLY}
        )


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainConfig))


# ---------------------------------------------------------------------------- presets
def preset_names() -> list[str]:
    """Names of the presets shipped in ``edgecnn/training/presets/``."""
    folder = resources.files("edgecnn.training") / "presets"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    """The flat key/value layer of preset ``name`` (validated against :class:`TrainConfig`)."""
    names = preset_names()
    if name not in names:
        raise ConfigError(f"Unknown preset {name!r}; expected one of {names}.{cfgmod.suggest(name, names)}")
    path = resources.files("edgecnn.training") / "presets" / f"{name}.toml"
    layer = cfgmod.flatten(cfgmod.parse_toml(path.read_text(encoding="utf-8")), SECTIONS)
    layer.pop("description", None)
    cfgmod.check_keys(layer, TrainConfig, f"preset {name!r}")
    layer.pop("preset", None)
    return layer


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The flat key/value layer of a ``--config`` TOML file (validated against :class:`TrainConfig`)."""
    layer = cfgmod.flatten(cfgmod.load_toml(path), SECTIONS)
    cfgmod.check_keys(layer, TrainConfig, str(path))
    return layer


def build_config(
    preset: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Merge defaults < preset < config file < overrides into a validated :class:`TrainConfig`.

    Args:
        preset: Preset name (``--preset``); a ``preset`` key in the config file is used when this is None.
        config_file: A TOML file (``--config``).
        overrides: CLI flags; None values mean "not given" and do not override.

    Raises:
        ConfigError: unknown preset, unknown key (with a suggestion) or invalid value.
    """
    overrides = {k.replace("-", "_"): v for k, v in (overrides or {}).items() if v is not None}
    cfgmod.check_keys(overrides, TrainConfig, "the command line")
    if overrides.get("resume"):
        return validate(cfgmod.build(TrainConfig, _resume_layer(overrides), overrides))
    file_layer = load_config_file(config_file) if config_file is not None else {}
    preset = overrides.get("preset") or preset or file_layer.get("preset")
    preset_layer = load_preset(preset) if preset else {}
    parent_run = overrides.get("from_run") or file_layer.get("from_run")
    parent_layer = _parent_layer(parent_run) if parent_run else {}
    layers = [parent_layer, preset_layer, file_layer, overrides]
    for i, layer in enumerate(layers):  # a higher layer's data source replaces a lower layer's other one
        for key, other in (("data", "dataset"), ("dataset", "data")):
            if layer.get(key):
                for lower in layers[:i]:
                    lower.pop(other, None)
    cfg: TrainConfig = cfgmod.build(TrainConfig, *layers)
    if preset:
        cfg.preset = preset
    return validate(cfg)


def _resume_layer(overrides: dict[str, Any]) -> dict[str, Any]:
    """The resolved ``config.toml`` of the run being resumed (flags still override it, e.g. ``--epochs``)."""
    project = Path(overrides.get("project") or TrainConfig.project)
    name = overrides.get("name")
    run_dir = project / name if name else latest_run(project)
    if run_dir is None or not (run_dir / "config.toml").is_file():
        where = run_dir if run_dir is not None else project
        raise ConfigError(f"Nothing to resume in {where}: expected config.toml and weights/last.keras of an earlier run.")
    layer = load_config_file(run_dir / "config.toml")
    layer.update(name=run_dir.name, project=str(project), resume=True, exist_ok=False)
    return layer


#: Options a fine-tuned run takes from its parent (the weights only fit the same network on the same input).
PARENT_KEYS = ("img_size", "channels", "interpolation", "arch", "head", "filters", "kernel_size", "strides",
               "pool_size", "dropout", "l2", "dense_units", "depth")
#: Options a fine-tuned run does not take from its parent (where its data and run folder are, what to do).
NOT_INHERITED = ("data", "test_data", "dataset", "name", "exist_ok", "resume", "from_run", "preset", "project")


def parent_run_dir(run: str | os.PathLike[str]) -> Path:
    """The run folder ``--from`` names (a run folder or its ``model.keras``).

    Raises:
        ConfigError: not a finished run (no model.keras, modelcard.json and config.toml).
    """
    path = Path(run)
    if path.is_file() and path.suffix == ".keras":
        path = path.parent
    missing = [f for f in ("model.keras", "modelcard.json", "config.toml") if not (path / f).is_file()]
    if missing:
        raise ConfigError(f"Expected --from to name a finished training run (model.keras, modelcard.json, "
                          f"config.toml); {path} lacks {', '.join(missing)}.")
    return path


def _parent_layer(run: str) -> dict[str, Any]:
    """The parent's resolved options, less those that belong to one run (data, name, ...)."""
    layer = load_config_file(parent_run_dir(run) / "config.toml")
    return {k: v for k, v in layer.items() if k not in NOT_INHERITED}


def check_parent(cfg: TrainConfig) -> None:
    """The options the parent's weights need are the parent's (``--from`` with another ``--img-size``... fails)."""
    if not cfg.from_run:
        return
    parent = load_config_file(parent_run_dir(cfg.from_run) / "config.toml")
    for key in PARENT_KEYS:
        if key in parent and str(parent[key]) != str(getattr(cfg, key)):
            raise ConfigError(f"Expected {key} = {parent[key]!r} as in the parent run {cfg.from_run} (its weights "
                              f"fit that network only); received {getattr(cfg, key)!r}. Drop the option, or train "
                              "from scratch without --from.")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every value; normalise ``img_size`` to ``"HxW"``-style text. Returns ``cfg``.

    Raises:
        ConfigError: a value out of range or not one of the choices (with a suggestion).
        DataError: a bad ``img_size``/``channels``.
    """
    h, w = parse_img_size(cfg.img_size)
    cfg.img_size = str(h) if h == w else f"{h}x{w}"
    color_for_channels(cfg.channels)
    _choice("arch", cfg.arch, list(ARCHITECTURES))
    _choice("head", cfg.head, HEADS)
    _choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    _choice("interpolation", cfg.interpolation, list(INTERPOLATIONS))
    cfg.backend = cfg.backend or default_backend()
    _choice("backend", cfg.backend, KERAS_BACKENDS)
    cfg.devices = str(cfg.devices).strip().lower()
    count = parse_devices(cfg.devices)
    if count is not None and cfg.batch % count:
        raise ConfigError(
            f"Expected --batch divisible by --devices (the global batch is split evenly); received batch {cfg.batch} "
            f"for {count} devices. Use --batch {max(count, cfg.batch - cfg.batch % count)}."
        )
    if cfg.data and cfg.dataset:
        raise ConfigError(f"Expected --data or --dataset, not both; received data={cfg.data!r}, dataset={cfg.dataset!r}.")
    if not cfg.data and not cfg.dataset and not cfg.resume:
        raise ConfigError("Expected training data: --data DIR (one sub-folder per class) or --dataset digits.")
    if cfg.dataset:
        _choice("dataset", cfg.dataset, list(BUILTIN_DATASETS))
    positive_ints = ("epochs", "batch", "filters", "kernel_size", "strides", "pool_size", "depth", "top_k", "lr_step")
    for key in positive_ints:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"Expected {key} >= 1; received {getattr(cfg, key)}.")
    for key in ("dense_units", "workers", "patience"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"Expected {key} >= 0; received {getattr(cfg, key)}.")
    backbone = ARCHITECTURES[cfg.arch].backbone
    if (cfg.finetune_epochs < 0 or cfg.unfreeze_blocks < 1) or (cfg.finetune_lr is not None and not cfg.finetune_lr > 0):
        raise ConfigError(f"Expected finetune_epochs >= 0, unfreeze_blocks >= 1 and finetune_lr > 0; received "
                          f"{cfg.finetune_epochs}, {cfg.unfreeze_blocks}, {cfg.finetune_lr}.")
    if cfg.finetune_epochs and (backbone is None or not cfg.weights):
        raise ConfigError(f"Expected a pretrained backbone (--arch {'/'.join(n for n, a in ARCHITECTURES.items() if a.backbone)} "
                          f"with --weights) for --finetune-epochs; received --arch {cfg.arch}"
                          f"{'' if cfg.weights else ' without --weights'}.")
    if backbone is not None and cfg.channels != 3:
        raise ConfigError(f"Expected --channels 3 for --arch {cfg.arch} (a Keras Applications backbone takes RGB); "
                          f"received {cfg.channels}.")
    if backbone is not None and min(parse_img_size(cfg.img_size)) < 32:
        raise ConfigError(f"Expected --img-size at least 32 for --arch {cfg.arch}; received {cfg.img_size}.")
    if cfg.weights and cfg.from_run:
        raise ConfigError(f"Expected --weights or --from, not both; received --weights {cfg.weights} and --from "
                          f"{cfg.from_run}. --from continues a run (same network and classes); --weights seeds a new one.")
    if cfg.depth > 8:
        raise ConfigError(f"Expected depth <= 8; received {cfg.depth}.")
    if not cfg.lr > 0:
        raise ConfigError(f"Expected lr > 0; received {cfg.lr}.")
    if not 0 < cfg.lr_gamma <= 1:
        raise ConfigError(f"Expected 0 < lr_gamma <= 1; received {cfg.lr_gamma}.")
    if not 0 < cfg.val_split < 1:
        raise ConfigError(f"Expected 0 < val_split < 1; received {cfg.val_split}.")
    if not 0 <= cfg.test_split < 1 or cfg.val_split + cfg.test_split >= 0.9:
        raise ConfigError(
            f"Expected 0 <= test_split and val_split + test_split < 0.9; received {cfg.test_split} + {cfg.val_split}."
        )
    for key in ("dropout", "label_smoothing"):
        if not 0 <= getattr(cfg, key) < 1:
            raise ConfigError(f"Expected 0 <= {key} < 1; received {getattr(cfg, key)}.")
    if cfg.l2 < 0:
        raise ConfigError(f"Expected l2 >= 0; received {cfg.l2}.")
    if not 0 <= cfg.rotation <= 180 or not 0 <= cfg.shear <= 89:
        raise ConfigError(f"Expected rotation in 0..180 and shear in 0..89 degrees; received {cfg.rotation}, {cfg.shear}.")
    for key in ("width_shift", "height_shift", "zoom"):
        if not 0 <= getattr(cfg, key) < 1:
            raise ConfigError(f"Expected 0 <= {key} < 1 (a fraction); received {getattr(cfg, key)}.")
    if cfg.from_run and cfg.resume:
        raise ConfigError("Expected --from RUN or --resume, not both; --resume continues a run that already "
                          "records its parent.")
    check_parent(cfg)
    if cfg.name is not None and (not cfg.name or Path(cfg.name).name != cfg.name or cfg.name in (".", "..")):
        raise ConfigError(f"Expected --name to be a plain folder name; received {cfg.name!r}.")
    return cfg


def _choice(key: str, value: Any, valid: list[str] | tuple[str, ...]) -> None:
    if value not in valid:
        err = DataError if key == "dataset" else ConfigError
        raise err(f"Unknown {key} {value!r}; expected one of {list(valid)}.{cfgmod.suggest(str(value), valid)}")
