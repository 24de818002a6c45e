"""The TensorFlow side of edgecnn: datasets, augmentation, architectures, the trainer and its plots.

``from edgecnn.training import TrainConfig, build_config, train`` is light: TensorFlow is imported
when :func:`train` runs, not when this package is imported.
"""

from edgecnn.training.config import TrainConfig, build_config, load_preset, preset_names, validate
from edgecnn.training.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "build_config", "load_preset", "preset_names", "train", "validate"]
