"""Edges a cold review found: a device fault must not fail photos for good, a copy made while the
original's card is unplugged must not take the original's record, and folders the scan never listed
(hidden, unreadable) must not lose their photos to "missing".

Real JPEGs, a real catalog file and the tiny random CLIP. The device fault is injected at the
scorer's boundary (as a full disk is injected at the write call): a real one needs a GPU.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import replace

from PIL import Image

from clipiqa_desktop.catalog import Catalog, Decision
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder

from ..conftest import photo

OPTIONS = IndexOptions(long_side=128, batch_size=4, workers=1, thumb_long_side=64)
RECURSIVE = replace(OPTIONS, recursive=True)


def _rows(catalog: Catalog) -> dict[str, tuple[str, str | None]]:
    con = sqlite3.connect(catalog.path)
    try:
        rows = con.execute(
            "SELECT f.path, p.name, p.status, p.error FROM photos p JOIN folders f ON f.id = p.folder_id"
        ).fetchall()
    finally:
        con.close()
    return {os.path.join(f, n): (st, err) for f, n, st, err in rows}


class _DeviceOutOfMemory:
    """The real scorer, whose device fails every batch until `healthy` is set."""

    def __init__(self, scorer) -> None:
        self._scorer, self.healthy = scorer, False

    def get(self):  # the pipeline asks a (lazy) scorer for the model
        return self

    def __getattr__(self, name):
        return getattr(self._scorer, name)

    def score_batch(self, *args, **kwargs):
        if not self.healthy:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self._scorer.score_batch(*args, **kwargs)


def test_photos_that_failed_on_the_device_are_scored_by_the_next_run(tmp_path, catalog, tiny_scorer):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for k in range(3):
        photo(160, 120, seed=k).save(shoot / f"IMG_{k}.JPG", quality=90)
    sick = _DeviceOutOfMemory(tiny_scorer)
    first = index_folder(catalog, sick, shoot, OPTIONS)
    assert len(first.failed) == 3 and all("could not be scored" in why for _, why in first.failed)
    sick.healthy = True
    second = index_folder(catalog, sick, shoot, OPTIONS)
    assert (second.indexed, second.failed_before, second.failed) == (3, 0, [])
    assert {st for st, _ in _rows(catalog).values()} == {"ok"}


def test_a_copy_made_while_the_card_is_out_gets_its_own_record(tmp_path, catalog, tiny_scorer):
    card = tmp_path / "card"
    card.mkdir()
    photo(160, 120, seed=7).save(card / "IMG_1.JPG", quality=90)
    index_folder(catalog, tiny_scorer, card, OPTIONS)
    (pid,) = catalog.photo_ids_for_paths([card / "IMG_1.JPG"]).values()
    assert pid is not None
    catalog.set_decisions({pid: Decision(rating=5, picked=True)})
    disk = tmp_path / "disk"
    disk.mkdir()
    shutil.copy2(card / "IMG_1.JPG", disk / "IMG_1.JPG")
    card.rename(tmp_path / "card-unplugged")  # the card is out: its folder is gone, not emptied
    index_folder(catalog, tiny_scorer, disk, OPTIONS)
    (tmp_path / "card-unplugged").rename(card)
    index_folder(catalog, tiny_scorer, card, OPTIONS)
    ids = catalog.photo_ids_for_paths([card / "IMG_1.JPG", disk / "IMG_1.JPG"])
    assert ids[card / "IMG_1.JPG"] == pid, "the card's photo kept its record"
    assert ids[disk / "IMG_1.JPG"] not in (None, pid), "the copy has a record of its own"
    assert catalog.decisions([pid])[pid] == Decision(rating=5, picked=True)


def test_a_move_within_the_shoot_still_keeps_its_record(tmp_path, catalog, tiny_scorer):
    shoot = tmp_path / "shoot"
    (shoot / "100CANON").mkdir(parents=True)
    (shoot / "101CANON").mkdir()
    photo(160, 120, seed=3).save(shoot / "100CANON" / "IMG_1.JPG", quality=90)
    index_folder(catalog, tiny_scorer, shoot, RECURSIVE)
    (pid,) = catalog.photo_ids_for_paths([shoot / "100CANON" / "IMG_1.JPG"]).values()
    (shoot / "100CANON" / "IMG_1.JPG").rename(shoot / "101CANON" / "IMG_1.JPG")
    index_folder(catalog, tiny_scorer, shoot, RECURSIVE)
    assert (
        catalog.photo_ids_for_paths([shoot / "101CANON" / "IMG_1.JPG"])[shoot / "101CANON" / "IMG_1.JPG"]
        == pid
    )


def test_photos_of_a_hidden_folder_are_not_marked_missing_by_a_scan_that_skips_it(
    tmp_path, catalog, tiny_scorer
):
    shoot = tmp_path / "shoot"
    (shoot / ".edits").mkdir(parents=True)
    (shoot / "day1").mkdir()
    photo(160, 120, seed=1).save(shoot / ".edits" / "best.jpg", quality=90)
    photo(160, 120, seed=2).save(shoot / "day1" / "a.jpg", quality=90)
    index_folder(catalog, tiny_scorer, shoot / ".edits", OPTIONS)  # indexed on purpose, on its own
    summary = index_folder(catalog, tiny_scorer, shoot, RECURSIVE)
    assert summary.missing == 0
    assert _rows(catalog)[str(shoot / ".edits" / "best.jpg")] == ("ok", None)


def _shot(path, seed: int, taken: str) -> None:
    exif = Image.Exif()
    exif[0x0132] = taken  # DateTime, "YYYY:MM:DD HH:MM:SS"
    photo(160, 120, seed=seed).save(path, quality=90, exif=exif)


def test_a_file_overwritten_by_another_photo_does_not_inherit_its_decision(tmp_path, catalog, tiny_scorer):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    _shot(shoot / "IMG_0001.JPG", 1, "2026:06:01 14:00:00")
    _shot(shoot / "IMG_0002.JPG", 2, "2026:06:01 14:00:05")
    index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    ids = catalog.photo_ids_for_paths([shoot / "IMG_0001.JPG", shoot / "IMG_0002.JPG"])
    one, two = ids[shoot / "IMG_0001.JPG"], ids[shoot / "IMG_0002.JPG"]
    assert one is not None and two is not None
    catalog.set_decisions({one: Decision(rating=-1), two: Decision(rating=4, label="Green")})
    # A reused card's numbering copied over the earlier import: another moment, another photo.
    _shot(shoot / "IMG_0001.JPG", 9, "2026:07:15 09:30:00")
    # The same photo edited in place (cropped, re-saved): new bytes, same moment.
    _shot(shoot / "IMG_0002.JPG", 8, "2026:06:01 14:00:05")
    os.utime(shoot / "IMG_0002.JPG", ns=(1, 1))  # surely "changed" for the scan
    summary = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert summary.replaced == ["IMG_0001.JPG"]
    decisions = catalog.decisions([one, two])
    assert decisions[one] == Decision(), "the new photo starts undecided"
    assert decisions[two] == Decision(rating=4, label="Green"), "an edit of the same photo keeps it"
    assert _rows(catalog)[str(shoot / "IMG_0001.JPG")] == ("ok", None)
