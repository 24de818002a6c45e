"""Builders of hostile files for tests/faults/test_hostile.py: real bytes, crafted the way an attacker would.

Image headers that claim huge sizes, decompression bombs, zips appended to a model that inflate past what they
declare or fan many entries out onto one body, TFLite metadata whose tables share one large list, ONNX metadata with
invalid UTF-8, and the child-process runner that measures each case (exit, signal, output, peak RSS) under a memory
cap and a timeout.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Address-space cap of every child (``RLIMIT_AS``): a bomb that slips through dies instead of taking the machine.
AS_LIMIT_MB = 1536
#: Peak RSS bound asserted for every file-bomb case (a plain run of the tiny model peaks at ~90 MB here).
BOMB_RSS_MB = 300
#: Peak RSS bound for the other child cases (no bomb; a stream URL loads OpenCV's FFmpeg: ~430 MB here).
RSS_MB = 600


# ---------------------------------------------------------------------- child processes
@dataclass
class Child:
    """A finished child: exit status (negative: killed by that signal), output, peak RSS in MB."""

    argv: list[str]
    code: int
    stdout: str
    stderr: str
    rss_mb: float
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("Error:")]


#: The launcher each case runs through (``python -S``: a few MB). Linux carries a process's peak RSS across ``exec``
#: (and a forked child starts from its parent's), so a child forked straight from pytest (TensorFlow loaded: ~430 MB)
#: would report pytest's peak. The launcher forks the command from its own small process, sets ``RLIMIT_AS``, kills it
#: at the timeout, and writes ``status maxrss_kb`` from ``wait4`` to the report file.
_LAUNCHER = """
import os, resource, sys, time
report, cap, timeout, argv = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
deadline = time.monotonic() + timeout
while True:
    done, status, usage = os.wait4(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        done, status, usage = os.wait4(pid, 0)
        status = -1
        break
    time.sleep(0.02)
with open(report, "w") as fh:
    fh.write(f"{status} {usage.ru_maxrss}")
"""


def child(argv: list[str], *, as_mb: int = AS_LIMIT_MB, timeout: float = 120, env: dict[str, str] | None = None,
          cwd: Path | None = None, stdin: int | None = subprocess.DEVNULL) -> Child:
    """Run ``argv`` with an address-space cap and a timeout (a hang fails the test); its own peak RSS from ``wait4``
    (through :data:`_LAUNCHER`)."""
    full = dict(os.environ)
    full["PYTHONPATH"] = str(ROOT) + (os.pathsep + full["PYTHONPATH"] if full.get("PYTHONPATH") else "")
    full.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", COLUMNS="200", PYTHONUNBUFFERED="1",
                MALLOC_ARENA_MAX="2", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for key in ("EDGECNN_FAULT_POINT", "EDGECNN_FAULT_SIGNAL", "EDGECNN_FAULT_AFTER", "EDGECNN_MAX_PIXELS",
                "EDGECNN_SECRET_PARAMS", "EDGECNN_SOURCE", "FORCE_COLOR"):
        full.pop(key, None)
    full.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".report") as report:
        t0 = time.monotonic()
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, report.name, str(as_mb << 20), str(timeout), *argv]
        proc = subprocess.run(launcher, stdout=out, stderr=err, stdin=stdin, env=full, cwd=cwd,
                              timeout=timeout + 30, start_new_session=True)
        assert proc.returncode == 0, f"the launcher failed ({proc.returncode})"
        status, maxrss = (int(x) for x in open(report.name).read().split())
        if status == -1:
            raise AssertionError(f"hung: {argv} did not finish in {timeout:.0f}s")
        out.seek(0)
        err.seek(0)
        return Child(argv, os.waitstatus_to_exitcode(status), out.read().decode("utf-8", "replace"),
                     err.read().decode("utf-8", "replace"), maxrss / 1024, time.monotonic() - t0)


def edgecnn(*args: object, **kw) -> Child:
    return child([sys.executable, "-m", "edgecnn", *map(os.fsdecode, args)], **kw)


def python(code: str, *args: object, **kw) -> Child:
    return child([sys.executable, "-c", code, *map(os.fsdecode, args)], **kw)


def assert_clean_failure(res: Child, *needles: str, code: int | None = None, rss_mb: float = RSS_MB) -> str:
    """Non-zero exit (not a signal), exactly one ``Error:`` line holding every needle, no traceback, RSS bound."""
    assert res.code != 0, f"exit 0 where a failure was expected\n{res.output[-3000:]}"
    assert res.code > 0, f"killed by signal {signal.Signals(-res.code).name}\n{res.output[-3000:]}"
    if code is not None:
        assert res.code == code, f"exit {res.code} != {code}\n{res.output[-3000:]}"
    assert "Traceback" not in res.output, res.output[-3000:]
    errors = res.error_lines()
    assert len(errors) == 1, f"expected one Error: line, got {errors}\n{res.stderr[-3000:]}"
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    assert res.rss_mb < rss_mb, f"peak RSS {res.rss_mb:.0f} MB over the {rss_mb} MB bound"
    return errors[0]


def assert_clean_success(res: Child, rss_mb: float = RSS_MB) -> None:
    assert res.code == 0, f"exit {res.code}\n{res.output[-3000:]}"
    assert "Traceback" not in res.output, res.output[-3000:]
    assert res.rss_mb < rss_mb, f"peak RSS {res.rss_mb:.0f} MB over the {rss_mb} MB bound"


# ---------------------------------------------------------------------- images
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes | None = None, bit_depth: int = 8, color: int = 2,
        extra: bytes = b"") -> bytes:
    """A PNG whose header says ``width`` x ``height`` (its data may be a tiny lie)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_bomb(width: int, height: int) -> bytes:
    """A real gray PNG of ``width`` x ``height`` zero pixels: a few hundred KB that decode to width*height bytes."""
    comp = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    return png(width, height, b"".join(parts), bit_depth=8, color=0)


def png_text_bomb() -> bytes:
    """A small valid PNG with a zTXt chunk inflating to 64 MB (Pillow caps text chunks)."""
    text = b"Comment\0\0" + zlib.compress(b"A" * (64 << 20), 9)
    return png(8, 8, zlib.compress(b"".join(b"\0" + b"\x80" * 24 for _ in range(8))), extra=_chunk(b"zTXt", text))


def bmp(width: int, height: int, bpp: int = 24) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54 + 16, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, 0, 16, 2835, 2835, 0, 0)
    return header + info + b"\0" * 16


def jpeg(width: int, height: int, components: int = 3) -> bytes:
    sof = struct.pack(">BHHB", 8, height, width, components) + b"".join(
        bytes([i + 1, 0x11, 0]) for i in range(components))
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def gif(width: int, height: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b"\x2c" +
            struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00\x3b")


def tiff(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8 + 16) + b"\0" * 16 + ifd


def ppm(width: int, height: int) -> bytes:
    return f"P6 {width} {height} 255\n".encode() + b"\0" * 12


def webp_vp8x(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + \
        (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def ico(width: int, height: int) -> bytes:
    inner = png(width, height)
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(inner), 22) + inner


def psd(width: int, height: int) -> bytes:
    return b"8BPS" + struct.pack(">H6sHIIHH", 1, b"\0" * 6, 3, height, width, 8, 3) + b"\0" * 16


def good_png(seed: int = 0) -> bytes:
    from PIL import Image

    im = Image.new("RGB", (20, 20), ((seed * 40) % 256, 90, 160))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


#: (file name, bytes builder, a word the skipped row's error holds; "" when the file may also be classified: it is a
#: valid image whose hostile part is bounded): every one is a row, never a crash, a hang or a memory blow-up.
BAD_IMAGES: list[tuple[str, object, str]] = [
    ("bomb-12000x12000.png", lambda: png_bomb(12000, 12000), "over the limit"),
    ("header-65535x65535.png", lambda: png(65535, 65535), "over the limit"),
    ("header-100000x1000.png", lambda: png(100000, 1000), "over the limit"),
    ("header-16bit-huge.png", lambda: png(40000, 40000, bit_depth=16), "over the limit"),
    ("header-palette-huge.png", lambda: png(30000, 30000, bit_depth=8, color=3), "over the limit"),
    ("header-zero-width.png", lambda: png(0, 100), "image"),
    ("header-2^31.png", lambda: png(2**31 - 1, 2**31 - 1), "image"),
    ("text-chunk-bomb.png", png_text_bomb, ""),  # a valid 8x8 image: classified or skipped, memory bounded
    ("truncated.png", lambda: good_png()[:40], "image"),
    ("zero-bytes.png", lambda: b"", "image"),
    ("garbage.png", lambda: os.urandom(2048), "image"),
    ("html.jpg", lambda: b"<html><body>not an image</body></html>", "image"),
    ("bmp-huge.bmp", lambda: bmp(60000, 60000), "over the limit"),
    ("bmp-negative-height.bmp", lambda: bmp(60000, -60000), "over the limit"),
    ("bmp-8bit-huge.bmp", lambda: bmp(50000, 50000, bpp=8), "over the limit"),
    ("bmp-zero.bmp", lambda: bmp(0, 0), "image"),
    ("jpeg-huge.jpg", lambda: jpeg(65000, 65000), "over the limit"),
    ("jpeg-huge-gray.jpg", lambda: jpeg(65000, 65000, components=1), "over the limit"),
    ("jpeg-cmyk-huge.jpg", lambda: jpeg(65000, 65000, components=4), "image"),
    ("jpeg-zero.jpg", lambda: jpeg(0, 0), "image"),
    ("gif-huge.gif", lambda: gif(65535, 65535), "over the limit"),
    ("tiff-huge.tif", lambda: tiff(100000, 100000), "over the limit"),
    ("tiff-truncated.tiff", lambda: tiff(100, 100)[:20], "image"),
    ("ppm-huge.png", lambda: ppm(100000, 100000), "over the limit"),
    ("webp-huge.webp", lambda: webp_vp8x(16000, 16000), "image"),
    ("ico-huge.png", lambda: ico(65535, 65535), "image"),
    ("psd-huge.png", lambda: psd(30000, 30000), "over the limit"),
]


# ---------------------------------------------------------------------- zips appended to a model
def _zip(members: list[dict], shared: int = 0) -> bytes:
    """A zip written by hand, so that it can lie: each member is ``{name, data, method, usize, crc, flags}`` where
    ``data`` is the stored body (already compressed); ``usize``/``crc`` are what the headers declare. ``shared``
    extra central-directory entries point at the first member's body (a fan-out)."""
    out = bytearray()
    central = bytearray()
    entries = []
    for m in members:
        name = m["name"].encode()
        body = m["data"]
        offset = len(out)
        usize = m.get("usize", len(body))
        crc = m.get("crc", 0)
        flags = m.get("flags", 0)
        method = m.get("method", 0)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 0, crc, len(body), usize, len(name), 0)
        out += name + body
        entries.append((name, flags, method, crc, len(body), usize, offset))
    entries += [(f"copy{i}.txt".encode(), *entries[0][1:]) for i in range(shared)]
    cd_offset = len(out)
    for name, flags, method, crc, csize, usize, offset in entries:
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method, 0, 0, crc, csize, usize,
                               len(name), 0, 0, 0, 0, 0, offset) + name
    out += central
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    return bytes(out)


def deflate(data_size: int, chunk: int = 1 << 22) -> bytes:
    """Raw deflate of ``data_size`` zero bytes, streamed (never holds the inflated bytes)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zero = b"\0" * chunk
    parts = []
    left = data_size
    while left > 0:
        parts.append(comp.compress(zero[: min(chunk, left)]))
        left -= chunk
    parts.append(comp.flush())
    return b"".join(parts)


def _zipfile_bytes(members: dict[str, bytes], compression: int, force_zip64: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            with zf.open(info, "w", force_zip64=force_zip64) as fh:
                fh.write(data)
    return buf.getvalue()


def _retag(data: bytes, method: int) -> bytes:
    """Set the compression method of every local and central header (a zip written stored, relabelled)."""
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        pos = out.find(sig)
        while pos >= 0:
            out[pos + at: pos + at + 2] = struct.pack("<H", method)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def _lie_sizes(data: bytes, usize: int) -> bytes:
    """Make every header of a zipfile-written zip declare ``usize`` uncompressed bytes."""
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = out.find(sig)
        while pos >= 0:
            if out[pos + at: pos + at + 4] != b"\xff\xff\xff\xff":
                out[pos + at: pos + at + 4] = struct.pack("<I", usize)
            pos = out.find(sig, pos + 4)
    return bytes(out)


MB = 1 << 20


def _big_bz2(size: int) -> bytes:
    import bz2

    comp = bz2.BZ2Compressor(9)
    zero = b"\0" * (4 * MB)
    parts = [comp.compress(zero) for _ in range(size // (4 * MB))]
    return b"".join(parts) + comp.flush()


#: (case id, builder of the bytes appended to a real model, words of the one error line). Sizes are what an attacker
#: can fit in a small file: the inflated sizes stay in the hundreds of MB so building them stays fast.
ZIP_BOMBS: list[tuple[str, object, tuple[str, ...]]] = [
    ("deflate-declared-256MB", lambda: _zip([{"name": "labels.txt", "data": deflate(256 * MB), "method": 8,
                                             "usize": 256 * MB}]), ("refused", "declared")),
    ("deflate-lies-1KB-inflates-256MB", lambda: _zip([{"name": "labels.txt", "data": deflate(256 * MB), "method": 8,
                                                      "usize": 1000}]), ("refused", "inflates past")),
    ("fan-out-64-entries-one-body", lambda: _zip([{"name": "labels.txt", "data": deflate(8 * MB), "method": 8,
                                                  "usize": 8 * MB}], shared=63), ("refused",)),
    ("shared-body-small", lambda: _zip([{"name": "labels.txt", "data": b"a\nb\n", "crc": zlib.crc32(b"a\nb\n")}],
                                       shared=2), ("refused", "sharing")),
    ("300-entries", lambda: _zip([{"name": f"f{i}.txt", "data": b"x", "crc": zlib.crc32(b"x")} for i in range(300)]),
     ("refused", "300 entries")),
    ("declared-total-over-32MB", lambda: _zip([{"name": f"f{i}.txt", "data": deflate(12 * MB), "method": 8,
                                                "usize": 12 * MB} for i in range(3)]), ("refused", "in all")),
    ("bzip2-declared-64MB", lambda: _zipfile_bytes({"labels.txt": b"\0" * (64 * MB)}, zipfile.ZIP_BZIP2),
     ("refused", "declared")),
    ("bzip2-lies-1KB", lambda: _lie_sizes(_zipfile_bytes({"labels.txt": b"\0" * (64 * MB)}, zipfile.ZIP_BZIP2), 1000),
     ("refused", "inflates past")),
    ("lzma-lies-1KB", lambda: _lie_sizes(_zipfile_bytes({"labels.txt": b"\0" * (64 * MB)}, zipfile.ZIP_LZMA), 1000),
     ("refused", "inflates past")),
    ("zip64-declared-64MB", lambda: _zipfile_bytes({"labels.txt": b"\0" * (64 * MB)}, zipfile.ZIP_DEFLATED,
                                                   force_zip64=True), ("refused",)),
    ("corrupt-deflate", lambda: _zip([{"name": "modelcard.json", "data": b"\xff\xfe garbage, not deflate" * 8,
                                       "method": 8, "usize": 500}]), ("damaged", "deflate")),
    ("bad-crc", lambda: _zip([{"name": "modelcard.json", "data": b"{}", "crc": 12345}]), ("damaged", "CRC")),
    ("encrypted-member", lambda: _zip([{"name": "modelcard.json", "data": b"x" * 40, "flags": 1,
                                        "crc": zlib.crc32(b"x" * 40)}]), ("damaged",)),
    ("unknown-compression", lambda: _retag(_zipfile_bytes({"modelcard.json": b"{}"}, zipfile.ZIP_STORED), 97),
     ("damaged",)),
]


# ---------------------------------------------------------------------- TFLite metadata
def fanout_metadata(copies: int = 20000) -> bytes:
    """A ``TFLITE_METADATA`` flatbuffer of ~160 KB: ``copies`` output tensors that are one table, whose associated
    file list is ``copies`` references to one file table (copies**2 files once expanded)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    fname = b.CreateString("labels.txt")
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, fname, 0)
    b.PrependInt8Slot(2, 2, 0)
    file_table = b.EndObject()
    b.StartVector(4, copies, 4)
    for _ in range(copies):
        b.PrependUOffsetTRelative(file_table)
    files = b.EndVector()
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(6, files, 0)
    tensor = b.EndObject()
    b.StartVector(4, copies, 4)
    for _ in range(copies):
        b.PrependUOffsetTRelative(tensor)
    tensors = b.EndVector()
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(3, tensors, 0)
    subgraph = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs = b.EndVector()
    name = b.CreateString("fan-out")
    b.StartObject(8)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def with_metadata(model: bytes, metadata: bytes) -> bytes:
    """A copy of a ``.tflite`` whose ``TFLITE_METADATA`` buffer holds ``metadata`` (TensorFlow's schema objects;
    nothing is appended after the flatbuffer)."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model, 0)
    for entry in m.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == "TFLITE_METADATA":
            m.buffers[entry.buffer].data = np.frombuffer(metadata, np.uint8)
            break
    else:
        raise AssertionError("the model has no TFLITE_METADATA")
    b = flatbuffers_builder()
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def flatbuffers_builder():
    import flatbuffers

    return flatbuffers.Builder(1 << 16)


# ---------------------------------------------------------------------- ONNX
def onnx_with_props(src: Path, dst: Path, props: dict[str, str] | None = None, raw_props: list[tuple[bytes, bytes]]
                    = (), doc_string: str | None = None, drop: tuple[str, ...] = ()) -> Path:
    """A copy of an ONNX model with metadata_props replaced/added; ``raw_props`` are appended as raw protobuf
    (their bytes need not be UTF-8, which the onnx package refuses to write)."""
    import onnx

    model = onnx.load(str(src))
    keep = {p.key: p.value for p in model.metadata_props if p.key not in drop}
    keep.update(props or {})
    del model.metadata_props[:]
    for k, v in keep.items():
        model.metadata_props.add(key=k, value=v)
    if doc_string is not None:
        model.doc_string = doc_string
    data = model.SerializeToString()
    for key, value in raw_props:
        entry = b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(len(value)) + value
        data += b"\x72" + _varint(len(entry)) + entry  # field 14 (metadata_props), wire type 2
    dst.write_bytes(data)
    return dst


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def nonfinite_onnx(dst: Path, value: float, card: dict) -> Path:
    """A real ONNX classifier (24x24x3 uint8 in, 3 scores out) whose scores are ``value`` (NaN or Inf)."""
    import json

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 24, 24, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Unsqueeze", ["z", "ax1"], ["z1"]),
        helper.make_node("Add", ["z1", "bad"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             numpy_helper.from_array(np.array([value, value, 0.5], np.float32), "bad")]
    graph = helper.make_graph(nodes, "nonfinite", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="edgecnn.modelcard", value=json.dumps(card))
    onnx.save(model, str(dst))
    return dst
