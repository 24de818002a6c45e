"""What a ``POST /predict`` request may carry, turned into RGB images, and everything it may not.

- ``Content-Type: image/*`` or ``application/octet-stream``: the body is one encoded image.
- ``multipart/form-data``: every file part is an image (other fields are ignored).
- ``application/json``: a list of paths or ``file://`` URLs (or ``{"paths": [...]}``) of files inside an
  allow-listed folder (``--allow-dir``). A path is resolved with every symlink followed and must land inside an
  allowed folder; it must be a regular file (no FIFO, device or folder) no larger than the body limit; it is opened
  without following a symlink again. Nothing else on the disk is ever read.

Images decode with :func:`edgecnn.imaging.decode_image`, the one decoder training and ``edgecnn run`` use (with its
pixel limit). Every refusal is an :class:`~edgecnn.serve.http.HTTPError` with one line.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from edgecnn.errors import DataError
from edgecnn.fileio import read_known_size
from edgecnn.serve.http import HTTPError

RAW_TYPES = ("application/octet-stream",)
ACCEPTED = "image/* or application/octet-stream (one image), multipart/form-data (files), application/json (paths)"


@dataclass
class Payload:
    """The encoded images of one request: (bytes, name) pairs, and whether it asked for a list answer."""

    images: list[tuple[bytes, str]]
    many: bool


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def decode(data: bytes, name: str) -> np.ndarray:
    """RGB uint8 HxWx3 of an encoded image, or 422 naming it."""
    from edgecnn.imaging import decode_image

    if not data:
        raise HTTPError(422, "not_an_image", f"Expected an encoded image (PNG, JPEG, BMP, GIF, WebP, TIFF) in {name}; "
                                             "received an empty body.")
    try:
        return decode_image(data)
    except DataError as exc:
        msg = str(exc).replace("<bytes>", name)
        raise HTTPError(422, "not_an_image", f"Expected an encoded image in {name}; received data that does not "
                                             f"decode: {msg}") from None


def _allowed_roots(allow_dirs: tuple[Path, ...]) -> list[Path]:
    return [Path(os.path.realpath(d)) for d in allow_dirs]


def resolve_path(item: Any, allow_dirs: tuple[Path, ...]) -> tuple[Path, str]:
    """The real path of a listed file inside an allowed folder, and the name to report; or 400/403/404.

    Relative paths are taken relative to each allowed folder in turn.
    """
    if not allow_dirs:
        raise HTTPError(403, "forbidden", "Expected images in the body; received a list of paths, but this server "
                                          "reads no files (start it with --allow-dir FOLDER to allow a folder).")
    if not isinstance(item, str) or not item.strip() or "\0" in item:
        raise HTTPError(400, "bad_request", f"Expected a path or file:// URL (a non-empty string); received "
                                            f"{json.dumps(item)[:80]}.")
    text = item
    if "://" in text:
        url = urlparse(text)
        if url.scheme != "file" or url.netloc not in ("", "localhost"):
            raise HTTPError(400, "bad_request", f"Expected a path or a file:// URL of this machine; received a "
                                                f"{url.scheme}:// URL. The server reads only its allowed folders.")
        text = unquote(url.path)
    roots = _allowed_roots(allow_dirs)
    candidates = [Path(text)] if os.path.isabs(text) else [r / text for r in roots]
    for cand in candidates:
        real = Path(os.path.realpath(cand))
        root = next((r for r in roots if real == r or r in real.parents), None)
        if root is None:
            continue
        if not real.exists():
            raise HTTPError(404, "not_found", f"Expected an existing image file; {item!r} does not exist in the "
                                              "allowed folders.")
        return real, item
    raise HTTPError(403, "forbidden", f"Expected a file inside the allowed folder(s); {item!r} resolves outside them "
                                      "(path traversal and symlinks out are refused).")


def read_allowed(path: Path, name: str, limit: int) -> bytes:
    """The bytes of a resolved path: a regular file of at most ``limit`` bytes, opened without following links."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        st = os.stat(path, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise HTTPError(403, "forbidden", f"Expected a regular image file; {name!r} is not one (a folder, FIFO, "
                                              "device or socket is never read).")
        fd = os.open(path, flags)
    except HTTPError:
        raise
    except OSError as exc:
        raise HTTPError(403, "forbidden", f"Expected a readable image file; {name!r} cannot be opened "
                                          f"({exc.strerror}).") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HTTPError(403, "forbidden", f"Expected a regular image file; {name!r} is not one.")
        if st.st_size > limit:
            raise HTTPError(413, "too_large", f"Expected a file of at most {limit} bytes; {name!r} has "
                                              f"{st.st_size}. Raise --max-body-mb to read it.")
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = read_known_size(f, st.st_size, limit)
        if data is None:
            raise HTTPError(413, "too_large", f"Expected a file of at most {limit} bytes; {name!r} grew past it "
                                              f"while read.")
        return data
    finally:
        if fd >= 0:
            os.close(fd)


def json_paths(body: bytes, allow_dirs: tuple[Path, ...], limit: int, max_images: int) -> Payload:
    """A JSON body (a list of paths, or ``{"paths": [...]}``) → the files' bytes."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, "bad_request", f"Expected a JSON list of paths; received invalid JSON ({exc}).") from None
    many = True
    if isinstance(doc, dict):
        keys = set(doc) - {"paths", "urls"}
        if keys or not doc:
            raise HTTPError(400, "bad_request", f"Expected a JSON list of paths or {{\"paths\": [...]}}; received an "
                                                f"object with keys {sorted(doc)}.")
        doc = doc.get("paths", doc.get("urls"))
    elif isinstance(doc, str):
        doc, many = [doc], False
    if not isinstance(doc, list) or not doc:
        raise HTTPError(400, "bad_request", "Expected a non-empty JSON list of paths; received "
                                            f"{type(doc).__name__ if not isinstance(doc, list) else 'an empty list'}.")
    if len(doc) > max_images:
        raise HTTPError(413, "too_large", f"Expected at most {max_images} paths per request (--max-images); received "
                                          f"{len(doc)}.")
    images = []
    for item in doc:
        path, name = resolve_path(item, allow_dirs)
        images.append((read_allowed(path, name, limit), name))
    return Payload(images, many)


def multipart_files(form: Any, max_images: int) -> Payload:
    """The file parts of a parsed multipart form."""
    files = [(k, v) for k, v in form.multi_items() if hasattr(v, "filename") and hasattr(v, "file")]
    if not files:
        raise HTTPError(422, "no_image", "Expected at least one file part in the multipart form; received none "
                                         "(send e.g. curl -F image=@photo.jpg).")
    if len(files) > max_images:
        raise HTTPError(413, "too_large", f"Expected at most {max_images} files per request (--max-images); "
                                          f"received {len(files)}.")
    images = []
    for field_name, upload in files:
        upload.file.seek(0)
        name = os.path.basename(upload.filename or field_name)[:200] or field_name
        images.append((upload.file.read(), name))
    return Payload(images, True)


__all__ = ["ACCEPTED", "Payload", "RAW_TYPES", "decode", "json_paths", "media_type", "multipart_files",
           "read_allowed", "resolve_path"]
