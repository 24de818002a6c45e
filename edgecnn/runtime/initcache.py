"""Init that doesn't repeat: runtime artifacts built on a model's first start, reused on the next ones.

ONNX Runtime spends most of a session's creation optimizing the graph (for a QDQ int8 model, folding the
Q/DQ pairs into integer kernels). With ``SessionOptions.optimized_model_filepath`` it writes the optimized
graph out; a later start loads that file with optimizations off (ONNX Runtime's documented "offline mode").

A cache entry is trusted only when everything it depends on matches: the model file's SHA-256, the
runtime's version, the providers, the optimization level and this machine's CPU (optimized graphs may use
CPU-specific layouts). Entries are published atomically (temp file, then rename) and carry the SHA-256 of
their own bytes in a sidecar, checked before use: a stale, truncated or tampered entry is deleted and
rebuilt, never loaded.

Where: ``$EDGECNN_CACHE_DIR`` (default ``$XDG_CACHE_HOME/edgecnn`` or ``~/.cache/edgecnn``), under
``runtime/``. ``EDGECNN_INIT_CACHE=0`` turns the cache off (also ``load_backend(..., init_cache=False)``).
A cache that cannot be written (read-only home, full disk) is skipped with no error: it is an optimization.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgecnn.fileio import umask_mode

#: Environment variable that turns the init cache off ("0", "false", "no", "off").
CACHE_ENV = "EDGECNN_INIT_CACHE"
DIR_ENV = "EDGECNN_CACHE_DIR"


def cache_enabled() -> bool:
    return os.environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_root() -> Path:
    """``$EDGECNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgecnn``, else ``~/.cache/edgecnn``."""
    env = os.environ.get(DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "edgecnn"


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def cpu_fingerprint() -> str:
    """Architecture and CPU feature flags: an optimized graph is only reused on the CPU it was made for."""
    flags = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    return hashlib.sha256(f"{platform.machine()}|{platform.system()}|{flags}".encode()).hexdigest()[:16]


class InitCache:
    """One cache entry: ``<kind>/<key><suffix>`` plus ``<key>.json`` (what it was built from, its own hash).

    Args:
        kind: Sub-folder, e.g. ``"ort"``.
        model: The model file the entry is derived from.
        parts: Everything else the entry depends on (runtime version, providers, options).
        suffix: File suffix of the entry.
    """

    def __init__(self, kind: str, model: str | os.PathLike[str], parts: dict[str, Any], suffix: str) -> None:
        self.model = Path(model)
        self.model_sha256 = file_sha256(self.model)
        self.parts = {**parts, "cpu": cpu_fingerprint(), "model_sha256": self.model_sha256}
        key = hashlib.sha256(json.dumps(self.parts, sort_keys=True).encode()).hexdigest()[:32]
        self.folder = cache_root() / "runtime" / kind
        self.path = self.folder / f"{key}{suffix}"
        self.meta = self.folder / f"{key}.json"
        self.suffix = suffix
        self.status = "off"  # "hit", "stored", "rebuilt" (a bad entry was replaced), "unwritable"

    def lookup(self) -> Path | None:
        """The entry's path when it exists and is intact, else None (a bad entry is deleted)."""
        if not self.path.exists() and not self.meta.exists():
            return None
        try:
            meta = json.loads(self.meta.read_text())
            if meta.get("parts") == self.parts and meta.get("sha256") == file_sha256(self.path):
                return self.path
        except (OSError, ValueError, AttributeError):
            pass
        self.discard()
        return None

    def discard(self) -> None:
        """Delete the entry (a corrupt or unusable file); the next start rebuilds it."""
        self.status = "rebuilt"
        for p in (self.meta, self.path):
            with contextlib.suppress(OSError):
                p.unlink()

    def staging_path(self) -> Path | None:
        """A temp file for the runtime to write the entry into (None if the cache folder is not writable)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".staging.", suffix=self.suffix, dir=self.folder)
            os.fchmod(fd, umask_mode())  # mkstemp makes 0600; the entry is published as it is
            os.close(fd)
            return Path(tmp)
        except OSError:
            self.status = "unwritable"
            return None

    def commit(self, staged: Path) -> None:
        """Publish a staged entry: rename it into place, then write the sidecar that makes it trusted."""
        try:
            if not staged.exists() or staged.stat().st_size == 0:
                raise OSError("the runtime wrote nothing")
            digest = file_sha256(staged)
            os.replace(staged, self.path)
            fd, tmp = tempfile.mkstemp(prefix=".staging.", suffix=".json", dir=self.folder)
            os.fchmod(fd, umask_mode())
            with os.fdopen(fd, "w") as fh:
                json.dump({"parts": self.parts, "sha256": digest, "source": str(self.model.resolve())}, fh)
            os.replace(tmp, self.meta)
            if self.status != "rebuilt":
                self.status = "stored"
        except OSError:
            self.status = "unwritable"
            with contextlib.suppress(OSError):
                staged.unlink()


__all__ = ["CACHE_ENV", "DIR_ENV", "InitCache", "cache_enabled", "cache_root", "cpu_fingerprint", "file_sha256"]
