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
