"""Where a model's starting weights come from: ``--weights imagenet | FILE | RUN``.

- ``imagenet``: the ImageNet weights of a Keras Applications backbone, read from Keras' own cache
  (``$KERAS_HOME/models/``, else ``~/.keras/models/``) when the file is there. Nothing is ever downloaded (edge and
  factory machines have no internet): a missing file is one line naming the file, where to place it and where Keras
  publishes it, or to pass ``--weights FILE``.
- ``FILE`` ending in ``.h5`` (Keras' legacy weights format, as the cache holds them) or ``.weights.h5``: loaded
  into the backbone of a backbone ``--arch``, else into the whole model.
- A run folder, a ``model.keras`` or an export folder's run: every layer whose name and weight shapes match is
  copied from that model (a new head for other labels is the usual difference); the count is reported.

Importing this module does not import Keras.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError, DataError, ModelError
from edgecnn.training.architectures import ARCHITECTURES, BACKBONE_LAYER

IMAGENET = "imagenet"


def keras_cache_dir() -> Path:
    """Keras' cache of downloaded files: ``$KERAS_HOME/models``, else ``~/.keras/models`` (Keras' own rule)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


@dataclass(frozen=True)
class WeightsPlan:
    """What :func:`resolve` decided: a file for the backbone, a model to copy layers from, and a description."""

    backbone_file: str | None = None
    whole_file: str | None = None
    copy_from: Path | None = None
    source: str = "random"
    pretrained: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.source, "pretrained": self.pretrained}


def resolve(arch: str, weights: str | None, size: int) -> WeightsPlan:
    """Check ``--weights`` for ``arch`` (before anything is trained) and say what will be loaded.

    Raises:
        ConfigError: ``imagenet`` for an architecture without ImageNet weights, or the file is not in the cache.
        DataError: a ``FILE`` that does not exist or is not a weights file, model or run folder.
    """
    if weights in (None, "", "none"):
        return WeightsPlan()
    spec = ARCHITECTURES[arch].backbone
    if weights == IMAGENET:
        if spec is None:
            backbones = [n for n, a in ARCHITECTURES.items() if a.backbone is not None]
            raise ConfigError(f"Expected a pretrained --arch for --weights imagenet ({', '.join(backbones)}); "
                              f"received --arch {arch}, which has no ImageNet weights.")
        name = spec.weights_file(size)
        path = keras_cache_dir() / name
        if not path.is_file():
            raise ConfigError(f"ImageNet weights for {arch} are not in Keras' cache: place {name} (from {spec.url}{name}) "
                              f"in {path.parent}/, or pass --weights FILE.")
        return WeightsPlan(backbone_file=str(path), source=f"imagenet ({path})", pretrained=True)
    path = Path(weights)
    if not path.exists():
        raise DataError(f"Expected --weights imagenet, a weights file (.h5, .weights.h5), a model.keras or an edgecnn "
                        f"run folder; {weights} does not exist.")
    if path.is_dir():
        model = path / "model.keras"
        if not model.is_file():
            raise DataError(f"Expected an edgecnn run folder with model.keras for --weights; {path} has none.")
        return WeightsPlan(copy_from=model, source=f"run {path}", pretrained=True)
    if path.suffix == ".keras":
        return WeightsPlan(copy_from=path, source=f"model {path}", pretrained=True)
    if path.name.endswith(".h5"):
        if spec is not None:
            return WeightsPlan(backbone_file=str(path), source=f"file {path}", pretrained=True)
        return WeightsPlan(whole_file=str(path), source=f"file {path}", pretrained=True)
    raise DataError(f"Expected --weights imagenet, a .h5/.weights.h5 weights file, a model.keras or a run folder; "
                    f"received {weights}.")


def load_backbone_file(build: Any, path: str, arch: str) -> Any:
    """Call ``build()`` (which builds the model with the backbone's weights file) with a one-line error."""
    try:
        return build()
    except (ValueError, OSError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} does not hold {arch} weights Keras can load into its backbone: {first[:300]}") from exc


def apply(model: Any, plan: WeightsPlan, arch: str) -> dict[str, Any]:
    """Load the plan's whole-model file or copy matching layers from its model; returns what was loaded."""
    if plan.whole_file:
        try:
            model.load_weights(plan.whole_file)
        except (ValueError, OSError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{plan.whole_file} does not fit --arch {arch}: {first[:300]}") from exc
        return {**plan.to_dict(), "layers_loaded": "all"}
    if plan.copy_from is not None:
        copied, total = copy_matching(model, plan.copy_from)
        if not copied:
            raise ModelError(f"No layer of {plan.copy_from} matches --arch {arch} by name and shape; train that "
                             "architecture, or start from --weights imagenet.")
        return {**plan.to_dict(), "layers_loaded": copied, "layers_with_weights": total}
    return plan.to_dict()


def copy_matching(model: Any, source: Path) -> tuple[int, int]:
    """Copy the weights of every layer of ``source`` (a ``.keras`` file) whose name and shapes match one of
    ``model``'s (the backbone's layers too). Returns (layers copied, layers of ``model`` with weights)."""
    import keras

    try:
        other = keras.saving.load_model(source, compile=False)
    except Exception as exc:  # noqa: BLE001  (any load failure is the user's file: one line)
        raise ModelError(f"Cannot load {source} to start from: {str(exc).splitlines()[0][:300]}") from exc
    theirs = {layer.name: layer for layer in _flat_layers(other)}
    copied = total = 0
    for layer in _flat_layers(model):
        if not layer.weights:
            continue
        total += 1
        src = theirs.get(layer.name)
        if src is None:
            continue
        values = src.get_weights()
        if [tuple(v.shape) for v in values] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(values)
            copied += 1
    return copied, total


def _flat_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        if layer.name == BACKBONE_LAYER and hasattr(layer, "layers"):
            out += list(layer.layers)
        else:
            out.append(layer)
    return out
