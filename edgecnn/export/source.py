"""The model being exported: a run folder or ``.keras``/``.h5`` file → the loaded model and its card."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn import __version__
from edgecnn.console import warn
from edgecnn.errors import ModelError
from edgecnn.fileio import sha256_file
from edgecnn.modelcard import InputSpec, ModelCard, OutputSpec, Preprocessing, load_card
from edgecnn.runs import resolve_run
from edgecnn.runtime.keras_model import KERAS_SUFFIXES, load_keras


@dataclass
class Source:
    """The model being exported and where its data lives."""

    run_dir: Path
    model_path: Path
    model: Any
    card: ModelCard
    sha256: str
    card_synthesized: bool = False


def resolve_source(source: str | os.PathLike[str], unsafe: bool = False) -> Source:
    """Run folder or ``.keras``/``.h5`` file → loaded model + its card (labels ``class_N`` and a warning when absent)."""
    run_dir, model_path = resolve_run(source)
    if model_path.suffix.lower() not in KERAS_SUFFIXES:
        raise ModelError(f"Expected a run folder or a Keras model ({'/'.join(KERAS_SUFFIXES)}); received {model_path.name}.")
    card = load_card(model_path)
    synthesized = card is None
    model = load_keras(model_path, unsafe=unsafe, purpose="to export Keras models")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{model_path.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "edgecnn exports single-input, single-output image classifiers.")
    shape = tuple(model.inputs[0].shape)
    units = int(model.outputs[0].shape[-1])
    if len(shape) != 4 or shape[3] not in (1, 3) or not shape[1] or not shape[2]:
        raise ModelError(f"{model_path.name} takes input shape {shape}; expected (batch, height, width, 1|3).")
    if card is None:
        n = 2 if units == 1 else units
        from edgecnn.imaging import color_for_channels

        color = color_for_channels(int(shape[3]))
        warn(f"No modelcard.json beside {model_path.name}; using labels class_0..class_{n - 1} and "
             f"{'RGB' if color == 'rgb' else 'grayscale'}/area preprocessing.")

        card = ModelCard(
            labels=[f"class_{i}" for i in range(n)],
            input=InputSpec(height=int(shape[1]), width=int(shape[2]), channels=int(shape[3])),
            output=OutputSpec(activation="sigmoid" if units == 1 else "softmax", units=units),
            preprocessing=Preprocessing(color=color),
            name=model_path.stem,
        )
    expected_units = 1 if card.output.activation == "sigmoid" else card.num_classes
    if units != expected_units:
        raise ModelError(f"{model_path.name} outputs {units} units but its card lists {card.num_classes} labels.")
    if card.input_shape != tuple(int(v) for v in shape[1:]):
        raise ModelError(f"{model_path.name} takes {shape[1:]} but its card says {card.input_shape}.")
    return Source(run_dir=run_dir, model_path=model_path, model=model, card=card, sha256=sha256_file(model_path),
                  card_synthesized=synthesized)


#: Card fields that name folders on the training machine: an embedded card keeps only their last part.
_LOCAL_PATHS = (("dataset", "root"), ("dataset", "test_root"), ("config", "data"), ("config", "test_data"),
                ("config", "project"))


def portable_card(card: dict[str, Any], model_path: Path, sha256: str) -> dict[str, Any]:
    """The card an artifact embeds: no local paths, the source named by file name and full SHA-256.

    The training machine's platform is dropped (it is a fact of the training run, kept in its modelcard.json,
    not of the artifact, which runs anywhere its runtime does).
    """
    card = {k: (dict(v) if isinstance(v, dict) else v) for k, v in card.items()}
    for section, key in _LOCAL_PATHS:
        value = (card.get(section) or {}).get(key)
        if isinstance(value, str) and value:
            card[section][key] = Path(value).name
    provenance = {k: v for k, v in (card.get("provenance") or {}).items() if k != "platform"}
    card["provenance"] = {
        **provenance,
        "source": model_path.name,
        "source_sha256": sha256,
        "edgecnn_version": __version__,
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    card["artifact"] = {}
    return card
