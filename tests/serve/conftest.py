"""Serve fixtures: a real ONNX colour classifier, an OpenCV-written video of coloured frames, and a real server
(uvicorn in a thread on a free loopback port) classifying that video for the live view."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'edgecnn[serve]'")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install 'edgecnn[onnx]'")
pytest.importorskip("onnx", reason="the onnx package writes the test model: pip install onnx")

sys.path.insert(0, str(Path(__file__).parent))

from onnxmodels import color_model, write_video  # noqa: E402


@pytest.fixture(scope="session")
def color_onnx(tmp_path_factory) -> Path:
    return color_model(tmp_path_factory.mktemp("serve-model") / "color.onnx")


@pytest.fixture(scope="session")
def colour_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("serve-video") / "colours.avi")


@pytest.fixture(scope="session")
def allowed_dir(tmp_path_factory) -> Path:
    from onnxmodels import COLOURS, solid_png

    root = tmp_path_factory.mktemp("allowed")
    for name, rgb in COLOURS.items():
        (root / f"{name}.png").write_bytes(solid_png(rgb))
    (root / "sub").mkdir()
    (root / "sub" / "blue.png").write_bytes(solid_png(COLOURS["blue"]))
    return root


@pytest.fixture(scope="module")
def live_server(color_onnx, colour_video, allowed_dir):
    """A server on a free port: /predict over the colour model, the video looped as its live source."""
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    config = ServeConfig(port=0, max_delay_ms=20, allow_dirs=(allowed_dir,), stream_fps=30)
    with open_server(color_onnx, config, source=str(colour_video), loop=True, max_fps=20) as served:
        yield served
