"""move-rejects: rejected frames (photo + RAW/JPEG partner + sidecars) move aside and come back, on a
real disk and a real catalog; collisions never overwrite; a failure part-way (a real full disk, a name
taken meanwhile) and a kill between moving and recording leave disk and catalog agreeing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord, file_fingerprint
from clipiqa_desktop.catalog.moves import last_batch, pending_batches, record_batch
from clipiqa_desktop.catalog.records import SidecarState
from clipiqa_desktop.culling.move_rejects import (
    MoveError,
    execute,
    move_file,
    plan_moves,
    recover,
    undo_last,
)

REJECT, PICK, STARS3, NONE = Decision(-1), Decision(0, True), Decision(3), Decision()


def make_shoot(catalog: Catalog, folder: Path, files: dict[str, Decision | int | None]) -> dict[str, int]:
    """Files on disk (distinct content); those with a Decision are indexed (scores, embedding,
    thumbnail) and given it; None = on disk, not in the catalog; an int = that many bytes, not
    indexed. Returns name -> photo id."""
    folder.mkdir(parents=True, exist_ok=True)
    records: list[PhotoRecord] = []
    for i, (name, what) in enumerate(files.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        size = what if isinstance(what, int) and not isinstance(what, bool) else 2000
        path.write_bytes(name.encode() + bytes([i % 251]) * size)
        if isinstance(what, Decision):
            st = path.stat()
            records.append(
                PhotoRecord(
                    name,
                    st.st_size,
                    st.st_mtime_ns,
                    fingerprint=file_fingerprint(path),
                    width=30,
                    height=20,
                    scores={"quality": 0.1 + i / 100, "sharpness": 0.5},
                    embedding=np.ones(8, dtype=np.float32) / np.sqrt(8),
                    thumbnail=(30, 20, b"jpeg" + name.encode()),
                )
            )
    analysis = catalog.analysis_id("tiny", "128", 8, 100.0)
    assert analysis is not None
    ids = catalog.write_batch(catalog.folder_id(folder), analysis, records)
    catalog.set_last_analysis([catalog.folder_id(folder)], analysis)
    decided = {ids[n]: d for n, d in files.items() if isinstance(d, Decision) and d != NONE}
    catalog.set_decisions(decided)
    return ids


def where(catalog: Catalog, pid: int) -> Path:
    """The file path the catalog has for a photo id."""
    for fid, folder in catalog.folders():
        rows, _ = catalog.rows([fid], None, photo_ids=[pid])
        if rows:
            return folder / rows[0][2]
    raise AssertionError(f"photo {pid} has no record")


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_catalog_agrees(catalog: Catalog, ids: dict[str, int]) -> None:
    """Every photo's record names a file that exists."""
    for name, pid in ids.items():
        assert where(catalog, pid).is_file(), (name, where(catalog, pid))


def test_move_then_undo_with_sidecars_of_both_namings_and_a_raw_jpeg_pair(tmp_path, catalog):
    shoot = tmp_path / "shoot"
    ids = make_shoot(
        catalog,
        shoot,
        {
            "IMG_1.CR2": REJECT,
            "IMG_1.JPG": NONE,  # its partner, indexed, undecided
            "IMG_1.CR2.xmp": 10,  # darktable naming
            "IMG_1.xmp": 10,  # Adobe naming: the pair's
            "IMG_2.JPG": REJECT,
            "IMG_2.JPG.XMP": 10,  # upper-case extension
            "IMG_3.NEF": REJECT,
            "IMG_3.jpg": None,  # a partner the catalog does not know
            "IMG_4.JPG": PICK,
            "IMG_4.JPG.xmp": 10,
            "IMG_1.MOV": 10,  # not a photo of the frame: stays
        },
    )
    before = snapshot(shoot)
    scores_before = catalog.rows(
        [catalog.folder_id(shoot)], catalog.last_analysis([catalog.folder_id(shoot)])
    )

    plan = plan_moves(catalog, shoot)
    assert (plan.photos, plan.count("partner"), plan.count("sidecar"), plan.files) == (3, 2, 3, 8)
    assert plan.headline() == (
        "3 rejected photos (8 files with 2 RAW+JPEG partners and 3 sidecars) to "
        f"{shoot.resolve() / '_rejected'}"
    )
    result = execute(catalog, plan)
    assert not result.failed and result.files == 8

    target = shoot / "_rejected"
    moved = {
        "IMG_1.CR2",
        "IMG_1.JPG",
        "IMG_1.CR2.xmp",
        "IMG_1.xmp",
        "IMG_2.JPG",
        "IMG_2.JPG.XMP",
        "IMG_3.NEF",
        "IMG_3.jpg",
    }
    assert sorted(os.listdir(target)) == sorted(moved)
    assert sorted(os.listdir(shoot)) == sorted({*before} - moved | {"_rejected"})
    for name in moved:
        assert (target / name).read_bytes() == before[name]
    # The catalog followed: same ids at the new paths, decisions, scores and thumbnails kept.
    for name in ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.JPG", "IMG_3.NEF"):
        assert where(catalog, ids[name]) == target.resolve() / name
    assert where(catalog, ids["IMG_4.JPG"]) == shoot.resolve() / "IMG_4.JPG"
    assert catalog.decisions([ids["IMG_1.CR2"], ids["IMG_2.JPG"], ids["IMG_4.JPG"]]) == {
        ids["IMG_1.CR2"]: REJECT,
        ids["IMG_2.JPG"]: REJECT,
        ids["IMG_4.JPG"]: PICK,
    }
    target_id = catalog.folder_id(target.resolve(), create=False)
    assert target_id is not None
    rows, scores = catalog.rows([target_id], catalog.last_analysis([catalog.folder_id(shoot)]))
    assert sorted(r[2] for r in rows) == ["IMG_1.CR2", "IMG_1.JPG", "IMG_2.JPG", "IMG_3.NEF"]
    assert scores.of(ids["IMG_2.JPG"]) == pytest.approx(scores_before[1].of(ids["IMG_2.JPG"]))
    assert catalog.thumbnail(ids["IMG_1.CR2"]) == b"jpegIMG_1.CR2"
    # The folder's own (non-recursive) rows no longer hold them.
    own, _ = catalog.rows([catalog.folder_id(shoot)], None)
    assert sorted(r[2] for r in own) == ["IMG_4.JPG"]

    # A second run finds nothing more to move (the target is not part of the folder's tree).
    assert not plan_moves(catalog, shoot, recursive=True).frames

    undone = undo_last(catalog, shoot)
    assert undone.complete and undone.restored == 8
    assert snapshot(shoot) == before  # every byte back, under its old name; _rejected removed
    assert not target.exists()
    for name in ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.JPG", "IMG_3.NEF", "IMG_4.JPG"):
        assert where(catalog, ids[name]) == shoot.resolve() / name
    assert catalog.decisions([ids["IMG_1.CR2"]])[ids["IMG_1.CR2"]] == REJECT
    assert last_batch(catalog, shoot.resolve()) is None
    with pytest.raises(MoveError, match="no move of rejects to undo"):
        undo_last(catalog, shoot)


def test_a_pair_with_a_picked_or_starred_member_stays_and_is_reported(tmp_path, catalog):
    shoot = tmp_path / "shoot"
    make_shoot(
        catalog,
        shoot,
        {
            "IMG_5.CR2": REJECT,
            "IMG_5.JPG": PICK,
            "IMG_6.JPG": REJECT,
            "IMG_6.CR3": STARS3,
            "IMG_7.JPG": REJECT,
        },
    )
    plan = plan_moves(catalog, shoot)
    assert sorted(plan.held) == [
        "IMG_5.CR2 is rejected but IMG_5.JPG is picked: left in place",
        "IMG_6.JPG is rejected but IMG_6.CR3 has 3 stars: left in place",
    ]
    assert [fr.name for fr in plan.frames] == ["IMG_7.JPG"]
    execute(catalog, plan)
    assert sorted(os.listdir(shoot)) == ["IMG_5.CR2", "IMG_5.JPG", "IMG_6.CR3", "IMG_6.JPG", "_rejected"]


def test_collisions_in_the_target_give_the_whole_frame_a_new_stem_and_overwrite_nothing(tmp_path, catalog):
    shoot = tmp_path / "shoot"
    ids = make_shoot(
        catalog, shoot, {"IMG_1.CR2": REJECT, "IMG_1.JPG": REJECT, "IMG_1.CR2.xmp": 10, "IMG_1.xmp": 10}
    )
    target = shoot / "_rejected"
    target.mkdir()
    (target / "IMG_1.CR2").write_bytes(b"an earlier reject")  # taken on disk
    (target / "img_1 (2).jpg").write_bytes(b"another")  # taken, in another case
    before = snapshot(shoot)
    with catalog.transaction() as tx:  # the sidecar the catalog last saw beside IMG_1.CR2
        tx.set_sidecar_state(ids["IMG_1.CR2"], SidecarState("IMG_1.CR2.xmp", 1, 10))

    plan = plan_moves(catalog, shoot)
    assert [f.dst.name for f in plan.frames[0].files] == [
        "IMG_1 (3).CR2",
        "IMG_1 (3).JPG",
        "IMG_1 (3).CR2.xmp",
        "IMG_1 (3).xmp",
    ]
    assert any("IMG_1.CR2 becomes IMG_1 (3).CR2" in line for line in plan.lines())
    execute(catalog, plan)
    assert (target / "IMG_1.CR2").read_bytes() == b"an earlier reject"
    assert (target / "img_1 (2).jpg").read_bytes() == b"another"
    assert (target / "IMG_1 (3).CR2").read_bytes() == before["IMG_1.CR2"]
    assert (target / "IMG_1 (3).xmp").read_bytes() == before["IMG_1.xmp"]
    assert where(catalog, ids["IMG_1.JPG"]) == target.resolve() / "IMG_1 (3).JPG"
    with catalog.transaction() as tx:  # its recorded sidecar followed the rename
        assert tx.sidecar_states([ids["IMG_1.CR2"]])[ids["IMG_1.CR2"]] == SidecarState(
            "IMG_1 (3).CR2.xmp", 1, 10
        )

    # Meanwhile a new IMG_1.JPG appeared where the pair came from: undo never overwrites it either.
    (shoot / "IMG_1.JPG").write_bytes(b"new")
    undone = undo_last(catalog, shoot)
    assert undone.complete
    assert (shoot / "IMG_1.JPG").read_bytes() == b"new"
    assert (shoot / "IMG_1 (2).CR2").read_bytes() == before["IMG_1.CR2"]
    assert (shoot / "IMG_1 (2).JPG").read_bytes() == before["IMG_1.JPG"]
    assert (shoot / "IMG_1 (2).CR2.xmp").is_file()
    assert where(catalog, ids["IMG_1.CR2"]) == shoot.resolve() / "IMG_1 (2).CR2"
    assert any("came back as IMG_1 (2).CR2" in n for n in undone.notes)
    assert target.is_dir()  # it held files before: never removed


def test_recursive_mirrors_sub_folders_under_the_target(tmp_path, catalog):
    card = tmp_path / "DCIM"
    ids = make_shoot(
        catalog, card, {"100CANON/IMG_1.CR2": REJECT, "101CANON/IMG_1.CR2": REJECT, "IMG_9.JPG": REJECT}
    )
    plan = plan_moves(catalog, card, recursive=True)
    assert plan.files == 3
    execute(catalog, plan)
    rej = card.resolve() / "_rejected"
    assert where(catalog, ids["100CANON/IMG_1.CR2"]) == rej / "100CANON" / "IMG_1.CR2"
    assert where(catalog, ids["101CANON/IMG_1.CR2"]) == rej / "101CANON" / "IMG_1.CR2"
    assert where(catalog, ids["IMG_9.JPG"]) == rej / "IMG_9.JPG"
    assert not plan_moves(catalog, card, recursive=True).frames  # _rejected itself is never planned
    undo_last(catalog, card)
    assert not rej.exists()
    assert_catalog_agrees(catalog, ids)


def test_a_dry_plan_changes_nothing_and_bad_targets_are_refused(tmp_path, catalog):
    shoot = tmp_path / "shoot"
    ids = make_shoot(catalog, shoot, {"a.jpg": REJECT})
    before = snapshot(shoot)
    plan = plan_moves(catalog, shoot)
    assert plan.files == 1
    assert snapshot(shoot) == before and not (shoot / "_rejected").exists()
    assert where(catalog, ids["a.jpg"]) == shoot.resolve() / "a.jpg"
    assert not pending_batches(catalog, shoot.resolve()) and last_batch(catalog, shoot.resolve()) is None
    with pytest.raises(MoveError, match="must not be"):
        plan_moves(catalog, shoot, to=".")
    with pytest.raises(MoveError, match="is a file"):
        plan_moves(catalog, shoot, to="a.jpg")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(MoveError, match="not in the catalog"):
        plan_moves(catalog, tmp_path / "elsewhere")
    assert plan_moves(catalog, tmp_path).frames == [], "a parent of indexed folders plans nothing without -r"


def test_a_name_taken_meanwhile_fails_that_frame_alone_which_stays_whole(tmp_path, catalog):
    """A real failure of os.link (the target name became a folder after the plan was made): the
    frame's first file, already moved, goes back; the other frames move; the catalog agrees."""
    shoot = tmp_path / "shoot"
    ids = make_shoot(
        catalog, shoot, {"A.CR2": REJECT, "A.JPG": NONE, "A.CR2.xmp": 10, "B.JPG": REJECT, "C.JPG": REJECT}
    )
    before = snapshot(shoot)
    plan = plan_moves(catalog, shoot)
    (shoot / "_rejected" / "A.JPG").mkdir(parents=True)  # A.CR2 moves, then A.JPG cannot
    result = execute(catalog, plan)
    assert [fr.name for fr in result.moved] == ["B.JPG", "C.JPG"]
    assert len(result.failed) == 1 and result.failed[0].startswith("A.CR2: ")
    assert "the frame stays where it was" in result.failed[0]
    for name in ("A.CR2", "A.JPG", "A.CR2.xmp"):
        assert (shoot / name).read_bytes() == before[name]
    assert sorted(os.listdir(shoot / "_rejected")) == ["A.JPG", "B.JPG", "C.JPG"]
    assert where(catalog, ids["A.CR2"]) == shoot.resolve() / "A.CR2"
    assert where(catalog, ids["B.JPG"]) == shoot.resolve() / "_rejected" / "B.JPG"
    assert_catalog_agrees(catalog, ids)
    batch = last_batch(catalog, shoot.resolve())
    assert batch is not None and {f.src.name for f in batch.files} == {"B.JPG", "C.JPG"}


def test_a_really_full_disk_part_way_leaves_every_file_at_one_place(tmp_path, catalog):
    """The target is a real 1 MB tmpfs (another file system: files are copied, fsynced, unlinked);
    the second frame does not fit, so its first file comes back and the third frame still moves."""
    from tests.catalog.test_errors import small_disk

    shoot = tmp_path / "shoot"
    ids = make_shoot(
        catalog,
        shoot,
        {"A.JPG": REJECT, "B.CR2": REJECT, "B.JPG": NONE, "C.JPG": REJECT, "B.CR2.xmp": 10},
    )
    (shoot / "B.JPG").write_bytes(os.urandom(900_000))  # too big for what is left
    (shoot / "B.CR2").write_bytes(os.urandom(300_000))
    before = snapshot(shoot)
    with small_disk(tmp_path / "disk", 1) as disk:
        plan = plan_moves(catalog, shoot, to=disk / "rejects")
        result = execute(catalog, plan)
        assert [fr.name for fr in result.moved] == ["A.JPG", "C.JPG"]
        assert "No space left on device" in result.failed[0]
        assert snapshot(shoot) == {k: v for k, v in before.items() if k not in ("A.JPG", "C.JPG")}
        assert sorted(os.listdir(disk / "rejects")) == ["A.JPG", "C.JPG"]
        assert (disk / "rejects" / "A.JPG").read_bytes() == before["A.JPG"]
        assert where(catalog, ids["B.CR2"]) == shoot.resolve() / "B.CR2"
        assert where(catalog, ids["C.JPG"]) == disk.resolve() / "rejects" / "C.JPG"
        assert_catalog_agrees(catalog, ids)
        undone = undo_last(catalog, shoot)
        assert undone.complete
        assert snapshot(shoot) == before
        assert not (disk / "rejects").exists()


def test_a_failing_unlink_puts_the_new_copy_away(tmp_path, monkeypatch):
    """move_file: when the original cannot be removed, the file must not exist twice."""
    src, dst = tmp_path / "a.jpg", tmp_path / "b.jpg"
    src.write_bytes(b"x")

    real_unlink = os.remove  # the same function under another name, left alone

    def unlink(path, *args, **kwargs):
        if Path(path) == src:
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(PermissionError):
        move_file(src, dst)
    assert src.read_bytes() == b"x" and not dst.exists()
    dst.write_bytes(b"y")
    monkeypatch.undo()
    with pytest.raises(FileExistsError):
        move_file(src, dst)  # never replaces
    assert dst.read_bytes() == b"y"


def test_a_run_killed_between_moving_and_recording_is_repaired_by_the_next_run_and_by_undo(tmp_path, catalog):
    """What a kill leaves: the batch journalled, frame A wholly moved, frame B half moved (its CR2
    hard-linked but not yet unlinked: one file under both names), the records not yet updated."""
    shoot = (tmp_path / "shoot").resolve()
    ids = make_shoot(catalog, shoot, {"A.JPG": REJECT, "B.CR2": REJECT, "B.JPG": NONE, "C.JPG": REJECT})
    before = snapshot(shoot)
    plan = plan_moves(catalog, shoot)
    frames = [[(f.photo_id, f.src, f.dst) for f in fr.files] for fr in plan.frames]
    record_batch(catalog, shoot, plan.target, frames, made_dirs=[plan.target])
    plan.target.mkdir()
    move_file(shoot / "A.JPG", plan.target / "A.JPG")
    os.link(shoot / "B.CR2", plan.target / "B.CR2")
    assert len(pending_batches(catalog, shoot)) == 1

    # The next run settles it first: A completed (its record follows), B and C (never moved) put
    # back; then it plans and moves what is still rejected in the folder.
    notes = recover(catalog, shoot)
    assert notes == [
        f"an interrupted move of {shoot}'s rejects was repaired: 1 frame(s) completed, 2 put back"
    ]
    assert not pending_batches(catalog, shoot)
    assert sorted(os.listdir(shoot)) == ["B.CR2", "B.JPG", "C.JPG", "_rejected"]
    assert os.listdir(plan.target) == ["A.JPG"]
    assert_catalog_agrees(catalog, ids)
    result = execute(catalog, plan_moves(catalog, shoot))
    assert not result.failed and result.files == 3
    assert sorted(os.listdir(plan.target)) == ["A.JPG", "B.CR2", "B.JPG", "C.JPG"]
    assert_catalog_agrees(catalog, ids)
    assert where(catalog, ids["A.JPG"]) == plan.target / "A.JPG"
    # Undo puts back the last batch (B, C); A's completed batch is the one before it.
    undo_last(catalog, shoot)
    undo_last(catalog, shoot)
    assert snapshot(shoot) == before
    assert_catalog_agrees(catalog, ids)


def test_undo_repairs_an_interrupted_batch_before_putting_back(tmp_path, catalog):
    shoot = (tmp_path / "shoot").resolve()
    ids = make_shoot(catalog, shoot, {"A.JPG": REJECT, "B.JPG": REJECT})
    before = snapshot(shoot)
    plan = plan_moves(catalog, shoot)
    record_batch(
        catalog, shoot, plan.target, [[(f.photo_id, f.src, f.dst) for f in fr.files] for fr in plan.frames]
    )
    plan.target.mkdir()
    for fr in plan.frames:  # every file moved, the kill came before the catalog was told
        move_file(fr.files[0].src, fr.files[0].dst)
    undone = undo_last(catalog, shoot)
    assert undone.complete and undone.restored == 2
    assert snapshot(shoot) == before
    assert_catalog_agrees(catalog, ids)
    shutil.rmtree(plan.target, ignore_errors=True)


def test_records_an_index_run_followed_before_the_repair_go_back_with_their_files(tmp_path, catalog):
    """After a kill, `index` of the target found the half-moved frame's CR2 there and took its
    record over (fingerprint); the repair puts the file back, and the record with it."""
    shoot = (tmp_path / "shoot").resolve()
    ids = make_shoot(catalog, shoot, {"B.CR2": REJECT, "B.JPG": NONE})
    plan = plan_moves(catalog, shoot)
    record_batch(
        catalog, shoot, plan.target, [[(f.photo_id, f.src, f.dst) for f in fr.files] for fr in plan.frames]
    )
    plan.target.mkdir()
    move_file(shoot / "B.CR2", plan.target / "B.CR2")  # killed before B.JPG moved
    st = (plan.target / "B.CR2").stat()
    record = PhotoRecord(
        "B.CR2", st.st_size, st.st_mtime_ns, fingerprint=file_fingerprint(plan.target / "B.CR2")
    )
    analysis = catalog.analysis_id("tiny", "128")
    assert analysis is not None
    assert catalog.write_batch(catalog.folder_id(plan.target), analysis, [record]) == {"B.CR2": ids["B.CR2"]}
    assert where(catalog, ids["B.CR2"]) == plan.target / "B.CR2"

    recover(catalog, shoot)
    assert sorted(os.listdir(shoot)) == ["B.CR2", "B.JPG", "_rejected"]
    assert where(catalog, ids["B.CR2"]) == shoot / "B.CR2"
    assert catalog.decisions([ids["B.CR2"]])[ids["B.CR2"]] == REJECT
    assert_catalog_agrees(catalog, ids)


def test_a_partner_indexed_only_in_the_target_takes_its_record_back_on_undo(tmp_path, catalog):
    shoot = (tmp_path / "shoot").resolve()
    ids = make_shoot(catalog, shoot, {"IMG_3.NEF": REJECT, "IMG_3.jpg": None})
    execute(catalog, plan_moves(catalog, shoot))
    target = shoot / "_rejected"
    moved = target / "IMG_3.jpg"  # `index -r` of the shoot now finds the partner in _rejected
    st = moved.stat()
    analysis = catalog.analysis_id("tiny", "128")
    assert analysis is not None
    record = PhotoRecord("IMG_3.jpg", st.st_size, st.st_mtime_ns, fingerprint=file_fingerprint(moved))
    partner = catalog.write_batch(catalog.folder_id(target), analysis, [record])["IMG_3.jpg"]
    undo_last(catalog, shoot)
    assert where(catalog, partner) == shoot / "IMG_3.jpg"
    assert where(catalog, ids["IMG_3.NEF"]) == shoot / "IMG_3.NEF"


def test_undo_and_repair_refuse_while_the_target_drive_is_not_mounted(tmp_path, catalog):
    """--to on an external drive that is not mounted at undo time: the files are at neither place as
    far as the disk can tell, yet nothing is lost: undo and repair refuse (and change nothing) until
    the drive is back."""
    shoot, ext = tmp_path / "shoot", tmp_path / "ext"
    ids = make_shoot(catalog, shoot, {"IMG_1.CR2": REJECT, "IMG_2.JPG": REJECT, "IMG_3.JPG": REJECT})
    before = snapshot(shoot)
    execute(catalog, plan_moves(catalog, shoot, ext / "_rejected"))
    ext.rename(tmp_path / "unmounted")
    with pytest.raises(MoveError, match=r"_rejected is not there \(is its drive mounted\?\); nothing was"):
        undo_last(catalog, shoot)
    (tmp_path / "unmounted").rename(ext)
    undone = undo_last(catalog, shoot)
    assert undone.complete and undone.restored == 3
    assert snapshot(shoot) == before
    assert_catalog_agrees(catalog, ids)

    # A run killed after IMG_1 moved; the drive is gone when the next run wants to repair it.
    plan = plan_moves(catalog, shoot, ext / "_rejected")
    record_batch(
        catalog,
        shoot.resolve(),
        plan.target,
        [[(f.photo_id, f.src, f.dst) for f in fr.files] for fr in plan.frames],
    )
    plan.target.mkdir(parents=True, exist_ok=True)
    move_file(shoot / "IMG_1.CR2", plan.target / "IMG_1.CR2")
    ext.rename(tmp_path / "unmounted")
    with pytest.raises(MoveError, match=r"cannot be repaired now: .*_rejected is not there"):
        recover(catalog, shoot)
    with pytest.raises(MoveError, match="cannot be repaired now"):
        execute(catalog, plan_moves(catalog, shoot))
    assert len(pending_batches(catalog, shoot.resolve())) == 1  # the journal is kept
    (tmp_path / "unmounted").rename(ext)
    recover(catalog, shoot)
    assert where(catalog, ids["IMG_1.CR2"]) == plan.target / "IMG_1.CR2"
    assert_catalog_agrees(catalog, ids)


def test_a_file_removed_from_both_places_is_lost_not_completed(tmp_path, catalog):
    shoot = (tmp_path / "shoot").resolve()
    make_shoot(catalog, shoot, {"A.JPG": REJECT, "B.JPG": REJECT})
    plan = plan_moves(catalog, shoot)
    record_batch(
        catalog, shoot, plan.target, [[(f.photo_id, f.src, f.dst) for f in fr.files] for fr in plan.frames]
    )
    plan.target.mkdir()
    move_file(shoot / "A.JPG", plan.target / "A.JPG")
    (shoot / "B.JPG").unlink()  # deleted by hand after the kill
    notes = recover(catalog, shoot)
    assert "B.JPG is neither in" in notes[0]
    assert notes[-1].endswith("1 frame(s) completed, 0 put back")


KILL_DURING_MOVE = """
import os, shutil, sys
from pathlib import Path
from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.culling.move_rejects import execute, plan_moves
db, shoot, to, when = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), Path(sys.argv[3]), sys.argv[4]
catalog = Catalog(db)
plan = plan_moves(catalog, shoot, to)
if when == "copying":  # killed with 1000 bytes of the first file copied
    def copy(fin, fout, length=0):
        fout.write(fin.read(1000))
        fout.flush()
        os._exit(9)
    shutil.copyfileobj = copy
else:  # killed with the first file wholly copied, the original not yet removed
    real_unlink = os.unlink
    def unlink(path, *args, **kwargs):
        if Path(path).parent == shoot:
            os._exit(9)
        real_unlink(path, *args, **kwargs)
    os.unlink = unlink
execute(catalog, plan)
"""


@pytest.mark.parametrize("when", ["copying", "copied"])
def test_a_kill_during_a_copy_to_another_drive_leaves_no_file_twice(tmp_path, catalog, when):
    """A real process, killed (os._exit) while it copies A.JPG to another file system (a tmpfs) or
    just after: the repair leaves no partial or second copy under A.JPG's name in the target."""
    import subprocess
    import sys

    from tests.catalog.test_errors import small_disk

    shoot = (tmp_path / "shoot").resolve()
    ids = make_shoot(catalog, shoot, {"A.JPG": REJECT, "B.CR2": REJECT, "B.JPG": NONE})
    (shoot / "A.JPG").write_bytes(os.urandom(5000))
    before = snapshot(shoot)
    with small_disk(tmp_path / "disk", 1) as disk:
        to = disk / "rejects"
        args = [sys.executable, "-c", KILL_DURING_MOVE, str(catalog.path), str(shoot), str(to), when]
        done = subprocess.run(args, cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=60)
        assert done.returncode == 9, done.stderr
        recover(catalog, shoot)
        if when == "copying":
            assert snapshot(shoot) == before
            assert not to.exists()  # the temporary went, then the empty folder the run made
        else:
            assert os.listdir(to) == ["A.JPG"]
            assert (to / "A.JPG").read_bytes() == before["A.JPG"]
            assert snapshot(shoot) == {k: v for k, v in before.items() if k != "A.JPG"}
        assert_catalog_agrees(catalog, ids)
        assert not pending_batches(catalog, shoot)


def test_a_frame_decided_otherwise_after_the_plan_stays(tmp_path, catalog):
    """While the confirmation waits, another process (`rate`) un-rejects one photo and picks the
    partner of another: those frames stay, reported; the rest moves."""
    shoot = (tmp_path / "shoot").resolve()
    ids = make_shoot(
        catalog,
        shoot,
        {"A.JPG": REJECT, "B.CR2": REJECT, "B.JPG": NONE, "C.JPG": REJECT, "D.JPG": REJECT, "D.CR2": NONE},
    )
    plan = plan_moves(catalog, shoot)
    assert [fr.name for fr in plan.frames] == ["A.JPG", "B.CR2", "C.JPG", "D.CR2"]
    other = Catalog(catalog.path)
    try:
        other.set_decisions({ids["A.JPG"]: NONE, ids["B.JPG"]: PICK, ids["D.CR2"]: STARS3})
    finally:
        other.close()
    result = execute(catalog, plan)
    assert [fr.name for fr in result.moved] == ["C.JPG"]
    assert result.held == [
        "A.JPG is no longer rejected: left in place",
        "B.CR2 is rejected but B.JPG is picked: left in place",
        "D.JPG is rejected but D.CR2 has 3 stars: left in place",
    ]
    assert not result.failed
    assert sorted(os.listdir(shoot)) == ["A.JPG", "B.CR2", "B.JPG", "D.CR2", "D.JPG", "_rejected"]
    assert os.listdir(plan.target) == ["C.JPG"]
    assert_catalog_agrees(catalog, ids)
    batch = last_batch(catalog, shoot)
    assert batch is not None and [f.src.name for f in batch.files] == ["C.JPG"]


def test_an_index_and_a_move_never_run_at_the_same_time(tmp_path, catalog, tiny_scorer, make_jpeg):
    """The moves lock: an index run (any process) is refused while files move, and a move (or its
    repair) is refused while an index runs; each with a message, nothing changed."""
    from clipiqa_desktop.catalog.moves import MovesBusy, moves_lock
    from clipiqa_desktop.indexing.pipeline import IndexingError, index_folder

    shoot = (tmp_path / "shoot").resolve()
    make_shoot(catalog, shoot, {"A.JPG": REJECT})
    make_jpeg("shoot/B.jpg")
    plan = plan_moves(catalog, shoot)
    with moves_lock(catalog), pytest.raises(IndexingError, match="rejects are being moved"):
        index_folder(catalog, tiny_scorer, shoot)
    with moves_lock(catalog, shared=True):  # what index_folder holds while it runs
        with pytest.raises(MovesBusy, match="or an index is running"):
            execute(catalog, plan)
        with pytest.raises(MovesBusy):
            undo_last(catalog, shoot)
    assert (shoot / "A.JPG").is_file() and not plan.target.exists()
    assert index_folder(catalog, tiny_scorer, shoot).indexed == 1  # the lock is free again
