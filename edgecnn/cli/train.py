"""``edgecnn train``: parse options, call :func:`edgecnn.training.train`, print the run folder and accuracy.

Options default to None ("not given") so that the layers preset < ``--config`` < flags resolve in
:func:`edgecnn.training.build_config`. Only light imports at module level (no TensorFlow).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli.choices import EngineChoice
from edgecnn.imaging import INTERPOLATIONS
from edgecnn.training.architectures import ARCHITECTURES
from edgecnn.training.backend import ALL_DEVICES, KERAS_BACKENDS
from edgecnn.training.builtin import BUILTIN_DATASETS
from edgecnn.training.config import HEADS, LR_SCHEDULES, TrainConfig, preset_names

Schedule = Enum("Schedule", {s: s for s in LR_SCHEDULES}, type=str)  # type: ignore[misc]
Head = Enum("Head", {h: h for h in HEADS}, type=str)  # type: ignore[misc]
Interp = Enum("Interp", {i: i for i in INTERPOLATIONS}, type=str)  # type: ignore[misc]
Backend = Enum("Backend", {b: b for b in KERAS_BACKENDS}, type=str)  # type: ignore[misc]

DATA = "Data"
MODEL = "Model"
AUG = "Augmentation"
OPT = "Optimisation"
OUT = "Output"


_DEFAULTS = TrainConfig()


def _default_text(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _opt(*names: str, help: str, panel: str, **kw: object) -> typer.models.OptionInfo:
    """An option whose help shows its default, read from :class:`TrainConfig` (never restated by hand), the way
    every other command shows defaults (``[default: 64]``).

    Options default to None ("not given") so presets and ``--config`` can fill them; the default shown is the
    one a run gets when neither does.
    """
    field = names[0].split("/")[0].lstrip("-").replace("-", "_")
    value = getattr(_DEFAULTS, field, None)
    if value is not None and field != "quiet":
        help = f"{help} [default: {_default_text(value)}]"  # as Typer writes every other default (help is not markup)
    return typer.Option(*names, help=help, rich_help_panel=panel, show_default=False, **kw)


def train_command(
    data: Annotated[Path | None, _opt("--data", help="Folder with one sub-folder per class.", panel=DATA)] = None,
    test_data: Annotated[
        Path | None, _opt("--test-data", help="Separate test folder (same classes); else a held-out split.", panel=DATA)
    ] = None,
    dataset: Annotated[
        str | None, _opt("--dataset", help=f"Built-in dataset instead of --data: {', '.join(BUILTIN_DATASETS)}.", panel=DATA)
    ] = None,
    preset: Annotated[
        str | None, _opt("--preset", help=f"Preset ({', '.join(preset_names())}); flags override it.", panel=DATA)
    ] = None,
    config: Annotated[
        Path | None, _opt("--config", help="TOML file with any of these options; flags override it.", panel=DATA)
    ] = None,
    img_size: Annotated[str | None, _opt("--img-size", help="Input size N or HxW.", panel=DATA)] = None,
    channels: Annotated[int | None, _opt("--channels", help="1 (grayscale) or 3 (RGB).", panel=DATA)] = None,
    interpolation: Annotated[
        Interp | None, _opt("--interpolation", help="Resize interpolation, shared with every runtime.", panel=DATA)
    ] = None,
    resize_augment: Annotated[
        bool | None, _opt("--resize-augment/--no-resize-augment", help="Train on a resize method drawn per image "
                          "and epoch (area, bilinear with and without antialias, nearest; default on) so any "
                          "consumer's resize gives the same answer.", panel=DATA)
    ] = None,
    val_split: Annotated[float | None, _opt("--val-split", help="Stratified validation fraction.", panel=DATA)] = None,
    test_split: Annotated[
        float | None, _opt("--test-split", help="Stratified test fraction without --test-data.", panel=DATA)
    ] = None,
    seed: Annotated[int | None, _opt("--seed", help="Seed of splits, shuffling and init.", panel=DATA)] = None,
    strict: Annotated[
        bool | None, _opt("--strict/--no-strict", help="Unreadable images are an error, not a warning.", panel=DATA)
    ] = None,
    workers: Annotated[int | None, _opt("--workers", help="Decoding threads (0 = auto); with --engine ray: Ray Train "
                                        "workers (default: one per node).", panel=DATA)] = None,
    arch: Annotated[
        str | None, _opt("--arch", help=f"Architecture: {', '.join(ARCHITECTURES)} (a wrong name gets the closest "
                         "suggested).", panel=MODEL, metavar=f"<{'|'.join(ARCHITECTURES)}>")
    ] = None,
    head: Annotated[
        Head | None, _opt("--head", help="auto: sigmoid for 2 classes, else softmax.", panel=MODEL)
    ] = None,
    weights: Annotated[
        str | None, _opt("--weights", help="Starting weights: imagenet (a pretrained --arch; read from Keras' cache, "
                         "never downloaded), a .h5/.weights.h5 file, a model.keras or an earlier run folder.",
                         panel=MODEL, metavar="imagenet|FILE|RUN")
    ] = None,
    finetune_epochs: Annotated[
        int | None, _opt("--finetune-epochs", help="Pretrained backbone: after --epochs with the backbone frozen, "
                         "this many epochs with its top --unfreeze-blocks blocks trainable.", panel=MODEL)
    ] = None,
    unfreeze_blocks: Annotated[
        int | None, _opt("--unfreeze-blocks", help="Backbone blocks (from the top) trained when fine-tuning.", panel=MODEL)
    ] = None,
    finetune_lr: Annotated[
        float | None, _opt("--finetune-lr", help="Learning rate of fine-tuning (default --lr / 10).", panel=MODEL)
    ] = None,
    filters: Annotated[int | None, _opt("--filters", help="Filters of the first conv layer.", panel=MODEL)] = None,
    kernel_size: Annotated[int | None, _opt("--kernel-size", help="Conv kernel size.", panel=MODEL)] = None,
    strides: Annotated[int | None, _opt("--strides", help="Stride of the first conv layer.", panel=MODEL)] = None,
    pool_size: Annotated[int | None, _opt("--pool-size", help="Max-pool size.", panel=MODEL)] = None,
    dropout: Annotated[float | None, _opt("--dropout", help="Dropout rate.", panel=MODEL)] = None,
    l2: Annotated[float | None, _opt("--l2", help="L2 weight decay of conv/dense kernels.", panel=MODEL)] = None,
    dense_units: Annotated[int | None, _opt("--dense-units", help="Dense layer width (0 = none).", panel=MODEL)] = None,
    depth: Annotated[int | None, _opt("--depth", help="Blocks of blocks/dsconv.", panel=MODEL)] = None,
    rotation: Annotated[float | None, _opt("--rotation", help="Max rotation, degrees.", panel=AUG)] = None,
    width_shift: Annotated[float | None, _opt("--width-shift", help="Max horizontal shift, fraction.", panel=AUG)] = None,
    height_shift: Annotated[float | None, _opt("--height-shift", help="Max vertical shift, fraction.", panel=AUG)] = None,
    shear: Annotated[float | None, _opt("--shear", help="Max shear, degrees.", panel=AUG)] = None,
    zoom: Annotated[float | None, _opt("--zoom", help="Zoom range: scale between 1-z and 1+z.", panel=AUG)] = None,
    hflip: Annotated[bool | None, _opt("--hflip/--no-hflip", help="Random horizontal flips.", panel=AUG)] = None,
    vflip: Annotated[bool | None, _opt("--vflip/--no-vflip", help="Random vertical flips.", panel=AUG)] = None,
    epochs: Annotated[int | None, _opt("--epochs", help="Maximum epochs.", panel=OPT)] = None,
    batch: Annotated[int | None, _opt("--batch", help="Batch size.", panel=OPT)] = None,
    lr: Annotated[float | None, _opt("--lr", help="Adam learning rate.", panel=OPT)] = None,
    lr_schedule: Annotated[Schedule | None, _opt("--lr-schedule", help="constant, step or cosine.", panel=OPT)] = None,
    lr_step: Annotated[int | None, _opt("--lr-step", help="Epochs between steps of the step schedule.", panel=OPT)] = None,
    lr_gamma: Annotated[float | None, _opt("--lr-gamma", help="Factor of each step.", panel=OPT)] = None,
    patience: Annotated[
        int | None, _opt("--patience", help="Early stopping on val loss (0 = off); best weights restored.", panel=OPT)
    ] = None,
    class_weights: Annotated[
        bool | None, _opt("--class-weights/--no-class-weights", help="Balanced class weights.", panel=OPT)
    ] = None,
    label_smoothing: Annotated[float | None, _opt("--label-smoothing", help="Label smoothing.", panel=OPT)] = None,
    top_k: Annotated[int | None, _opt("--top-k", help="k of the top-k accuracy metric.", panel=OPT)] = None,
    mixed_precision: Annotated[
        bool | None, _opt("--mixed-precision/--no-mixed-precision", help="float16 compute on GPU.", panel=OPT)
    ] = None,
    backend: Annotated[
        Backend | None,
        _opt("--backend", help="Keras backend that trains (default: $KERAS_BACKEND, else tensorflow); jax and torch "
             "need no TensorFlow.", panel=OPT),
    ] = None,
    devices: Annotated[
        str | None,
        _opt("--devices", help=f"Local devices, data-parallel: N or {ALL_DEVICES}. --batch is the global batch; "
             "the learning rate is not scaled.", panel=OPT),
    ] = None,
    project: Annotated[str | None, _opt("--project", help="Parent folder of runs.", panel=OUT)] = None,
    name: Annotated[str | None, _opt("--name", help="Run folder name (default: exp, exp2, ... the next free one).", panel=OUT)] = None,
    exist_ok: Annotated[bool | None, _opt("--exist-ok", help="Overwrite an existing run folder.", panel=OUT)] = None,
    resume: Annotated[
        bool | None, _opt("--resume", help="Continue the run --name (else the latest) from its last checkpoint.", panel=OUT)
    ] = None,
    from_run: Annotated[
        Path | None, _opt("--from", help="Fine-tune from this earlier run's weights (its architecture and input; its "
                          "classes must be in --data, new ones grow the head); the card names it as the parent.",
                          panel=OUT)
    ] = None,
    plots: Annotated[bool | None, _opt("--plots/--no-plots", help="Write PNG plots.", panel=OUT)] = None,
    engine: Annotated[EngineChoice, _opt("--engine", help="local: this machine; ray: data-parallel over Ray Train "
                                         "workers (JAX; the run folder must be on a shared filesystem).",
                                         panel=OUT)] = EngineChoice.local,
    address: Annotated[str | None, _opt("--address", help="--engine ray: HOST:PORT of a running Ray head (default: "
                                        "a local Ray for this command).", panel=OUT)] = None,
    quiet: Annotated[bool, _opt("--quiet", "-q", help="No progress display.", panel=OUT)] = False,
) -> None:
    """Train an image classifier on a folder of class sub-folders (or --dataset digits)."""
    overrides = {k: v for k, v in locals().items()
                 if k not in ("config", "preset", "engine", "address")}  # first: only the options
    from edgecnn.api import train
    from edgecnn.console import console
    from edgecnn.runs import next_commands_after_train

    overrides["quiet"] = quiet or None
    overrides["from_run"] = str(from_run) if from_run is not None else None
    from edgecnn.scale.cluster import check_address

    check_address(engine.value, address)
    if engine.value == "ray":
        from edgecnn.cli import verbose
        from edgecnn.scale.infer import ScaleOptions
        from edgecnn.scale.train import train_on_ray

        result = train_on_ray(ScaleOptions(address=address, workers=workers, verbose=verbose()), preset=preset,
                              config=config, **overrides)
    else:
        result = train(preset=preset, config=config, **overrides)
    acc = result.metrics.get("test_accuracy")
    split = "test"
    if acc is None:
        acc, split = result.metrics.get("val_accuracy"), "val"
    console.print(f"Run folder: {result.run_dir}")
    console.print(f"{split.capitalize()} accuracy: {acc:.4f}" if acc is not None else "No held-out accuracy.")
    console.print("Next:")
    for cmd in next_commands_after_train(result.run_dir):
        console.print(f"  {cmd}", markup=False)


def register(app: typer.Typer) -> None:
    from edgecnn.cli import EdgeCommand

    app.command("train", cls=EdgeCommand)(train_command)
