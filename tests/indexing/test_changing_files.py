"""A file replaced between the scan and its decode is read as it is now (docs/reliability.md)."""

from __future__ import annotations

from clipiqa_desktop.catalog import file_fingerprint

from ..conftest import photo
from ..hostile import replace_file


def test_a_file_replaced_by_a_smaller_one_after_the_scan_is_fingerprinted_as_it_is_now(tmp_path):
    path = tmp_path / "DSC_0001.JPG"
    photo(1200, 900, seed=1).save(path, quality=95)
    scanned = path.stat().st_size
    assert scanned > 2 * 64 * 1024  # big enough that the fingerprint reads its last 64 KiB
    replace_file(path)  # a 200 × 300 JPEG, far below 64 KiB
    assert path.stat().st_size < 64 * 1024
    # The scan's size is stale: it must neither fail (seek before the start: EINVAL) nor be hashed.
    assert file_fingerprint(path, scanned) == file_fingerprint(path)
