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
