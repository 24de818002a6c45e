"""edgecnn: train, export, verify and run small image-classification CNNs on edge devices."""

__version__ = "0.1.0"

from edgecnn.errors import EdgeCNNError  # noqa: E402

__all__ = ["EdgeCNNError", "__version__"]
