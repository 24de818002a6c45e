"""Python versions that are true: what pyproject declares, what the device notes recommend, what 3.10 needs.

The installs themselves are proven by tests/edge_install_check.py (fresh 3.10, 3.11 and 3.12 venvs).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EDGE_PYTHONS = ("3.10", "3.11", "3.12")


def _minimum() -> tuple[int, int]:
    spec = PYPROJECT["project"]["requires-python"]
    m = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec.strip())
    assert m, f"requires-python should be a plain lower bound; found {spec!r}"
    return int(m.group(1)), int(m.group(2))


def test_requires_python_and_classifiers_name_the_edge_pythons():
    assert _minimum() == (3, 10)
    classifiers = PYPROJECT["project"]["classifiers"]
    for v in EDGE_PYTHONS:
        assert f"Programming Language :: Python :: {v}" in classifiers
    assert "tomli>=1.1; python_version < '3.11'" in PYPROJECT["project"]["dependencies"]


def test_edge_extras_are_ranges_that_cover_every_edge_python():
    extras = PYPROJECT["project"]["optional-dependencies"]
    tflite = extras["tflite"]
    assert any("ai-edge-litert>=2.3,<3" in r and "python_version >= '3.11'" in r for r in tflite)
    assert any("ai-edge-litert>=1.4,<2" in r and "python_version < '3.11'" in r for r in tflite)  # last 3.10 wheels
    assert not any("==" in r for r in tflite + extras["onnx"]), "edge extras are ranges; constraints.txt pins"
    assert extras["onnx"] == ["onnxruntime>=1.23.2,<2"]  # 1.23.2: the last release with 3.10 wheels


def test_constraints_pin_versions_the_extras_accept():
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    from packaging.specifiers import SpecifierSet

    assert pins["ai-edge-litert"] in SpecifierSet(">=2.3,<3") and pins["onnxruntime"] in SpecifierSet(">=1.23.2,<2")


def _mentions(text: str) -> list[tuple[tuple[int, int], str]]:
    """(version, its line) for every 'Python 3.N' or 'Python 3.N-3.M' a text mentions (every end of a range)."""
    out = []
    for line in text.splitlines():
        for m in re.finditer(r"Python\s+(\d)\.(\d+)(?:\s*[-–]\s*(\d)\.(\d+))?", line):
            out.append(((int(m.group(1)), int(m.group(2))), line))
            if m.group(3):
                out.append(((int(m.group(3)), int(m.group(4))), line))
    return out


@pytest.mark.parametrize("profile", sorted((ROOT / "devices").glob("*.toml")), ids=lambda p: p.stem)
def test_device_notes_never_recommend_a_python_edgecnn_cannot_run_on(profile):
    text = profile.read_text(encoding="utf-8")
    low = _minimum()
    for version, line in _mentions(text):
        if version < low:  # allowed only where the note says it cannot be used
            assert "cannot" in line or "too old" in line, f"{profile.name} recommends Python {version}: {line.strip()}"


def test_training_on_python_310_is_refused_with_one_line(monkeypatch):
    from edgecnn.errors import MissingDependencyError, require

    monkeypatch.setattr("sys.version_info", (3, 10, 13, "final", 0))
    with pytest.raises(MissingDependencyError, match=r"needs Python 3\.11 or newer and this is 3\.10") as info:
        require("edgecnn_no_such_module", "train", "to train")
    assert "\n" not in str(info.value)
    with pytest.raises(MissingDependencyError, match=r"pip install 'edgecnn\[onnx\]'"):
        require("edgecnn_no_such_module", "onnx")
