"""The zip packed after a model (labels, model card) reads as zipfile reads it, without importing zipfile."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest

from edgecnn.packed_files import _zipfile_files, read_packed_files

MODEL = b"TFL3" + bytes(range(256)) * 8  # stands in for a flatbuffer: any bytes before the zip
MEMBERS = {"labels.txt": b"cat\ndog\n", "modelcard.json": b'{"name": "x", "labels": ["cat", "dog"]}' * 40,
           "dir/": b"", "sub/notes.txt": "é ünïcode".encode()}


def _appended(compression: int, absolute: bool = True, comment: bytes = b"") -> bytes:
    """MODEL with a zip after it: appended in place (absolute offsets, as MetadataPopulator) or as separate bytes."""
    buf = io.BytesIO(MODEL if absolute else b"")
    if absolute:
        buf.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buf, "a" if absolute else "w", compression=compression) as zf:
        for name, content in MEMBERS.items():
            zf.writestr(name, content)
        zf.comment = comment
    return buf.getvalue() if absolute else MODEL + buf.getvalue()


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
@pytest.mark.parametrize("absolute", [True, False], ids=["absolute", "archive-relative"])
@pytest.mark.parametrize("comment", [b"", b"a comment"], ids=["", "comment"])
def test_reads_what_zipfile_reads(compression, absolute, comment):
    data = _appended(compression, absolute, comment)
    got = read_packed_files(data)
    assert got == _zipfile_files(data)
    assert got == {k: v for k, v in MEMBERS.items() if not k.endswith("/")}


def test_other_zips_go_to_zipfile():
    """bzip2 members (and zip64, encryption, cp437 names) are read by zipfile itself."""
    data = _appended(zipfile.ZIP_BZIP2)
    assert read_packed_files(data) == {k: v for k, v in MEMBERS.items() if not k.endswith("/")}


def test_a_member_with_a_bad_crc_is_one_error():
    """A member whose bytes do not match its CRC: the card or labels would be wrong, so the model is refused in one
    line (issue 19) instead of running with guessed labels."""
    from edgecnn.errors import ModelError

    data = bytearray(_appended(zipfile.ZIP_STORED))
    data[data.index(b"cat\ndog")] ^= 0xFF
    with pytest.raises(ModelError, match="damaged"):
        read_packed_files(bytes(data))


@pytest.mark.parametrize("damage", ["no zip", "truncated", "cut end record"])
def test_damaged_zip_gives_no_files(damage):
    data = bytearray(_appended(zipfile.ZIP_STORED))
    if damage == "no zip":
        data = bytearray(MODEL)
    elif damage == "truncated":
        cut = data.index(b"PK\x01\x02")
        data = data[: cut - 10] + data[cut:]
    else:
        data = data[:-5]
    assert read_packed_files(bytes(data)) == {}
    assert _zipfile_files(bytes(data)) == {}


def test_reading_a_card_does_not_import_zipfile(tmp_path):
    path = tmp_path / "m.bin"
    path.write_bytes(_appended(zipfile.ZIP_DEFLATED))
    code = ("import sys\nfrom edgecnn.packed_files import read_packed_files\n"
            f"files = read_packed_files(open({str(path)!r}, 'rb').read())\n"
            "assert files['labels.txt'] == b'cat\\ndog\\n', files\nprint('zipfile' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
