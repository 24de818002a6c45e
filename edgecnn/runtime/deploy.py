"""Deploy profiles: the artifact, backend, threads and batch that ``edgecnn bench --pick`` measured fastest here.

A profile is a small JSON file (schema ``edgecnn.deploy/1``) written by :mod:`edgecnn.bench.pick`; this module
reads and checks it on the edge side (no TensorFlow, no bench code): ``edgecnn run --profile FILE`` and the
``devices service --profile`` unit use it. The artifact must be byte-identical to the one measured (SHA-256), and
a profile measured on another kind of device (fingerprint from :func:`edgecnn.sysinfo.device_fingerprint`) is
used with a warning, since its figures do not hold here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.console import warn
from edgecnn.errors import ConfigError, ModelError

DEPLOY_SCHEMA = "edgecnn.deploy/1"
_REQUIRED = ("artifact", "backend", "threads", "batch", "measured", "device")


@dataclass
class DeployProfile:
    """A checked deploy profile."""

    source: Path
    artifact: Path
    sha256: str
    backend: str
    threads: int | None
    batch: int
    measured: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    providers: list[str] | None = None
    delegate: str | None = None
    delegate_options: dict[str, str] | None = None


def load_deploy_profile(path: str | os.PathLike[str], check_device: bool = True) -> DeployProfile:
    """Read, validate and verify a deploy profile.

    Raises:
        ConfigError: missing file, not JSON, another schema, or a missing/ill-typed field.
        ModelError: the artifact it names is missing or was changed after it was measured.
    """
    from edgecnn.fileio import sha256_file

    source = Path(path)
    fix = "write one with: edgecnn bench MODELS --data DIR --pick FILE"
    if not source.is_file():
        raise ConfigError(f"Deploy profile not found: {source}; {fix}.")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{source} is not a deploy profile (not JSON: {exc}); {fix}.") from None
    if not isinstance(data, dict) or data.get("schema") != DEPLOY_SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{source} is not a deploy profile: expected schema {DEPLOY_SCHEMA!r}, received {got!r}; {fix}.")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"Deploy profile {source} lacks {', '.join(missing)}; {fix}.")
    art = data["artifact"]
    if not isinstance(art, dict) or not isinstance(art.get("sha256"), str) or not (art.get("path") or art.get("abs_path")):
        raise ConfigError(f"Deploy profile {source}: 'artifact' must hold path and sha256; received {art!r}; {fix}.")
    threads, batch = data["threads"], data["batch"]
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"Deploy profile {source}: threads must be null or an integer >= 1; received {threads!r}.")
    if not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"Deploy profile {source}: batch must be an integer >= 1; received {batch!r}.")
    if not isinstance(data["backend"], str) or not data["backend"]:
        raise ConfigError(f"Deploy profile {source}: backend must be a name; received {data['backend']!r}.")

    candidates = [Path(p) if Path(p).is_absolute() else source.parent / p
                  for p in (art.get("path"), art.get("abs_path")) if p]
    artifact = next((p for p in candidates if p.is_file()), None)
    if artifact is None:
        raise ModelError(f"The artifact of deploy profile {source} is missing (looked for "
                         f"{', '.join(str(p) for p in candidates)}); restore it or re-run bench --pick.")
    digest = sha256_file(artifact)
    if digest != art["sha256"]:
        raise ModelError(f"{artifact.name} changed after deploy profile {source.name} measured it (sha256 "
                         f"{digest[:12]}…, profile says {art['sha256'][:12]}…); re-run bench --pick on it.")
    device = data["device"] if isinstance(data["device"], dict) else {}
    if check_device:
        _check_device(source, device)
    return DeployProfile(source=source, artifact=artifact, sha256=digest, backend=data["backend"], threads=threads,
                         batch=batch, measured=data.get("measured") or {}, device=device,
                         providers=data.get("providers"), delegate=data.get("delegate"),
                         delegate_options=data.get("delegate_options"))


def _check_device(source: Path, device: dict[str, Any]) -> None:
    from edgecnn.sysinfo import device_fingerprint

    here = device_fingerprint()
    theirs = device.get("fingerprint") or {}
    if theirs.get("id") == here["id"]:
        return
    facts = theirs.get("facts") or {}
    diff = [k for k in here["facts"] if facts.get(k) != here["facts"][k]]
    detail = "; ".join(f"{k}: profile {facts.get(k)!r}, here {here['facts'][k]!r}" for k in diff[:3]) or "no facts recorded"
    warn(f"Deploy profile {source.name} was measured on another device or runtime ({detail}); its latency figures "
         "may not hold here: re-run bench --pick on this device.")


# ---------------------------------------------------------------------------------------------- a folder as MODEL
_MAX_PROFILE_BYTES = 1 << 20


def pick_order() -> list[tuple[str, str]]:
    """(format, precision) in the order ``run`` takes artifacts from a folder without a deploy profile, best first for
    a CPU box: full int8 (4-7x faster than float on LiteRT, about 2x on ONNX Runtime), then the smaller floats, then
    float32; within a precision, the formats in their registry's order (LiteRT first)."""
    from converters.registry import FORMATS, FULL_PRECISION, PRECISIONS

    calibrated = [p for p, spec in PRECISIONS.items() if spec.calibration]
    middle = [p for p, spec in PRECISIONS.items() if not spec.calibration and p != FULL_PRECISION]
    files = [f for f in FORMATS.values() if not f.directory]
    return [(f.name, p) for p in (*calibrated, *middle, FULL_PRECISION) for f in files if p in f.precisions]


def runtime_installed(fmt: str) -> bool:
    """Whether a runtime for the format ``fmt`` can be imported here (looked up, nothing is imported)."""
    from converters.registry import FORMATS
    from edgecnn.runtime.backends import backend_for

    try:
        return backend_for(f"model{FORMATS[fmt].suffix}").installed()
    except (KeyError, ModelError):
        return False


@dataclass(frozen=True)
class FolderPick:
    """What a run or export folder given as MODEL resolves to.

    Attributes:
        model: The artifact to run; the profile itself when ``profile`` is set (its artifact is checked when the
            profile is loaded).
        profile: A deploy profile found in the folder, else None.
        why: One line saying what was picked and why (printed by ``run``).
    """

    model: Path
    profile: Path | None
    why: str


def _profiles_in(folders: list[Path]) -> list[Path]:
    found = []
    for folder in folders:
        for p in sorted(folder.glob("*.json")):
            try:
                if not p.is_file() or p.is_symlink() or p.stat().st_size > _MAX_PROFILE_BYTES:
                    continue
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                continue
            if isinstance(data, dict) and data.get("schema") == DEPLOY_SCHEMA:
                found.append(p)
    return found


def pick_from_folder(folder: str | os.PathLike[str], prefer_keras: bool = False) -> FolderPick:
    """The model a run folder or an export folder stands for, as ``run`` (and ``edgecnn.load``) use it.

    In this order: a deploy profile (``bench --pick``) in the folder or its ``export/`` (the newest, when there
    are several); else the best artifact whose runtime is installed here (:func:`pick_order`); else the run's
    ``model.keras`` when Keras is installed. An edge install (no Keras) never picks ``model.keras``.
    ``prefer_keras`` (``edgecnn.load`` of a run folder on a training machine) takes ``model.keras`` first.

    Raises:
        ModelError: nothing in the folder that this install can run (the line says what to install or export).
    """
    from converters.registry import parse_artifact_name

    root = Path(folder)
    folders = [root, *([root / "export"] if (root / "export").is_dir() else [])]
    from edgecnn.runs import MODEL_FILENAME

    keras_file = root / MODEL_FILENAME
    from edgecnn.runtime.backends import KerasBackend

    keras_ok = keras_file.is_file() and KerasBackend.installed()
    if prefer_keras and keras_ok:
        return FolderPick(keras_file, None, f"Running {keras_file} (the run's Keras model).")
    profiles = _profiles_in(folders)
    if profiles:
        newest = max(profiles, key=lambda p: p.stat().st_mtime)
        more = f" (the newest of {len(profiles)})" if len(profiles) > 1 else ""
        return FolderPick(newest, newest, f"Using deploy profile {newest}{more} found in {root}.")
    artifacts: dict[tuple[str, str], Path] = {}
    for f in folders:
        for p in sorted(f.iterdir()):
            target = parse_artifact_name(p.name) if p.is_file() and not p.name.startswith(".") else None
            if target is not None:
                artifacts.setdefault(target, p)
    runnable = [(t, artifacts[t]) for t in pick_order() if t in artifacts and runtime_installed(t[0])]
    if runnable:
        (fmt, precision), path = runnable[0]
        others = f"; {len(runnable) - 1} other runnable artifact(s) there" if len(runnable) > 1 else ""
        return FolderPick(path, None, f"Picked {path} ({fmt} {precision}: the fastest kind this install runs; no "
                                      f"deploy profile in {root}{others}). Pass the file to choose another.")
    if keras_ok:
        return FolderPick(keras_file, None, f"Running {keras_file}: {root} has no exported artifact (export it for the "
                                            f"edge: edgecnn export {root}).")
    if artifacts:
        kinds = sorted({fmt for fmt, _ in artifacts})
        extra = " or ".join(f"pip install 'edgecnn[{k}]'" for k in kinds)
        raise ModelError(f"{root} holds {', '.join(p.name for p in artifacts.values())} but no runtime for them is "
                         f"installed here: {extra}.")
    if keras_file.is_file():
        raise ModelError(f"{root} holds only model.keras, and this is an edge install without Keras: export it first "
                         f"(edgecnn export {root}) and run an artifact from {root / 'export'}, or install "
                         "edgecnn[train].")
    raise ModelError(f"Expected a model file, a run folder or an export folder; {root} holds no model "
                     "(.tflite, .onnx, model.keras) nor a deploy profile.")
