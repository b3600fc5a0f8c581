"""`clipiqa-desktop learn FOLDER` on a real catalog file (tests/culling/test_taste.py's shoots: a
hidden rule decides keep/reject): the report, the ranking, --json, --save for `list --sort taste`,
and exit status 2 with one line when there is too little to learn from."""

from __future__ import annotations

import json
from contextlib import closing

import pytest

from clipiqa_desktop.catalog import Catalog, Decision
from clipiqa_desktop.cli import COMMANDS, main

from .culling.test_taste import taste_shoot


@pytest.fixture
def shoot(tmp_path):
    """(folder, --catalog args, name → id, name → hidden label): 100 decided, 30 undecided."""
    folder, path = tmp_path / "shoot", tmp_path / "c.sqlite"
    with closing(Catalog(path)) as cat:
        ids, truth = taste_shoot(cat, folder, n=130, decided=100)
    return folder, ["--catalog", str(path)], ids, truth


def test_the_report_and_the_undecided_ranked_by_keep_probability(shoot, capsys):
    folder, cat, _, truth = shoot
    assert "learn" in COMMANDS
    assert main(["learn", str(folder), *cat, "--top", "5"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.startswith(f"{folder}: learnt from 100 decisions: ")
    assert "(this shoot " in out and "other shoots 0 + 0)" in out
    assert "cross-validated accuracy " in out and " over 5 folds" in out
    assert "; always-" in out and "ROC AUC" in out
    assert "does not beat" not in out
    assert "5 of 30 undecided photos, most likely keeps first:" in out
    table = out.split("most likely keeps first:\n")[1].splitlines()
    assert table[0].split() == ["rank", "keep", "path"] and len(table) == 6
    probabilities = [float(line.split()[1]) for line in table[1:]]
    assert probabilities == sorted(probabilities, reverse=True)
    names = [line.split()[2].split("/")[-1] for line in table[1:]]
    assert all(int(name[1:4]) >= 100 for name in names)  # only undecided photos
    assert sum(truth[name] for name in names) >= 4  # the top of the ranking are keeps by the hidden rule
    assert captured.err == ""


def test_json_and_save_make_list_sort_by_taste(shoot, capsys):
    folder, cat, ids, _ = shoot
    assert main(["learn", str(folder), *cat, "--json", "--top", "0", "--save"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["decisions"]["keeps"] + data["decisions"]["rejects"] == 100
    assert data["accuracy"] > data["baseline"] and data["folds"] == 5 and data["problem"] is None
    assert data["undecided"] == 30 and data["saved"] == 30 and len(data["photos"]) == 30
    assert "stored as the attribute 'taste' of 30 undecided photos" in captured.err
    best = data["photos"][0]

    assert main(["list", str(folder), *cat, "--sort", "taste", "--desc", "--format", "json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed[0]["path"] == best["path"]
    assert sum(1 for row in listed if row["scores"]["taste"] is not None) == 30

    # decide one more photo and save again: it loses its stale taste value
    with closing(Catalog(cat[1])) as c:
        c.set_decisions({ids["p100.jpg"]: Decision(-1)})
    assert main(["learn", str(folder), *cat, "--save", "--top", "1"]) == 0
    assert "of 29 undecided photos" in capsys.readouterr().out
    assert main(["list", str(folder), *cat, "--where", "taste>=0", "--format", "json"]) == 0
    paths = [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]
    assert len(paths) == 29 and not any(p.endswith("p100.jpg") for p in paths)

    # undecide until too few: --save refuses and says the stored snapshot is left as it was
    with closing(Catalog(cat[1])) as c:
        c.set_decisions({ids[f"p{i:03d}.jpg"]: Decision() for i in range(60)})
    assert main(["learn", str(folder), *cat, "--save"]) == 2
    err = capsys.readouterr().err
    assert "too few decisions" in err and "nothing saved" in err and "left as they are" in err


def test_too_few_decisions_exit_2_with_one_line_saying_how_many(tmp_path, capsys):
    folder, path = tmp_path / "shoot", tmp_path / "c.sqlite"
    with closing(Catalog(path)) as cat:
        taste_shoot(cat, folder, n=60, decided=30)
    assert main(["learn", str(folder), "--catalog", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"clipiqa-desktop: {folder}: too few decisions to learn your taste from: ")
    assert "at least 50 in all and 10 of each are needed" in err and "rate" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["learn", str(tmp_path / "nowhere"), "--catalog", str(path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_says_what_it_learns_from_and_that_nothing_leaves_the_machine(capsys):
    with pytest.raises(SystemExit):
        main(["learn", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "nothing leaves this machine" in text and "--this-shoot-only" in text and "--save" in text
    assert "at least 50 decisions" in text and "list ~/shoots/wedding --sort taste" in text
