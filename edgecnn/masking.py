"""Secrets never shown: credentials in URLs, pipelines and messages are masked by parsing, not by a pattern.

:func:`mask_secrets` is the one masking function. Everything that can show or store a user-given string through it:
the console (every message line), error lines, result rows, the model card, systemd units and station files.

What is masked:

* the userinfo of every ``scheme://user:password@host`` URL, whatever characters the password holds (``@``, ``/``,
  ``:``, ``%``...). The authority ends at the **last** ``@`` followed by a host name (``[v6]``, a name or an address,
  an optional ``:port``) and the end, ``/``, ``?``, ``#`` or a space: ``rtsp://admin:S3c@cret@cam/x`` is
  ``rtsp://***:***@cam/x``. In a value that is one URL (a ``--source``) the password may even hold spaces; in free
  text (a log line) a space ends it, so the rest of the line is never swallowed;
* the value of every well-known secret parameter, in a URL query (``?token=...&sig=...``), a fragment, or a
  ``key=value`` property of a GStreamer pipeline (``user-pw=...``): :data:`SECRET_KEYS` (compared case-insensitively,
  ``-``/``_`` ignored) and any key ending in one of :data:`SECRET_SUFFIXES` (the short ones, ``key``, ``pw``,
  ``sig``, ``auth``..., only after ``?``/``&``/``;``/``#``: in prose ``KEY=VALUE`` is a placeholder);
* anything named with ``--secret-param NAME`` (:func:`add_secret_params`; also read from ``EDGECNN_SECRET_PARAMS``,
  comma-separated, so a service's child process masks the same names).

Masked values read ``***``; the user name goes too (``***:***@``), since it is half of a credential.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

#: Parameter names whose values are secrets (normalised: lower case, without ``-`` and ``_``).
SECRET_KEYS = frozenset({
    "password", "passwd", "pass", "pw", "pwd", "passphrase", "token", "key", "sig", "signature", "secret", "auth",
    "authorization", "accesstoken", "apikey", "clientsecret", "refreshtoken", "idtoken", "sessiontoken",
    "sessionid", "session", "sid", "jwt", "bearer", "credential", "credentials", "privatekey", "userpw", "xapikey",
    "xamzsignature", "xamzcredential", "xamzsecuritytoken", "xgoogsignature", "xgoogcredential", "otp",
})
#: Keys ending in one of these (normalised) are secrets too (``mqtt_password``, ``X-Api-Key``, ``access_token``).
SECRET_SUFFIXES = ("password", "passwd", "pwd", "token", "secret", "apikey", "signature", "credential", "privatekey")
#: Short names masked only as URL query or fragment parameters (after ``?``, ``&``, ``;`` or ``#``): in prose,
#: ``KEY=VALUE`` is a placeholder, not a secret.
_SHORT_KEYS = frozenset({"key", "pw", "sig", "auth", "pass", "sid", "otp", "session", "code"})
MASK = "***"
ENV_SECRET_PARAMS = "EDGECNN_SECRET_PARAMS"

_extra: set[str] = set()
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=")
_AUTHORITY_END = "/?#"
_VALUE_END = "&; \t\r\n\"'<>#,)"


def _norm(key: str) -> str:
    return "".join(c for c in key.lower() if c not in "-_. ")


def add_secret_params(names: Iterable[str]) -> None:
    """Mask the values of these parameter names too (``--secret-param``), for the rest of the process."""
    _extra.update(_norm(n) for n in names if n and n.strip())


def secret_params() -> set[str]:
    """The extra parameter names in force (``--secret-param`` and ``EDGECNN_SECRET_PARAMS``), normalised."""
    env = os.environ.get(ENV_SECRET_PARAMS, "")
    return _extra | {_norm(n) for n in env.split(",") if n.strip()}


def is_secret_key(key: str) -> bool:
    """Whether a parameter of this name holds a secret."""
    k = _norm(key)
    if not k:
        return False
    return k in SECRET_KEYS or k.endswith(SECRET_SUFFIXES) or k in secret_params()


def _host_end(text: str, start: int) -> int | None:
    """Where a ``host[:port]`` that starts at ``start`` ends (at the end, ``/?#`` or whitespace), or None."""
    i, n = start, len(text)
    if i < n and text[i] == "[":  # an IPv6 literal
        close = text.find("]", i)
        if close < 0:
            return None
        i = close + 1
    else:
        while i < n and text[i] in _HOST_CHARS and text[i] != "@":
            i += 1
        if i == start:
            return None
    if i < n and text[i] == ":":
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if i == n or text[i] in _AUTHORITY_END or text[i].isspace() or text[i] in "\"'<>":
        return i
    return None


def _mask_userinfo(text: str, whole: bool) -> str:
    out: list[str] = []
    pos = 0
    while True:
        at = text.find("://", pos)
        if at < 0:
            break
        s = at
        while s > pos and text[s - 1] in _SCHEME_CHARS:
            s -= 1
        if s == at or not text[s].isalpha():
            out.append(text[pos: at + 3])
            pos = at + 3
            continue
        start = at + 3
        # the authority may hold any character; it ends at the last '@' that a host name follows. In free text a
        # space (and the next URL) bounds the search, so a later e-mail address is never taken for a host.
        limit = len(text) if whole else next((i for i in range(start, len(text)) if text[i].isspace()), len(text))
        nxt = text.find("://", start)
        if nxt >= 0 and not whole:
            limit = min(limit, nxt)
        best = None
        i = text.find("@", start, limit)
        while i >= 0:
            if _host_end(text, i + 1) is not None:
                best = i
            i = text.find("@", i + 1, limit)
        if best is None:
            out.append(text[pos:start])
            pos = start
            continue
        userinfo = text[start:best]
        out.append(text[pos:start])
        out.append(f"{MASK}:{MASK}" if ":" in userinfo else MASK)
        pos = best
    out.append(text[pos:])
    return "".join(out)


def _mask_params(text: str) -> str:
    """``key=value`` pairs (query, fragment, pipeline properties) whose key is a secret: the value becomes ``***``."""
    out: list[str] = []
    pos = 0
    n = len(text)
    while True:
        eq = text.find("=", pos)
        if eq < 0:
            break
        k = eq
        while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "-_."):
            k -= 1
        key = text[k:eq]
        v = eq + 1
        in_query = k > 0 and text[k - 1] in "?&;#"
        if key and is_secret_key(key) and (in_query or _norm(key) not in _SHORT_KEYS):
            quote = text[v] if v < n and text[v] in "\"'" else ""
            if quote:
                end = text.find(quote, v + 1)
                end = n if end < 0 else end + 1
            else:
                end = v
                while end < n and text[end] not in _VALUE_END:
                    end += 1
            out.append(text[pos:v])
            out.append(f"{quote}{MASK}{quote}" if quote else MASK)
            pos = end
        else:
            out.append(text[pos:v])
            pos = v
    out.append(text[pos:])
    return "".join(out)


def mask_secrets(text: object, *, whole: bool = False) -> str:
    """``text`` with every credential masked (see the module docstring).

    Args:
        text: Anything; its ``str()`` is masked.
        whole: The text is one value (a ``--source`` URL): a password may then hold spaces.
    """
    s = str(text)
    if "=" not in s and "@" not in s:
        return s
    if "@" in s:
        s = _mask_userinfo(s, whole)
    if "=" in s:
        s = _mask_params(s)
    return s


def has_secret(text: object) -> bool:
    """Whether :func:`mask_secrets` would hide anything in this value."""
    return mask_secrets(text, whole=True) != str(text)


__all__ = ["MASK", "SECRET_KEYS", "add_secret_params", "has_secret", "is_secret_key", "mask_secrets",
           "secret_params"]
