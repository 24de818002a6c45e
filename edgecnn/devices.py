"""Device profiles: one TOML file per board in ``devices/`` (rpi4, rpi5, jetson-orin-nano, coral-devboard, ...).

A profile says which backend, precision, threads, delegate/providers and camera settings suit a board,
and how to install edgecnn there. ``edgecnn run --device rpi4`` applies one (flags still override);
``edgecnn devices list|show|service`` reads them.

Profiles live at the top-level ``devices/`` folder of a checkout; ``edgecnn/profiles`` is a link to it
that setuptools ships as package data, so an installed wheel finds them too.
"""

from __future__ import annotations

import getpass
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.registry import FULL_PRECISION, PRECISIONS
from edgecnn.config import load_toml, suggest
from edgecnn.errors import ConfigError

#: Where profiles are looked up, first match wins: $EDGECNN_DEVICES_DIR, then the shipped profiles.
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
SERVICE_TEMPLATE = "edgecnn.service"
_KNOWN_KEYS = {"name", "description", "backend", "precision", "threads", "batch", "delegate", "delegate_options",
               "providers", "source", "camera", "install"}


@dataclass
class DeviceProfile:
    """Settings that suit one kind of board."""

    name: str
    description: str = ""
    backend: str = "auto"
    precision: str = FULL_PRECISION
    threads: int | None = None
    delegate: str | None = None
    delegate_options: dict[str, str] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    camera_width: int | None = None
    camera_height: int | None = None
    camera_fps: float | None = None
    batch: int = 1
    source: str | None = None
    install_extra: str | None = None
    install_notes: str = ""
    path: Path | None = None

    def run_options(self) -> dict[str, Any]:
        """The ``edgecnn run`` options this profile sets (None where it leaves the default)."""
        return {
            "backend": self.backend,
            "threads": self.threads,
            "delegate": self.delegate,
            "delegate_options": dict(self.delegate_options) or None,
            "providers": list(self.providers) or None,
            "width": self.camera_width,
            "height": self.camera_height,
            "fps": self.camera_fps,
            "batch": self.batch,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "backend": self.backend,
            "precision": self.precision, "threads": self.threads, "batch": self.batch, "delegate": self.delegate,
            "delegate_options": self.delegate_options, "providers": self.providers, "source": self.source,
            "camera": {"width": self.camera_width, "height": self.camera_height, "fps": self.camera_fps},
            "install": {"extra": self.install_extra, "notes": self.install_notes.strip()},
            "path": str(self.path) if self.path else None,
        }


def profile_dirs() -> list[Path]:
    """Folders searched for ``<name>.toml``, highest priority first."""
    dirs = []
    if os.environ.get("EDGECNN_DEVICES_DIR"):
        dirs.append(Path(os.environ["EDGECNN_DEVICES_DIR"]))
    dirs.append(PROFILES_DIR)
    return [d for d in dirs if d.is_dir()]


def list_profiles() -> list[str]:
    """Names of the available device profiles, sorted."""
    names = {p.stem for d in profile_dirs() for p in d.glob("*.toml")}
    return sorted(names)


def load_profile(name: str | os.PathLike[str]) -> DeviceProfile:
    """A profile by name (``rpi4``) or by path to a TOML file.

    Raises:
        ConfigError: unknown name (the closest is suggested), unknown key or bad value in the file.
    """
    text = str(name)
    path = Path(text)
    if not (text.endswith(".toml") and path.is_file()):
        path = next((d / f"{text}.toml" for d in profile_dirs() if (d / f"{text}.toml").is_file()), None)
        if path is None:
            names = list_profiles()
            raise ConfigError(f"Unknown device profile {text!r}; expected one of {names}.{suggest(text, names)}")
    return _parse(load_toml(path), path)


def _parse(data: dict[str, Any], path: Path) -> DeviceProfile:
    for key in data:
        if key not in _KNOWN_KEYS:
            raise ConfigError(f"Unknown key {key!r} in device profile {path}.{suggest(key, _KNOWN_KEYS)}")
    cam = data.get("camera") or {}
    inst = data.get("install") or {}
    precision = str(data.get("precision", FULL_PRECISION))
    if precision not in PRECISIONS:
        raise ConfigError(f"Device profile {path}: expected precision in {list(PRECISIONS)}; received {precision!r}.")
    backend = str(data.get("backend", "auto"))
    from edgecnn.runtime.backends import BACKENDS

    if backend != "auto" and backend not in BACKENDS:
        raise ConfigError(f"Device profile {path}: expected backend auto or one of {sorted(BACKENDS)}; "
                          f"received {backend!r}.")
    try:
        return DeviceProfile(
            name=str(data.get("name", path.stem)),
            description=str(data.get("description", "")),
            backend=backend,
            precision=precision,
            threads=int(data["threads"]) if data.get("threads") is not None else None,
            delegate=data.get("delegate"),
            delegate_options={str(k): str(v) for k, v in (data.get("delegate_options") or {}).items()},
            providers=[str(p) for p in data.get("providers") or []],
            camera_width=int(cam["width"]) if cam.get("width") else None,
            camera_height=int(cam["height"]) if cam.get("height") else None,
            camera_fps=float(cam["fps"]) if cam.get("fps") else None,
            batch=int(data.get("batch", 1)),
            source=data.get("source"),
            install_extra=inst.get("extra"),
            install_notes=str(inst.get("notes", "")),
            path=path,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Device profile {path} has a bad value: {exc}") from exc


def service_template() -> str:
    """The systemd unit template text (``devices/edgecnn.service``)."""
    for d in profile_dirs():
        if (d / SERVICE_TEMPLATE).is_file():
            return (d / SERVICE_TEMPLATE).read_text(encoding="utf-8")
    raise ConfigError(f"The service template {SERVICE_TEMPLATE} is missing from {PROFILES_DIR}.")


def render_service(
    model: str | os.PathLike[str],
    device: str | None = None,
    source: str | None = None,
    camera: int | None = None,
    extra_args: list[str] | str | None = None,
    user: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    executable: str | None = None,
) -> str:
    """Fill the systemd unit template for running ``model`` on a camera at boot, restarting on failure.

    Args:
        model: Model file; made absolute (systemd has no working directory of yours).
        device: Device profile name applied with ``--device``.
        source: ``--source`` (stream URL, pipeline...); default: the profile's source, else ``--camera``.
        camera: Camera index (default 0 when no source).
        extra_args: More ``edgecnn run`` arguments, a list or one shell-quoted string
            (e.g. ``"--save-jsonl /var/log/edgecnn.jsonl"``).
        user: Account that runs the service (default: the current user).
        workdir: Working directory (default: the model's folder).
        executable: The ``edgecnn`` launcher (default: beside this Python interpreter).
    """
    model_path = Path(model).expanduser().resolve()
    if not model_path.exists():
        raise ConfigError(f"Model not found: {model_path}; the service needs an existing model file.")
    profile = load_profile(device) if device else None
    exe = executable or str(Path(sys.executable).with_name("edgecnn"))
    args = [exe, "run", str(model_path)]
    if profile:
        args += ["--device", profile.name]
    src = source or (profile.source if profile else None)
    if src:
        args += ["--source", src]
    else:
        args += ["--camera", str(0 if camera is None else camera)]
    if isinstance(extra_args, str):
        try:
            extra_args = shlex.split(extra_args)
        except ValueError as exc:
            raise ConfigError(f"Expected --args as shell-quoted edgecnn run arguments; received {extra_args!r} "
                              f"({exc}).") from exc
    args += list(extra_args or [])
    return service_template().format(
        name=model_path.stem,
        device=profile.name if profile else "this machine",
        user=user or getpass.getuser(),
        workdir=str(Path(workdir).resolve() if workdir else model_path.parent),
        exec_start=systemd_command_line(args),
    )


_SYSTEMD_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@+=:,./_-")


def systemd_command_line(args: list[str]) -> str:
    """An ``ExecStart=`` value that systemd splits back into exactly ``args``.

    systemd is not a shell: it expands ``%`` specifiers and ``$VAR`` in the line and unescapes C escapes
    inside double quotes, so ``%`` → ``%%``, ``$`` → ``$$``, and arguments with anything but safe characters
    are double-quoted with ``\\`` and ``\"`` escaped (``shlex.join``'s ``'"'"'`` is not understood).
    """
    out = []
    for arg in args:
        text = arg.replace("%", "%%").replace("$", "$$")
        if not arg or any(c not in _SYSTEMD_SAFE for c in arg):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(text)
    return " ".join(out)
