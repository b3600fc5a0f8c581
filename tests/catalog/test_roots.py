"""Folder roots per machine (catalog/roots.py): two "machines" (CLIPIQA_MACHINE=a / b) that see one
shared folder at two different local paths share one catalog.

The two local paths are two COPIES of the same files (same names, sizes, mtimes, content): the
catalog resolves paths, so a symlink would collapse both machines onto one real path and the tests
would pass without any translation at all. The two-machine tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from clipiqa_desktop.catalog import Catalog, CatalogError, Decision, PhotoRecord, file_fingerprint
from clipiqa_desktop.catalog import roots as rt
from clipiqa_desktop.catalog.roots import PathMap, RootNotMounted, RootsError

from ..conftest import photo


# --- the stored form and the map -----------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/mnt/shoots",
        "/shoots:/x",
        "C:\\Shoots",
        "C:/Shoots",
        "c:/x",
        "\\\\nas\\shoots",
        "//nas/shoots",
        "x.jpg",
    ],
)
def test_a_real_absolute_path_is_never_read_as_stored(path):
    assert not rt.is_stored(path)


@pytest.mark.parametrize("path", ["shoots:/", "shoots:/2026/wedding", "NAS-1:/a", "s2:/"])
def test_stored_paths(path):
    assert rt.is_stored(path)
    name, rel = rt.split_stored(path)
    assert rt.stored_path(name, rel) == path


@pytest.mark.parametrize("name", ["", "a", "C", "x/y", "a:b", "-x", "a b", "x\\y", "n" * 65])
def test_bad_root_names_are_refused_with_the_rule(name):
    problem = rt.name_problem(name)
    assert problem is not None and "2 to 64 letters" in problem


def test_path_map_translates_on_component_boundaries_longest_mount_first():
    m = PathMap({"shoots": "/mnt/shoots", "archive": "/mnt/shoots/archive"}, known={"other"})
    assert m.to_stored("/mnt/shoots") == "shoots:/"
    assert m.to_stored("/mnt/shoots/2026/wedding") == "shoots:/2026/wedding"
    assert m.to_stored("/mnt/shoots/archive/2019") == "archive:/2019", "the deepest mount wins"
    assert m.to_stored("/mnt/shootsX/2026") == "/mnt/shootsX/2026", "not a component boundary"
    assert m.to_stored("/home/me/photos") == "/home/me/photos", "outside every root: as it was"
    assert m.to_local("shoots:/2026/wedding") == "/mnt/shoots/2026/wedding"
    assert m.to_local("shoots:/") == "/mnt/shoots"
    assert m.to_local("/home/me/photos") == "/home/me/photos"
    assert m.unmounted == {"other"}
    assert m.local_or_none("other:/2026") is None
    with pytest.raises(RootNotMounted) as err:
        m.to_local("other:/2026")
    assert isinstance(err.value, CatalogError)
    assert "root 'other' is not mounted on this machine" in str(err.value)
    assert "clipiqa-desktop roots add other PATH" in str(err.value)
    assert m.mounts_inside("/mnt") == [("shoots", "/mnt/shoots"), ("archive", "/mnt/shoots/archive")]
    assert m.mounts_inside("/mnt/shoots") == [("archive", "/mnt/shoots/archive")]


def test_machine_name_from_the_environment(monkeypatch):
    monkeypatch.setenv(rt.MACHINE_ENV, "edit-2")
    assert rt.machine_name() == "edit-2"
    monkeypatch.setenv(rt.MACHINE_ENV, "EDIT-PC")  # Windows reports host names in capitals
    assert rt.machine_name() == "edit-pc"
    monkeypatch.delenv(rt.MACHINE_ENV)
    assert rt.machine_name()  # the host name


# --- two machines, one catalog ---------------------------------------------------------------------
NAMES = ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"]


@pytest.fixture
def studio(tmp_path, monkeypatch, catalog_address):
    """/volA/shoots (machine a) and /mntB/shoots (machine b): copies of one NAS folder; the
    catalog's address (an SQLite file, or a PostgreSQL database)."""
    a = tmp_path / "volA" / "shoots"
    (a / "2026" / "wedding").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        photo(64, 48, seed=i).save(a / "2026" / "wedding" / name)
    b = tmp_path / "mntB" / "shoots"
    b.parent.mkdir()
    shutil.copytree(a, b)  # copy2: same mtimes, so an index on b finds everything unchanged
    monkeypatch.setenv(rt.MACHINE_ENV, "a")
    return a.resolve(), b.resolve(), catalog_address


def _index(catalog: Catalog, folder: Path) -> dict[str, int]:
    """What the indexer writes for a folder's photos (real fingerprints), without a model."""
    records = []
    for f in sorted(folder.iterdir()):
        st = f.stat()
        records.append(PhotoRecord(f.name, st.st_size, st.st_mtime_ns, fingerprint=file_fingerprint(f)))
    fid = catalog.folder_id(folder)
    assert fid is not None
    return catalog.write_batch(fid, catalog.analysis_id("m", "128", 4, 100.0) or 0, records)


def _open(path: Path | str, machine: str, monkeypatch) -> Catalog:
    monkeypatch.setenv(rt.MACHINE_ENV, machine)
    return Catalog(path)


def _add(catalog: Catalog, name: str, path: Path) -> rt.AddResult:
    with catalog.transaction() as tx:
        result = rt.add_mount(tx.conn, name, rt.machine_name(), str(path))
    catalog.reload_roots()
    return result


def _query(db: Path | str, sql: str) -> list[tuple]:
    """Rows of `sql` on the catalog at `db`, read by a Catalog of its own (either backend)."""
    cat = Catalog(db)
    try:
        with cat.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        cat.close()


def _folder_paths(db: Path | str) -> list[str]:
    return sorted(p for (p,) in _query(db, "SELECT path FROM folders"))


pytestmark = pytest.mark.both_backends  # the tests with a catalog: the others take no catalog_address


def test_index_on_a_open_on_b_same_photos_and_decisions(studio, monkeypatch):
    a, b, db = studio
    cat_a = _open(db, "a", monkeypatch)
    _add(cat_a, "shoots", a)
    ids = _index(cat_a, a / "2026" / "wedding")
    cat_a.set_decisions({ids["IMG_1.jpg"]: Decision(rating=-1)})
    assert _folder_paths(db) == ["shoots:/2026/wedding"], "stored by the root's name, not a's path"
    cat_a.close()

    cat_b = _open(db, "b", monkeypatch)
    _add(cat_b, "shoots", b)
    wedding = b / "2026" / "wedding"
    fid = cat_b.folder_id(wedding, create=False)
    assert fid is not None
    rows, _ = cat_b.rows([fid], None)
    assert [r[1] for r in rows] == [str(wedding)] * 3, "b sees its own path"
    assert [r[2] for r in rows] == NAMES
    assert cat_b.photo_ids_for_paths([wedding / "IMG_1.jpg"]) == {wedding / "IMG_1.jpg": ids["IMG_1.jpg"]}
    assert cat_b.decisions([ids["IMG_1.jpg"]])[ids["IMG_1.jpg"]].rating == -1
    states = cat_b.photo_states(cat_b.folder_ids(b, recursive=True), None, root=b)
    assert sorted(states) == [f"2026/wedding/{n}" for n in NAMES], "keys relative to b's root: no re-index"
    # a tree above the mount holds the root's folders (the indexer of b's /mntB sees them)
    assert cat_b.folder_ids(b.parent, recursive=True) == [fid]
    # rows asked relative to a folder outside the mount name the photos by b's absolute paths
    rows, _ = cat_b.rows([fid], None, root=b.parent.parent / "elsewhere")
    assert rows[0][2] == f"{wedding}/IMG_0.jpg".replace("\\", "/")
    assert [p for _, p in cat_b.folders()] == [wedding]
    assert cat_b.photo_scores([ids["IMG_0.jpg"]])[0].path == wedding / "IMG_0.jpg"
    # writing through b (an index of b's copy) keeps one folder row and one record per photo
    again = _index(cat_b, wedding)
    assert again == ids
    assert _folder_paths(db) == ["shoots:/2026/wedding"]
    cat_b.close()


def test_a_folder_of_a_root_not_mounted_here_is_refused_not_indexed_again(studio, monkeypatch):
    a, b, db = studio
    cat_a = _open(db, "a", monkeypatch)
    _add(cat_a, "shoots", a)
    ids = _index(cat_a, a / "2026" / "wedding")
    cat_a.close()

    cat_b = _open(db, "b", monkeypatch)
    wedding = b / "2026" / "wedding"
    for folder in (wedding, b, b / "2026"):  # the folder, its mount, or between them
        with pytest.raises(RootNotMounted) as err:
            cat_b.folder_id(folder)
        message = str(err.value)
        assert "root 'shoots' is not mounted on this machine (b)" in message
        assert f"clipiqa-desktop roots add shoots {b} --catalog {db}" in message, message
        assert str(cat_b.unmounted_root(folder)) == message
    assert cat_b.folder_id(wedding, create=False) is None
    assert _folder_paths(db) == ["shoots:/2026/wedding"], "no folder row made for b's copy"
    # a folder that only shares the names (other photos) is an ordinary new folder
    other = b.parent / "other" / "2026" / "wedding"
    other.mkdir(parents=True)
    for i, name in enumerate(NAMES):
        photo(64, 48, seed=10 + i).save(other / name)
    assert cat_b.unmounted_root(other) is None
    assert cat_b.folder_id(other) is not None
    # the record of a photo under the unmounted root is never taken over by a copy elsewhere
    # (its folder is not "there without the file": it is not here at all) nor marked missing
    copy = b.parent / "copy"
    copy.mkdir()
    shutil.copy2(wedding / "IMG_2.jpg", copy / "IMG_2.jpg")
    new = _index(cat_b, copy)
    assert new["IMG_2.jpg"] != ids["IMG_2.jpg"]
    assert _query(db, "SELECT count(*) FROM photos WHERE status != 'ok'") == [(0,)]
    # a photo of the root, read on b: says so, never a traceback or a bogus path
    (found,) = cat_b.photo_scores([ids["IMG_0.jpg"]])
    assert found.status == "unmounted"
    cat_b.close()


def test_the_window_session_says_the_root_is_not_mounted(studio, monkeypatch):
    from clipiqa_desktop.culling.session import CullingSession

    a, b, db = studio
    cat_a = _open(db, "a", monkeypatch)
    _add(cat_a, "shoots", a)
    _index(cat_a, a / "2026" / "wedding")
    cat_a.close()
    cat_b = _open(db, "b", monkeypatch)
    with pytest.raises(CatalogError, match="roots add shoots"):
        CullingSession(cat_b, b / "2026" / "wedding")
    _add(cat_b, "shoots", b)
    session = CullingSession(cat_b, b / "2026" / "wedding")
    assert len(session.table.ids) == 3
    session.close()
    cat_b.close()


def test_add_converts_a_solo_catalog_and_merges_another_machines_rows(studio, monkeypatch):
    a, b, db = studio
    # both machines indexed the share by their own paths before it was mapped
    cat_a = _open(db, "a", monkeypatch)
    ids_a = _index(cat_a, a / "2026" / "wedding")
    cat_a.set_decisions({ids_a["IMG_0.jpg"]: Decision(rating=3)})
    cat_b = _open(db, "b", monkeypatch)
    ids_b = _index(cat_b, b / "2026" / "wedding")
    assert set(ids_a.values()).isdisjoint(ids_b.values())
    cat_b.set_decisions({ids_b["IMG_0.jpg"]: Decision(rating=-1), ids_b["IMG_1.jpg"]: Decision(picked=True)})
    cat_a.set_decisions({ids_a["IMG_2.jpg"]: Decision(label="Red")})
    # b's decision on IMG_0 is later than a's; a's on IMG_2 is the only one
    monkeypatch.setenv(rt.MACHINE_ENV, "a")
    assert _add(cat_a, "shoots", a) == rt.AddResult(converted=1, merged=0, replaced=None)
    assert _folder_paths(db) == [str(b / "2026" / "wedding"), "shoots:/2026/wedding"]
    monkeypatch.setenv(rt.MACHINE_ENV, "b")
    before_merge = cat_a.decision_seq()
    assert _add(cat_b, "shoots", b) == rt.AddResult(converted=1, merged=1, replaced=None)
    assert _folder_paths(db) == ["shoots:/2026/wedding"]
    fid = cat_b.folder_id(b / "2026" / "wedding", create=False)
    assert fid is not None
    # a window open on the root's folder sees the decisions the merge brought, at its next poll
    _seq, changed = cat_a.decision_changes([fid], before_merge)
    assert set(changed) == {ids_a["IMG_0.jpg"], ids_a["IMG_1.jpg"]}
    assert changed[ids_a["IMG_0.jpg"]].rating == -1
    rows, _ = cat_b.rows([fid], None)
    assert [r[2] for r in rows] == NAMES, "one record per photo"
    assert [r[0] for r in rows] == [ids_a[n] for n in NAMES], "the root's records are kept"
    decided = cat_b.decisions([ids_a[n] for n in NAMES])
    assert decided[ids_a["IMG_0.jpg"]].rating == -1, "the later decision wins"
    assert decided[ids_a["IMG_1.jpg"]].picked, "a decision only b made comes along"
    assert decided[ids_a["IMG_2.jpg"]].label == "Red"
    assert _query(db, "SELECT count(*) FROM photos") == [(3,)]
    assert _query(db, "SELECT count(*) FROM decisions") == [(3,)]
    cat_a.close()
    cat_b.close()


def test_add_refuses_nested_or_duplicate_mounts_and_changes_nothing(studio, monkeypatch):
    a, _b, db = studio
    cat = _open(db, "a", monkeypatch)
    _index(cat, a / "2026" / "wedding")
    _add(cat, "shoots", a)
    for name, path, why in (
        ("inner", a / "2026", "is inside root 'shoots'"),
        ("outer", a.parent, "holds root 'shoots'"),
        ("again", a, "is already root 'shoots'"),
        ("x", a, "cannot name a root"),
        ("a/b", a, "cannot name a root"),
    ):
        with pytest.raises(RootsError, match=why):
            _add(cat, name, path)
    assert _query(db, "SELECT root, machine FROM root_mounts") == [("shoots", "a")]
    assert _folder_paths(db) == ["shoots:/2026/wedding"]
    # the same name again at another path: the mount moved (rows are the root's already)
    moved = a.parent / "moved"
    a.rename(moved)
    assert _add(cat, "shoots", moved).replaced == str(a)
    assert cat.folder_id(moved / "2026" / "wedding", create=False) is not None
    cat.close()


def test_remove_keeps_a_shared_root_and_turns_the_last_mount_back_into_local_paths(studio, monkeypatch):
    a, b, db = studio
    cat_a = _open(db, "a", monkeypatch)
    _add(cat_a, "shoots", a)
    ids = _index(cat_a, a / "2026" / "wedding")
    cat_b = _open(db, "b", monkeypatch)
    _add(cat_b, "shoots", b)
    with cat_b.transaction() as tx:
        assert rt.remove_mount(tx.conn, "shoots", "b") == rt.RemoveResult(0, ["a"])
    cat_b.reload_roots()
    assert _folder_paths(db) == ["shoots:/2026/wedding"], "a still mounts it"
    assert cat_b.unmounted_root(b / "2026" / "wedding") is not None
    with cat_b.transaction() as tx, pytest.raises(RootsError, match="not mounted on b; it is mounted on a"):
        rt.remove_mount(tx.conn, "shoots", "b")
    monkeypatch.setenv(rt.MACHINE_ENV, "a")
    with cat_a.transaction() as tx:
        assert rt.remove_mount(tx.conn, "shoots", "a") == rt.RemoveResult(1, [])
    cat_a.reload_roots()
    assert _folder_paths(db) == [str(a / "2026" / "wedding")], "a solo catalog again"
    assert (
        cat_a.photo_ids_for_paths([a / "2026" / "wedding" / "IMG_0.jpg"])[
            a / "2026" / "wedding" / "IMG_0.jpg"
        ]
        == ids["IMG_0.jpg"]
    )
    cat_a.close()
    cat_b.close()


def test_a_root_mounted_below_the_listed_folder_is_named_relative_like_its_neighbours(studio, monkeypatch):
    a, _b, db = studio
    cat = _open(db, "a", monkeypatch)
    try:
        ids = _index(cat, a / "2026" / "wedding")
        _add(cat, "shoots", a)
        local = a.parent / "local"
        local.mkdir()
        photo(64, 48, seed=9).save(local / "B.jpg")
        other = _index(cat, local)
        folders = [cat.folder_id(a / "2026" / "wedding", create=False), cat.folder_id(local, create=False)]
        assert None not in folders
        rows, _ = cat.rows(folders, None, root=a.parent)  # type: ignore[arg-type]
        names = {int(r[0]): r[2] for r in rows}
        assert names[ids["IMG_0.jpg"]] == "shoots/2026/wedding/IMG_0.jpg"
        assert names[other["B.jpg"]] == "local/B.jpg"
        states = cat.photo_states(folders, None, root=a.parent)  # type: ignore[arg-type]
        assert set(states) == set(names.values()), "the window's rows and the indexer's keys agree"
        group = cat.group_inputs(folders, None, root=a.parent)  # type: ignore[arg-type]
        assert sorted(group.names) == sorted(names.values())
    finally:
        cat.close()
