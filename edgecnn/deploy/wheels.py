"""The wheels of a bundle: edgecnn built as a wheel, and its runtime extra's dependencies for the target's platform.

``pip download --only-binary=:all: --platform TAG... --python-version X.Y --implementation cp`` from the package
registry the build machine's pip is configured with, or ``--no-index --find-links WHEELHOUSE`` with no network.
Versions come from ``constraints.txt`` where the target has wheels of them; a pin the target has no wheel for is
dropped (the extra's range in ``pyproject.toml`` then decides) and recorded as unpinned in the manifest. A package
with no wheel at all for the target is one line naming it, the platform and what to do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from edgecnn.errors import ConfigError, EdgeCNNError

_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)")
_CONFLICT = "ResolutionImpossible"


class WheelError(EdgeCNNError):
    """A wheel the target needs cannot be found (not on the registry or in --wheelhouse for that platform)."""


def expand_platforms(tags: list[str]) -> list[str]:
    """A board's newest ``manylinux_2_N_ARCH`` tag and every older one it accepts (down to 2_17 and manylinux2014),
    as pip on the board accepts them; other tags are kept as given."""
    out: list[str] = []
    for tag in tags:
        m = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", tag)
        if not m:
            out.append(tag)
            continue
        newest, arch = int(m.group(1)), m.group(2)
        out += [f"manylinux_2_{n}_{arch}" for n in range(newest, 16, -1)]
        if newest >= 17:
            out.append(f"manylinux2014_{arch}")
    return list(dict.fromkeys(out))


def machine_of(tags: list[str]) -> str:
    """``aarch64``/``x86_64``/``armv7l`` from platform tags."""
    for tag in tags:
        for arch in ("aarch64", "x86_64", "armv7l"):
            if tag.endswith(arch):
                return arch
    raise ConfigError(f"Expected platform tags ending in an architecture (aarch64, x86_64, armv7l); received {tags}.")


def project_root() -> Path | None:
    """The source checkout edgecnn runs from (it has pyproject.toml), or None for an installed wheel."""
    import edgecnn

    root = Path(edgecnn.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def build_edgecnn_wheel(dest: Path, wheelhouse: Path | None = None) -> Path:
    """edgecnn's own wheel: built from the checkout (reproducibly), else taken from ``wheelhouse``.

    Raises:
        WheelError: no checkout and no edgecnn wheel in ``wheelhouse``.
    """
    from edgecnn import __version__

    root = project_root()
    if root is None:
        found = sorted((wheelhouse or Path("/nonexistent")).glob(f"edgecnn-{__version__}-*.whl"))
        if not found:
            raise WheelError(f"edgecnn {__version__} runs from an installed wheel, not a checkout: put "
                             f"edgecnn-{__version__}-py3-none-any.whl in --wheelhouse DIR, or run bundle from a checkout.")
        import shutil

        return Path(shutil.copy2(found[0], dest))
    import importlib.util

    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), str(root)]
    if importlib.util.find_spec("setuptools") and importlib.util.find_spec("wheel"):
        cmd.insert(-1, "--no-build-isolation")  # no network needed: this venv's setuptools builds it
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}  # the same source gives the same wheel bytes
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise WheelError(f"Building edgecnn's wheel failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
    return next(dest.glob(f"edgecnn-{__version__}-*.whl"))


def read_constraints(path: Path) -> dict[str, str]:
    """``constraints.txt`` → {normalized name: line}."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "==" in line:
            out[normalize(line.split("==")[0])] = line
    return out


def off_pin(folder: Path, pins: dict[str, str]) -> list[str]:
    """``name==version`` of each wheel in ``folder`` whose version differs from its pin."""
    out = []
    for whl in sorted(folder.glob("*.whl")):
        name, version = whl.name.split("-")[:2]
        pin = pins.get(normalize(name))
        if pin is not None and pin.split("==", 1)[1] != version:
            out.append(f"{normalize(name)}=={version} (pin {pin.split('==', 1)[1]})")
    return out


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def marker_environment(python: str, machine: str) -> dict[str, str]:
    """The target's PEP 508 marker environment (pip's ``--python-version`` does not change how markers evaluate)."""
    return {"python_version": python, "python_full_version": f"{python}.0", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "platform_machine": machine, "sys_platform": "linux",
            "platform_system": "Linux", "os_name": "posix", "implementation_version": f"{python}.0"}


def wheel_requirements(wheel: Path, env: dict[str, str], extras: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(normalized name, requirement without marker) of what ``wheel`` needs on the target, ``extras`` included."""
    import zipfile

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode("utf-8", "replace").splitlines()
    out = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is not None and not any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)):
            continue
        req.marker = None
        out.append((normalize(req.name), str(req)))
    return out


def download_target(edgecnn_wheel: Path, extra: str, dest: Path, platforms: list[str], python: str, machine: str,
                    constraints: Path | None = None, wheelhouse: Path | None = None) -> list[str]:
    """edgecnn's wheel and every wheel ``edgecnn[extra]`` needs on the target, into ``dest``.

    Markers are evaluated for the target (its Python and machine), not for this interpreter: the top-level
    requirements are passed to pip already evaluated, and any dependency a downloaded wheel needs on the target but
    pip skipped (its marker held here but not there) is fetched in further rounds.

    Returns:
        The wheels not at constraints.txt's pins (see :func:`download`).
    """
    import shutil

    env = marker_environment(python, machine)
    shutil.copy2(edgecnn_wheel, dest / edgecnn_wheel.name)
    reqs = [r for _, r in wheel_requirements(edgecnn_wheel, env, (extra,))]
    download(reqs, dest, platforms, python, constraints, wheelhouse)
    for _ in range(8):  # dependencies whose markers differ between here and the target
        have = {normalize(w.name.split("-")[0]) for w in dest.glob("*.whl")}
        missing = sorted({r for w in dest.glob("*.whl") for name, r in wheel_requirements(w, env) if name not in have})
        if not missing:
            break
        download(missing, dest, platforms, python, constraints, wheelhouse)
    return off_pin(dest, read_constraints(constraints) if constraints and constraints.is_file() else {})


def download(requirements: list[str], dest: Path, platforms: list[str], python: str,
             constraints: Path | None = None, wheelhouse: Path | None = None) -> list[str]:
    """Download every wheel ``requirements`` need for the target into ``dest`` (pip download, with pins dropped one
    by one where the target has no wheel at the pinned version).

    Returns:
        ``name==version`` of the downloaded wheels that are not at constraints.txt's pin (the target has no wheel of
        the pinned version, or the pins conflict with what the target needs: the extras' ranges decided).

    Raises:
        WheelError: a package has no wheel for the target at all.
    """
    pins = read_constraints(constraints) if constraints and constraints.is_file() else {}
    unpinned: list[str] = []
    where = f"in --wheelhouse {wheelhouse}" if wheelhouse else "on the package registry"
    platform_text = f"{platforms[0]} (and older tags), CPython {python}"
    for _ in range(len(pins) + 2):
        cfile = dest.parent / ".constraints.txt"
        cfile.write_text("\n".join(v for k, v in pins.items() if k not in unpinned) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(dest),
               "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "-c", str(cfile)]
        for tag in platforms:
            cmd += ["--platform", tag]
        if wheelhouse:
            cmd += ["--no-index", "--find-links", str(wheelhouse)]
        cmd += list(requirements)
        res = subprocess.run(cmd, capture_output=True, text=True)
        cfile.unlink()
        if res.returncode == 0:
            return off_pin(dest, pins)
        text = res.stderr + res.stdout
        m = _NO_MATCH.search(text)
        name = normalize(re.split(r"[<>=!~;\[ ]", m.group(1))[0]) if m else None
        if name and name in pins and name not in unpinned:
            unpinned.append(name)  # no wheel at the pinned version: let the extra's range choose
            continue
        if m is None and _CONFLICT in text and "*" not in unpinned:
            unpinned += [k for k in pins if k not in unpinned]  # the pins conflict with the target's needs
            unpinned.append("*")
            continue
        if name:
            raise WheelError(f"No wheel of {name} for {platform_text} {where}: put one built for that platform in "
                             f"--wheelhouse DIR (pip download {name} --only-binary=:all: --platform {platforms[0]} "
                             f"--python-version {python} -d DIR), or bundle for a --target/--python that has one.")
        last = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise WheelError(f"pip download for {platform_text} failed: {last[0].strip()[:300]}")
    raise WheelError(f"pip download for {platform_text} kept failing after dropping pins: {unpinned}")
