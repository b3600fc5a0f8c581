"""`clipiqa-desktop evaluate FOLDER` on a real catalog file: the table, --json, and exit status 2
with one line for what cannot be evaluated. The shoot is tests/culling/test_evaluate.py's (counts
known exactly)."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing

import pytest

from clipiqa_desktop.catalog import Catalog, Decision
from clipiqa_desktop.cli import main

from .culling.test_evaluate import culled_shoot


@pytest.fixture
def shoot(tmp_path):
    """(folder, --catalog args, photo ids) of the culled shoot."""
    folder, path = tmp_path / "shoot", tmp_path / "c.sqlite"
    cat = Catalog(path)
    ids = culled_shoot(cat, folder)
    cat.close()
    return folder, ["--catalog", str(path)], ids


def _row(out: str, start: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith(start))
    return [cell for cell in line[len(start) :].split("  ") if cell.strip()]


def test_the_table_shows_each_preset_and_the_best_thresholds(shoot, capsys):
    folder, cat, _ = shoot
    assert main(["evaluate", str(folder), *cat]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.startswith(
        f"{folder}: 10 rejected, 20 kept (picked or at least 1 star); 5 unrated photos left out\n"
        "--unrated-keepers counts the unrated photos as keepers\n"
    )
    assert "not in this catalog: Face focus, Crushed shadows" in out
    # caught, recall, flagged keepers, false-alarm rate, precision, not measured, rule
    assert [c.strip() for c in _row(out, "Out of focus")] == [
        "5 of 9",
        "56 %",
        "1 of 20",
        "5 %",
        "83 %",
        "1",
        "Focus ≤ 0.30",
    ]
    assert [c.strip() for c in _row(out, "Reject candidates")][:5] == [
        "8 of 9",
        "89 %",
        "2 of 20",
        "10 %",
        "80 %",
    ]
    eyes = [c.strip() for c in _row(out, "Eyes closed   ")]  # the preset; the attribute row comes later
    assert (
        eyes[:5] == ["1 of 2", "–", "0 of 6", "–", "–"] and eyes[-1] == "Eyes closed ≥ 1 (too few measured)"
    )
    assert "no Face focus in this catalog" in _row(out, "Face out of focus")[-1]
    # attribute, now: rule recall precision, best: rule recall precision F1, not measured
    focus = [c.strip() for c in _row(out, "Focus ")]
    assert focus == ["≤ 0.30", "56 %", "83 %", "≤ 0.35", "67 %", "86 %", "0.75", "1"]
    blown = [c.strip() for c in _row(out.split("\nattribute ")[1], "Blown highlights ")]
    assert blown[-1] == "flags every photo: tells nothing apart"
    assert captured.err == ""


def test_json_has_the_same_numbers(shoot, capsys):
    folder, cat, _ = shoot
    assert main(["evaluate", str(folder), *cat, "--json", "--unrated-keepers"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["folder"], data["rejects"], data["keepers"], data["undecided"]) == (str(folder), 10, 25, 0)
    focus = next(p for p in data["presets"] if p["preset"] == "Out of focus")
    assert (focus["caught"], focus["rejects"], focus["false_alarms"], focus["keepers"]) == (5, 9, 6, 25)
    assert data["keepers_are"] == "every photo not rejected" and data["problem"] is None


def test_what_cannot_be_evaluated_exits_2_with_one_line(shoot, tmp_path, capsys):
    folder, cat, ids = shoot
    (tmp_path / "other").mkdir()
    cases = [
        (["evaluate", str(tmp_path / "nowhere"), *cat], "does not exist"),
        (["evaluate", str(tmp_path / "other"), *cat], "is not in the catalog"),
        (["evaluate", str(folder), "--catalog", str(tmp_path / "none.sqlite")], "none.sqlite"),
    ]
    for args, expected in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err

    # only the rejects marked: too few keepers, and the way out
    with closing(Catalog(cat[1])) as c:
        c.set_decisions({pid: Decision() for name, pid in ids.items() if name.startswith("k")})
    assert main(["evaluate", str(folder), *cat]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"clipiqa-desktop: {folder}: too few decisions to measure anything: 10 rejected and 0 kept "
        "(picked or at least 1 star); at least 5 of each are needed; 25 photos are unrated: "
        "--unrated-keepers counts them as keepers\n"
    )
    assert main(["evaluate", str(folder), *cat, "--unrated-keepers", "--json"]) == 0

    # nothing culled at all
    with closing(Catalog(cat[1])) as c:
        c.set_decisions({pid: Decision() for pid in ids.values()})
    assert main(["evaluate", str(folder), *cat]) == 2
    assert "0 rejected and 0 kept" in capsys.readouterr().err


def test_help_says_nothing_leaves_the_machine_and_no_model_is_loaded(shoot, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "nothing leaves this machine" in text and "--unrated-keepers" in text
    folder, cat, _ = shoot
    code = (
        "import sys\n"
        "from clipiqa_desktop.cli import main\n"
        f"rc = main(['evaluate', {str(folder)!r}, *{cat!r}])\n"
        "print('rc', rc, sorted(m for m in ('torch', 'open_clip', 'PySide6') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines()[-1] == "rc 0 []", proc.stderr
