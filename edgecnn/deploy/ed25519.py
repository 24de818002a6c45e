"""Ed25519 signature verification (RFC 8032, section 5.1.7) in pure Python, standard library only.

The box side of a bundle (``install``) runs on a bare ``python3`` with no third-party package, so it cannot use
``cryptography``. This module is shipped inside every bundle next to the installer and verifies the signature of
``MANIFEST.json`` against a trusted public key. Signing happens on the build machine with ``cryptography``
(:mod:`edgecnn.deploy.keys`); ``tests/deploy`` checks this verifier against ``cryptography``'s signatures.

Verification is not secret-dependent, so a plain (not constant-time) implementation is acceptable here: it
handles only public data (key, message, signature). It follows RFC 8032: the point encoding is decoded and
checked (canonical y, x recoverable, sign bit), ``S < L`` is enforced (no malleable signatures), and the check is
the cofactorless ``[S]B == R + [k]A`` on decoded points. About 10 ms per verification in CPython.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["BadSignature", "verify", "public_key_from_pem", "public_key_to_pem"]

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
#: DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class BadSignature(ValueError):
    """The signature does not verify, or the key or signature is malformed."""


# Points in extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z.
def _add(p: tuple[int, int, int, int], q: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, p: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    q = (0, 1, 1, 0)  # the neutral element
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _equal(p: tuple[int, int, int, int], q: tuple[int, int, int, int]) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decode_point(data: bytes) -> tuple[int, int, int, int] | None:
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G = (_GX, _GY, 1, _GX * _GY % _P)


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify an Ed25519 ``signature`` of ``message`` by the 32-byte ``public_key``.

    Raises:
        BadSignature: it does not verify, or the key/signature is malformed.
    """
    if len(public_key) != 32:
        raise BadSignature(f"expected a 32-byte Ed25519 public key; received {len(public_key)} bytes")
    if len(signature) != 64:
        raise BadSignature(f"expected a 64-byte Ed25519 signature; received {len(signature)} bytes")
    a = _decode_point(public_key)
    if a is None:
        raise BadSignature("the public key is not a valid Ed25519 point")
    r = _decode_point(signature[:32])
    if r is None:
        raise BadSignature("the signature's R is not a valid Ed25519 point")
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        raise BadSignature("the signature's S is not reduced (S >= L)")
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    if not _equal(_mul(s, _G), _add(r, _mul(k, a))):
        raise BadSignature("the signature does not match the message and key")


def public_key_from_pem(text: str | bytes) -> bytes:
    """The raw 32-byte key of a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo, as ``cryptography`` and OpenSSL write).

    Raises:
        BadSignature: not a PEM Ed25519 public key.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        raise BadSignature("expected a PEM Ed25519 public key (-----BEGIN PUBLIC KEY-----)")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError as exc:
        raise BadSignature(f"the PEM public key is not valid base64 ({exc})") from None
    if len(der) != 44 or not der.startswith(_SPKI_PREFIX):
        raise BadSignature("the PEM public key is not an Ed25519 key (expected OID 1.3.101.112)")
    return der[len(_SPKI_PREFIX):]


def public_key_to_pem(raw: bytes) -> str:
    """PEM ``PUBLIC KEY`` text of a raw 32-byte Ed25519 key."""
    b64 = base64.b64encode(_SPKI_PREFIX + raw).decode("ascii")
    return "-----BEGIN PUBLIC KEY-----\n" + b64 + "\n-----END PUBLIC KEY-----\n"
