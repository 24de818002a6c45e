"""Input conventions of a model made anywhere: layout, value range, mean/std, colour order, resize, labels.

edgecnn's own artifacts state every convention in their card. A model made elsewhere (PyTorch, Ultralytics,
a plain TFLite) states some of them in its file and leaves others unknown. This module holds:

* :class:`Conventions`: what the user states (``--layout``, ``--input-range``, ``--mean``, ``--std``,
  ``--color``, ``--resize``, ``--interpolation``, ``--labels``) and ``strict`` (refuse to assume);
* :data:`PRODUCERS`: the conventions of the producers that label their files (Ultralytics, torchvision);
* :func:`graph_layout`: the layout read from an input shape (a 1- or 3-channel axis at position 1 with spatial
  axes after it is channels-first);
* :func:`parse_range`, :func:`parse_floats`: the flag spellings.

Values are read in this order (:meth:`edgecnn.runtime.backends.base.Backend` resolves them): edgecnn's card,
TFLite standard metadata, ONNX ``metadata_props``, known producer conventions, the flags (which win), and what is
still unknown is *assumed* with one warning naming each assumption and the flag that sets it (``strict`` refuses).
Pure Python: no numpy at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError, ModelError

LAYOUTS = ("NHWC", "NCHW")
#: ``--input-range`` spellings → the float range the model's input takes.
RANGES: dict[str, tuple[float, float]] = {"0,255": (0.0, 255.0), "0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0)}
#: ``--resize`` values: stretch to the input size, or resize the shortest side and crop the centre.
RESIZE_MODES = ("stretch", "shortest-side+center-crop")
#: ``--interpolation`` values: the keys of :data:`edgecnn.imaging.INTERPOLATIONS` (spelled here so the CLI table
#: imports no numpy; a test checks they agree).
INTERPOLATION_NAMES = ("area", "bilinear", "nearest", "bicubic", "lanczos")
#: ``--color`` values (``grayscale`` follows from a 1-channel input).
COLOR_ORDERS = ("rgb", "bgr")

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

#: Where a value came from, as ``info`` prints it.
FROM_FILE = "from the file"
FROM_FLAG = "from the flags"
ASSUMED = "assumed"

#: The conventions of producers that label their files. Keys are card fields (see :data:`FIELDS`).
PRODUCERS: dict[str, dict[str, Any]] = {
    # Ultralytics classify: 0..1 input, no mean/std, RGB, shortest side resized then centre-cropped (classify_transforms)
    "ultralytics": {"range": [0.0, 1.0], "mean": [0.0], "std": [1.0], "color": "rgb",
                    "resize_mode": "shortest-side+center-crop", "interpolation": "bilinear"},
    # torchvision's ImageNet weights: 0..1 then ImageNet mean/std, RGB, resize + centre crop
    "torchvision": {"range": [0.0, 1.0], "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "color": "rgb",
                    "resize_mode": "shortest-side+center-crop", "interpolation": "bilinear"},
}

#: Every convention a model's input has: card field → (flag, value assumed when nothing states it).
FIELDS: dict[str, tuple[str, Any]] = {
    "layout": ("--layout", "NHWC"),
    "range": ("--input-range", [0.0, 255.0]),
    "mean": ("--mean", [0.0]),
    "std": ("--std", [1.0]),
    "color": ("--color", "rgb"),
    "resize_mode": ("--resize", "stretch"),
    "interpolation": ("--interpolation", "bilinear"),
    "labels": ("--labels", None),
    "activation": ("", None),
}


@dataclass
class Conventions:
    """What the user states about a model's input (None: not stated). Flags win over everything the file says.

    Attributes:
        layout: ``NHWC`` or ``NCHW``.
        input_range: The float range the model takes, e.g. ``(0, 1)`` (see :data:`RANGES`).
        mean: Per-channel mean subtracted after scaling to ``input_range`` (one value or one per channel).
        std: Per-channel std divided by after subtracting ``mean``.
        color: ``rgb`` or ``bgr`` channel order.
        resize: ``stretch`` or ``shortest-side+center-crop``.
        interpolation: A name of :data:`edgecnn.imaging.INTERPOLATIONS`.
        labels: A labels file (one per line) or the labels themselves.
        strict: Refuse to run a model whose conventions would have to be assumed.
    """

    layout: str | None = None
    input_range: tuple[float, float] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    color: str | None = None
    resize: str | None = None
    interpolation: str | None = None
    labels: str | os.PathLike[str] | list[str] | None = None
    strict: bool = False
    _checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.layout is not None:
            self.layout = str(self.layout).upper()
            if self.layout not in LAYOUTS:
                raise ConfigError(f"Expected --layout NHWC or NCHW; received {self.layout!r}.")
        if self.input_range is not None and not isinstance(self.input_range, tuple):
            self.input_range = parse_range(self.input_range)
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, parse_floats(value, f"--{name}"))
        if self.std is not None and any(v == 0 for v in self.std):
            raise ConfigError(f"Expected --std values other than 0; received {self.std}.")
        if self.color is not None and self.color not in COLOR_ORDERS:
            raise ConfigError(f"Expected --color {' or '.join(COLOR_ORDERS)}; received {self.color!r}.")
        if self.resize is not None and self.resize not in RESIZE_MODES:
            raise ConfigError(f"Expected --resize {' or '.join(RESIZE_MODES)}; received {self.resize!r}.")
        if self.interpolation is not None and self.interpolation not in INTERPOLATION_NAMES:
            raise ConfigError(f"Expected --interpolation in {INTERPOLATION_NAMES}; received {self.interpolation!r}.")

    @property
    def given(self) -> dict[str, Any]:
        """The stated values as card fields (``range``, ``mean``...), labels read from their file."""
        out: dict[str, Any] = {}
        if self.layout:
            out["layout"] = self.layout
        if self.input_range is not None:
            out["range"] = [float(v) for v in self.input_range]
        for name in ("mean", "std", "color", "interpolation"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.resize is not None:
            out["resize_mode"] = self.resize
        if self.labels is not None:
            out["labels"] = read_labels(self.labels)
        return out

    def any(self) -> bool:
        return bool(self.given) or self.strict

    @classmethod
    def from_options(cls, opts: Any) -> Conventions | None:
        """The conventions of an options object with the same attribute names (RunOptions, bench options)."""
        values = {f.name: getattr(opts, f.name, None) for f in fields(cls) if not f.name.startswith("_")}
        values["strict"] = bool(values.get("strict"))
        conv = cls(**values)
        return conv if conv.any() else None


def parse_range(value: Any) -> tuple[float, float]:
    """``"0,1"``, ``"-1,1"``, ``"0,255"`` or a pair of numbers → (low, high).

    Raises:
        ConfigError: anything else.
    """
    if isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = (float(v) for v in value)
    else:
        text = str(value).replace(" ", "").replace("..", ",")
        if text not in RANGES:
            raise ConfigError(f"Expected --input-range {' or '.join(RANGES)}; received {value!r}.")
        lo, hi = RANGES[text]
    if not lo < hi:
        raise ConfigError(f"Expected --input-range LOW,HIGH with LOW < HIGH; received {value!r}.")
    return lo, hi


def parse_floats(value: Any, flag: str) -> list[float]:
    """``"0.485,0.456,0.406"`` (or one number, or a list) → [floats] (one value or one per channel)."""
    try:
        items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
        out = [float(v) for v in items if str(v) != ""]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Expected {flag} as one number or one per channel, comma-separated (e.g. "
                          f"0.485,0.456,0.406); received {value!r}.") from exc
    if len(out) not in (1, 3):
        raise ConfigError(f"Expected {flag} as one number or 3 (one per channel); received {value!r}.")
    return out


def read_labels(value: str | os.PathLike[str] | list[str]) -> list[str]:
    """Labels from a list or a file of one label per line (``labels.txt``; JSON lists and dicts read too)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Expected --labels FILE with one label per line; cannot read {path}: {exc}.") from exc
    if text.lstrip()[:1] in "[{":
        import json

        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Expected --labels FILE as one label per line or a JSON list/object; {path} is not "
                              f"valid JSON ({exc}).") from exc
        found = labels_from_json(value)
        if found is not None:
            return found
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ConfigError(f"Expected --labels FILE with one label per line; {path} holds none.")
    return labels


def labels_from_json(value: Any) -> list[str] | None:
    """The class names a parsed JSON value holds: a list, in order, or an object index → name, ordered by index (in
    its own order when a key is not an integer); None for anything else. Read by ``--labels FILE`` and by
    :func:`edgecnn.modelcard` for labels in standard metadata."""
    if isinstance(value, dict):
        try:
            return [str(value[k]) for k in sorted(value, key=lambda k: int(k))]
        except (TypeError, ValueError):
            return [str(v) for v in value.values()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return None


def graph_layout(shape: tuple[Any, ...]) -> str | None:
    """``NCHW`` when axis 1 has 1 or 3 channels and the last axis does not (or is spatial), ``NHWC`` when the last
    axis has 1 or 3; None when the shape is not a 4-D image batch. Unknown dims are None or strings."""
    if len(shape) != 4:
        return None

    def known(d: Any) -> int | None:
        return int(d) if isinstance(d, int) and d > 0 else None

    c1, last = known(shape[1]), known(shape[3])
    first_is_channels = c1 in (1, 3)
    last_is_channels = last in (1, 3)
    if first_is_channels and not last_is_channels:
        return "NCHW"
    if last_is_channels and not first_is_channels:
        return "NHWC"
    if first_is_channels and last_is_channels:  # a 3×H×3 oddity: the spatial axes decide
        return "NCHW" if (known(shape[2]) or 0) > 3 else "NHWC"
    return None


def ultralytics_metadata(meta: dict[str, Any]) -> dict[str, Any] | None:
    """Card fields from Ultralytics metadata (ONNX ``metadata_props`` or a TFLite's packed ``metadata.json``):
    labels from ``names``, size from ``imgsz``, and Ultralytics' input conventions. None when not Ultralytics."""
    import ast
    import json

    author = str(meta.get("author", ""))
    if "ultralytics" not in author.lower() and not ("names" in meta and "imgsz" in meta):
        return None

    def value(key: str) -> Any:
        raw = meta.get(key)
        if isinstance(raw, str):
            for parse in (json.loads, ast.literal_eval):
                try:
                    return parse(raw)
                except (ValueError, SyntaxError):
                    continue
        return raw

    task = value("task")
    out: dict[str, Any] = {"producer": "ultralytics", **PRODUCERS["ultralytics"]}
    if task is not None and task != "classify":
        out["task"] = str(task)
    names = value("names")
    if isinstance(names, dict):
        try:
            out["labels"] = [str(names[k]) for k in sorted(names, key=lambda k: int(k))]
        except (TypeError, ValueError) as exc:
            raise ModelError(f"Ultralytics metadata 'names' is not an index → name mapping: {names!r}.") from exc
    elif isinstance(names, list):
        out["labels"] = [str(v) for v in names]
    size = value("imgsz")
    if isinstance(size, int):
        out["size"] = (size, size)
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        out["size"] = (int(size[0]), int(size[1]))
    return out


def labelled_files(folder: str | os.PathLike[str], card: Any) -> Any:
    """A class-folder dataset scored against a model's labels (:class:`edgecnn.imaging.LabelledFiles`).

    A model whose labels were assumed (numeric ``class_0``...: it carries none) gets the folder names mapped onto
    its class indices in sorted order, with a line that says so; otherwise every folder must be one of its labels.

    Raises:
        DataError: a folder that is not a label of the model, or more folders than the model has classes.
    """
    from edgecnn.errors import DataError
    from edgecnn.imaging import list_class_folders, scan_labelled_folder

    labels = list(card.labels)
    if (getattr(card, "origins", None) or {}).get("labels") == ASSUMED:
        names = [p.name for p in list_class_folders(folder)]
        if names and not set(names) <= set(labels):
            if len(names) > len(labels):
                raise DataError(f"Folder {folder} has {len(names)} classes but the model has {len(labels)} outputs.")
            from edgecnn.console import info

            mapping = ", ".join(f"{n}={i}" for i, n in enumerate(names))
            info(f"The model carries no labels: mapped the folder names onto its class indices in sorted order "
                 f"({mapping}); pass --labels FILE if that order is wrong.")
            files = scan_labelled_folder(folder, names + labels[len(names):])
            card.labels = files.labels
            card.origins["labels"] = "from the folder names"
            return files
    return scan_labelled_folder(folder, labels)


def describe_origins(origins: dict[str, str]) -> str:
    """``"layout, labels from the file; range assumed"`` for one line of ``info``."""
    groups: dict[str, list[str]] = {}
    for name, origin in origins.items():
        groups.setdefault(origin, []).append(name)
    return "; ".join(f"{', '.join(names)} {origin}" for origin, names in groups.items())


__all__ = ["ASSUMED", "COLOR_ORDERS", "Conventions", "FIELDS", "FROM_FILE", "FROM_FLAG", "IMAGENET_MEAN",
           "IMAGENET_STD", "INTERPOLATION_NAMES", "LAYOUTS", "labelled_files", "PRODUCERS", "RANGES", "RESIZE_MODES", "describe_origins", "graph_layout",
           "parse_floats", "parse_range", "read_labels", "ultralytics_metadata"]
