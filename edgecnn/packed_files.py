"""The files zipped after a model (a ``.tflite``'s associated files: labels, the card, a vocabulary), read within
bounds: members, bytes of one member once inflated, bytes of all of them (:func:`read_packed_files`).

MediaPipe Model Maker, tflite-support's MetadataPopulator and edgecnn all pack them this way. Stored and deflated
members are read with ``struct`` and ``zlib``; what this reader leaves (zip64, encryption, bzip2, LZMA) goes to
:mod:`zipfile`, streamed and bounded the same way. Used by :func:`edgecnn.standard_metadata.read_tflite`.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from edgecnn.errors import ModelError

_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory
_CDIR = struct.Struct("<4sHHHHHHIIIHHHHHII")  # central directory entry
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header


class _NeedsZipfile(Exception):
    """A zip this reader leaves to :mod:`zipfile` (zip64, several disks, encryption, other compression)."""


#: Bounds of the zip appended to a model (associated files: labels, the card, a vocabulary): members, bytes of one
#: member once inflated, and bytes of all of them. Both the sizes the zip declares and the bytes inflation actually
#: produces are checked; inflation is streamed and stops at the bound, whatever the compression.
MAX_PACKED_MEMBERS = 256
MAX_PACKED_MEMBER_BYTES = 16_000_000
MAX_PACKED_TOTAL_BYTES = 32_000_000


def _too_large(name: str, what: str) -> ModelError:
    return ModelError(f"{name} is refused: the files zipped after the model {what} (bounds: {MAX_PACKED_MEMBERS} "
                      f"files, {MAX_PACKED_MEMBER_BYTES // 1_000_000} MB each, {MAX_PACKED_TOTAL_BYTES // 1_000_000} MB "
                      "in all). Expected labels and a model card of a few KB; re-export the model.")


def read_packed_files(data: bytes, name: str = "model") -> dict[str, bytes]:
    """Files of the zip appended to the model (absolute or archive-relative offsets), {} when none.

    Stored and deflated members (what MetadataPopulator and edgecnn pack) are read here with struct and zlib, as
    zipfile reads them, CRC checked; any other zip goes to zipfile, imported only then (it brings shutil, bz2 and
    lzma: a tenth of the imports a one-image ``edgecnn run`` would otherwise add). Either way the bounds above hold
    (:data:`MAX_PACKED_MEMBERS`, :data:`MAX_PACKED_MEMBER_BYTES`, :data:`MAX_PACKED_TOTAL_BYTES`), members may not
    share their bytes, and inflation stops at the bound.

    Raises:
        ModelError: a bound is exceeded (a zip bomb or a fan-out of members): one line.
    """
    import zlib

    end = data.rfind(b"PK\x05\x06", max(0, len(data) - (1 << 16) - _EOCD.size))
    if end < 0:
        return {}
    try:
        return _read_zip(data, end, name)
    except _NeedsZipfile:
        return _zipfile_files(data, name)
    except (struct.error, ValueError, IndexError, EOFError, UnicodeDecodeError, zlib.error):
        return {}  # no readable zip structure after the model (the bytes may be anything): no packed files


def _decompress(body: bytes, method: int, limit: int, name: str, member: str) -> bytes:
    """One member's bytes: stored, deflate, bzip2 or LZMA, each inflated with ``max_length`` so that no call returns
    more than ``limit + 1`` bytes; more than ``limit`` is refused (a bomb), whatever the stream holds."""
    if method == 0:
        return body
    if method == 8:
        return _inflate(body, limit, name, repr(member))
    if method == 12:
        import bz2

        d: Any = bz2.BZ2Decompressor()
    elif method == 14:
        import lzma

        if len(body) < 4:
            raise ValueError("truncated LZMA header")
        psize = struct.unpack_from("<H", body, 2)[0]
        props = body[4: 4 + psize]
        d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)])
        body = body[4 + psize:]
    else:
        raise _damaged(name, member, f"its compression (method {method}) is not supported")
    out = d.decompress(body, limit + 1)
    if len(out) > limit or (not d.eof and d.needs_input is False):
        raise _too_large(name, f"hold {member!r}, which inflates past {limit:,} bytes")
    return out


def _damaged(name: str, member: str, why: str) -> ModelError:
    return ModelError(f"{name} is damaged: {member!r}, zipped after the model, cannot be read ({why}). Expected an "
                      "intact file: copy or re-export the model again.")


def _inflate(body: bytes, limit: int, name: str, member: str) -> bytes:
    """Raw deflate, streamed: stops as soon as more than ``limit`` bytes would come out."""
    import zlib

    d = zlib.decompressobj(-15)
    out = d.decompress(body, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise _too_large(name, f"hold {member}, which inflates past {limit:,} bytes")
    out += d.flush()
    if len(out) > limit:
        raise _too_large(name, f"hold {member}, which inflates past {limit:,} bytes")
    return out


def _read_zip(data: bytes, end: int, name: str = "model") -> dict[str, bytes]:
    import zlib

    if end + _EOCD.size > len(data):
        raise ValueError("truncated end record")
    _, disk, cd_disk, n_here, n_total, cd_size, cd_offset, _ = _EOCD.unpack_from(data, end)
    if disk or cd_disk or n_here != n_total or 0xFFFF in (n_here, n_total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise _NeedsZipfile
    if n_total > MAX_PACKED_MEMBERS:
        raise _too_large(name, f"are {n_total} entries")
    shift = end - cd_size - cd_offset  # > 0 when the zip's own offsets start at 0 (bytes appended as they were)
    if shift < 0:
        raise ValueError("central directory before the start")
    pos, out = cd_offset + shift, {}
    total = 0
    bodies: set[int] = set()
    entries = []
    for _ in range(n_total):  # every declared size and offset is checked before anything is inflated
        (sig, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _,
         local) = _CDIR.unpack_from(data, pos)
        if sig != b"PK\x01\x02":
            raise ValueError("bad central directory entry")
        raw_name = data[pos + _CDIR.size: pos + _CDIR.size + nlen]
        pos += _CDIR.size + nlen + xlen + clen
        if flags & 0x1 or method not in (0, 8) or 0xFFFFFFFF in (csize, usize, local) or (
                not flags & 0x800 and not raw_name.isascii()):
            raise _NeedsZipfile  # encrypted, another compression, zip64, a cp437 name
        member = raw_name.decode("utf-8")
        if usize > MAX_PACKED_MEMBER_BYTES:
            raise _too_large(name, f"hold {member!r}, declared as {usize:,} bytes")
        total += usize
        if total > MAX_PACKED_TOTAL_BYTES:
            raise _too_large(name, f"declare {total:,} bytes in all")
        if local in bodies:  # two entries, one body: the fan-out of a zip bomb
            raise _too_large(name, f"have entries sharing the bytes of {member!r}")
        bodies.add(local)
        entries.append((member, method, crc, csize, usize, local))
    for member, method, crc, csize, usize, local in entries:
        lsig, *_, lnlen, lxlen = _LOCAL.unpack_from(data, local + shift)
        if lsig != b"PK\x03\x04":
            raise ValueError("bad local header")
        start = local + shift + _LOCAL.size + lnlen + lxlen
        body = data[start: start + csize]
        try:  # streamed: stops at the declared size (itself within the bounds), whatever the body holds
            content = body if method == 0 else _inflate(body, usize, name, repr(member))
        except zlib.error as exc:
            raise _damaged(name, member, f"its deflate stream is corrupt: {exc}") from exc
        if len(body) != csize or len(content) != usize or zlib.crc32(content) != crc:
            raise _damaged(name, member, "its bytes do not match its size and CRC-32")
        if not member.endswith("/"):
            out[member] = content
    return out


def _zipfile_files(data: bytes, name: str = "model") -> dict[str, bytes]:
    """The fallback for zip64, bzip2, lzma and the rest, under the same bounds: entry count and declared sizes are
    checked before reading, each member is read in chunks that stop at the bound, and entries may not overlap."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _zipfile_members(zf, name, data)
    except ModelError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError, KeyError,
            IndexError, struct.error, MemoryError):
        return {}


def _zipfile_members(zf: Any, name: str, data: bytes) -> dict[str, bytes]:
    import zipfile

    infos = zf.infolist()
    if len(infos) > MAX_PACKED_MEMBERS:
        raise _too_large(name, f"are {len(infos)} entries")
    total, out, offsets = 0, {}, set()
    for zi in infos:  # every declared size and offset first, before anything is inflated
        if zi.file_size > MAX_PACKED_MEMBER_BYTES:
            raise _too_large(name, f"hold {zi.filename!r}, declared as {zi.file_size:,} bytes")
        total += zi.file_size
        if total > MAX_PACKED_TOTAL_BYTES:
            raise _too_large(name, f"declare {total:,} bytes in all")
        if zi.header_offset in offsets:
            raise _too_large(name, f"have entries sharing the bytes of {zi.filename!r}")
        offsets.add(zi.header_offset)
    for zi in infos:
        if zi.filename.endswith("/"):
            continue
        if zi.flag_bits & 0x1:
            raise _damaged(name, zi.filename, "it is encrypted")
        # zipfile parsed the directory (zip64 included); the bytes are inflated here, streamed with a bound: its own
        # bzip2/lzma readers inflate a whole block per call (a 4 KB read of bzip2 zeros is tens of MB)
        limit = min(zi.file_size, MAX_PACKED_MEMBER_BYTES)
        try:
            lsig, *_, lnlen, lxlen = _LOCAL.unpack_from(data, zi.header_offset)
            if lsig != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local header")
            start = zi.header_offset + _LOCAL.size + lnlen + lxlen
            body = data[start: start + zi.compress_size]
            content = _decompress(body, zi.compress_type, limit, name, zi.filename)
        except ModelError:
            raise
        except zipfile.BadZipFile:
            raise  # the structure itself (headers): no readable zip, as the fast reader says
        except (struct.error, IndexError) as exc:
            raise zipfile.BadZipFile(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001  (zlib.error, OSError of bz2, LZMAError: a corrupt stream)
            raise _damaged(name, zi.filename, str(exc) or type(exc).__name__) from exc
        if len(content) != zi.file_size or zipfile.crc32(content) != zi.CRC:
            raise _damaged(name, zi.filename, "its bytes do not match its size and CRC-32")
        chunks = [content]
        out[zi.filename] = b"".join(chunks)
    return out


__all__ = ["MAX_PACKED_MEMBERS", "MAX_PACKED_MEMBER_BYTES", "MAX_PACKED_TOTAL_BYTES", "read_packed_files"]
