"""edgecnn.fileio: one size of an artifact (file or folder) and one unit (MB = 10**6 bytes) everywhere."""

from __future__ import annotations

from edgecnn.fileio import MB, human_size, path_size


def test_sizes_are_decimal_and_folders_count_every_file(tmp_path):
    assert MB == 10**6
    assert human_size(999) == "999 B" and human_size(4_800_000) == "4.8 MB" and human_size(2_500) == "2.5 kB"
    (tmp_path / "saved_model" / "variables").mkdir(parents=True)
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"x" * 1500)
    (tmp_path / "saved_model" / "variables" / "v.data").write_bytes(b"y" * 500)
    assert path_size(tmp_path / "saved_model") == 2000 and path_size(tmp_path / "saved_model" / "saved_model.pb") == 1500


def test_a_known_size_read_reserves_the_file_not_the_limit(tmp_path):
    """``read(n)`` reserves n bytes first: image readers asked for their 528 MB limit on every file, and three reader
    threads ran out of a 1.5 GB address-space cap (CI). Now a 1 TB limit reads a small file; a file that grows while
    read is read on, and refused past the limit."""
    import io

    from edgecnn.fileio import read_known_size, read_regular
    from edgecnn.imaging import max_pixels, read_image_file, set_max_pixels

    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    assert read_regular(small, limit=10**12) == b"x" * 1000
    before = max_pixels()
    try:
        set_max_pixels(10**12)  # a file limit of 8 TB: reserving it would fail at once
        assert read_image_file(small) == b"x" * 1000
    finally:
        set_max_pixels(before)
    grown = b"y" * (3 << 20)
    assert read_known_size(io.BytesIO(grown), 10, limit=len(grown)) == grown  # grew after fstat: read on
    assert read_known_size(io.BytesIO(grown), 10, limit=len(grown) - 1) is None  # grew past the limit: refused
    assert read_known_size(io.BytesIO(b"abc"), 10, limit=100) == b"abc"  # shrank: what is there
