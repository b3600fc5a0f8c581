"""A file replaced between the scan and its decode is read as it is now (docs/reliability.md)."""

from __future__ import annotations

from clipiqa_desktop.catalog import file_fingerprint

from ..conftest import photo
from ..hostile import replace_file


def test_a_file_replaced_by_a_smaller_one_after_the_scan_is_fingerprinted_as_it_is_now(tmp_path):
    path = tmp_path / "DSC_0001.JPG"
    photo(1200, 900, seed=1).save(path, quality=95)
    assert path.stat().st_size > 2 * 64 * 1024  # big enough that the fingerprint reads its last 64 KiB
    before = file_fingerprint(path)
    replace_file(path)  # a 200 × 300 JPEG, far below 64 KiB
    assert path.stat().st_size < 64 * 1024
    # Hashed as it is now: no failure (seek before the start: EINVAL), the same as a copy of the
    # new content, not the old one.
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(path.read_bytes())
    now = file_fingerprint(path)
    assert now == file_fingerprint(copy) != before
