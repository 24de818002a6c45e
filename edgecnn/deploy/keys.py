"""Ed25519 keys for signing bundles (build side, with ``cryptography``; the box verifies with :mod:`.ed25519`).

``edgecnn bundle --new-key KEY`` writes ``KEY`` (PKCS#8 PEM private key, mode 0600, never overwritten) and
``KEY.pub`` (PEM public key, the file a box's ``install --trust`` takes).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn.errors import ArtifactExistsError, ConfigError, require


def _crypto():
    require("cryptography", "sign", "signing bundles (Ed25519)")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return serialization, Ed25519PrivateKey


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (no window where a private key is world-readable)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never overwrite a key
    finally:
        tmp.unlink()


def new_key(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write a new private key at ``path`` (0600) and its public key at ``path.pub``.

    Raises:
        ArtifactExistsError: either file exists (a key is never overwritten).
    """
    serialization, Ed25519PrivateKey = _crypto()
    path = Path(path)
    pub = path.with_name(path.name + ".pub")
    for p in (path, pub):
        if p.exists():
            raise ArtifactExistsError(f"{p} exists; a key is never overwritten. Choose another path or remove it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    _write_new(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write_new(pub, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return path, pub


def sign(key_path: str | os.PathLike[str], data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``data`` with the private key at ``key_path``.

    Raises:
        ConfigError: missing or unreadable key, or not an unencrypted Ed25519 private key.
    """
    serialization, Ed25519PrivateKey = _crypto()
    key_path = Path(key_path)
    fix = "make one with: edgecnn bundle --new-key KEY"
    try:
        raw = key_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read the signing key --sign {key_path}: {exc.strerror or exc}; {fix}.") from None
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--sign {key_path} is not an unencrypted PEM private key ({exc}); {fix}.") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"--sign {key_path} is a {type(key).__name__}; expected an Ed25519 key; {fix}.")
    if key_path.stat().st_mode & 0o077:
        from edgecnn.console import warn

        warn(f"{key_path} is readable by others (mode {key_path.stat().st_mode & 0o777:o}); chmod 600 {key_path}.")
    return key.sign(data)
