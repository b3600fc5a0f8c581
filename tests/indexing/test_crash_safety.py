"""SIGKILL the real indexer at random moments, again and again: nothing decided is lost, the catalog
stays sound, and the next run completes without redoing committed work.

The moments come from a seeded RNG (a new seed each run; CLIPIQA_KILL_SEED=N repeats one), and every
failure message starts with the seed and the log of kills.
"""

from __future__ import annotations

import sys

import pytest

from clipiqa_desktop.measures.photo import measurable_keys
from clipiqa_desktop.scoring.attributes import DEFAULT_ATTRIBUTES

from ..kills import NO_CATALOG, kill_in_migration, kill_loop, make_card, seed_from_env

N_PHOTOS = 40
# what a photo indexed to the end has: every CLIP-IQA score and every pixel measure that applies
COMPLETE = set(DEFAULT_ATTRIBUTES) | {k for k in measurable_keys() if k not in ("face_focus", "eyes_closed")}


def _complete(scores: dict[str, float | None]) -> bool:
    return {k for k, v in scores.items() if v is not None} >= COMPLETE


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc/PID/maps are Linux")


def test_repeated_sigkill_loses_no_decision_and_resumes(tmp_path):
    card = tmp_path / "card"
    make_card(card, N_PHOTOS)
    db = tmp_path / "catalog.sqlite"
    loop = kill_loop(card, db, seed_from_env())
    why = loop.describe()

    assert len(loop.kills) >= 5, why
    phases = {k.phase for k in loop.kills}
    assert {"model load", "indexing"} <= phases, why
    assert all(k.integrity in ("ok", NO_CATALOG) for k in loop.kills), why
    assert len(loop.expected) >= 3, why  # decisions were made between the kills

    # The final run completes, and resumes: what earlier runs committed for its analysis is kept.
    assert loop.final_rc == 0, f"{why}\n{loop.final_stderr}"
    assert "Traceback" not in loop.final_stderr, why
    assert loop.final_unchanged == loop.final_committed_for_size, f"{why}\n{loop.final_stderr}"
    assert loop.final_integrity == "ok", why
    listed = {row["path"]: row for row in loop.listed}
    assert len(listed) == N_PHOTOS, why
    assert all(row["status"] == "ok" and _complete(row["scores"]) for row in listed.values()), why
    assert not loop.decision_mismatches, why + "\n" + "\n".join(loop.decision_mismatches)
    print(why)  # shown with -s / -rP: the moments of this run


def test_sigkill_during_catalog_migration_keeps_the_old_catalog(tmp_path):
    from clipiqa_desktop.catalog.schema import SCHEMA_VERSION

    if SCHEMA_VERSION < 2:
        pytest.skip("the catalog has a single schema version: there is no migration to interrupt yet")
    card = tmp_path / "card"
    make_card(card, 8)
    result = kill_in_migration(card, tmp_path, seed_from_env())
    why = result.describe()

    assert result.landed, "no kill landed inside the migration: " + why
    # Killed mid-migration: the old catalog is intact, at its old version, with all its rows.
    assert result.integrity_after_kill == "ok", why
    assert result.version_after_kill == 1, why
    # The next run migrates and indexes; nothing of the old catalog is lost.
    assert result.final_rc == 0, f"{why}\n{result.final_stderr}"
    assert result.final_version == SCHEMA_VERSION, why
    assert result.final_integrity == "ok", why
    assert result.archive_after == result.archive_before, why
    assert len(result.listed) == 8 and all(r["status"] == "ok" for r in result.listed), why
    assert not result.decision_mismatches, why + "\n" + "\n".join(result.decision_mismatches)
    print(why)
