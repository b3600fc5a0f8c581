"""`index`, `list`, `rate`, `export` in-process, as a photographer would use them."""

from __future__ import annotations

import csv
import io
import json

import pytest

from clipiqa_desktop.cli import main

from .conftest import TINY_ARGS as MODEL
from .conftest import photo


@pytest.fixture
def env(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(5):
        photo(200, 150, seed=i).save(folder / f"IMG_{i}.jpg")
    (folder / "IMG_9.jpg").write_bytes(b"\xff\xd8\xff truncated")
    return folder, ["--catalog", str(tmp_path / "c.sqlite")]


def _json(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_index_then_list_rate_export(env, capsys, tmp_path):
    folder, cat = env
    assert main(["index", str(folder), *cat, *MODEL, "--size", "128"]) == 1  # one bad file
    err = capsys.readouterr().err
    assert "indexed 5, unchanged 0, failed 1" in err and "failed: IMG_9.jpg: " in err

    assert main(["index", str(folder), *cat, *MODEL, "--size", "128"]) == 1, "IMG_9 still cannot be read"
    assert "indexed 0, unchanged 6 (1 of them still failing" in capsys.readouterr().err

    assert main(["list", str(folder), *cat, "--format", "json", "--sort", "sharpness"]) == 0
    rows = _json(capsys.readouterr().out)
    assert len(rows) == 6
    sharp = [r["scores"]["sharpness"] for r in rows if r["status"] == "ok"]
    assert sharp == sorted(sharp)
    assert rows[-1]["status"] == "error" and rows[-1]["error"]
    assert {"path", "scores", "rating", "label", "status", "picked"} <= set(rows[0])
    assert rows[0]["size"] == "128" and rows[0]["model"] == "tiny-rn/none"

    first = rows[0]["path"]
    assert main(["rate", first, *cat, "--reject"]) == 0
    assert main(["rate", str(folder / "IMG_1.jpg"), str(folder / "IMG_2.jpg"), *cat, "--stars", "4"]) == 0
    assert main(["rate", str(folder / "IMG_2.jpg"), *cat, "--label", "green"]) == 0
    capsys.readouterr()

    assert main(["list", str(folder), *cat, "--format", "json", "--where", "rating<0"]) == 0
    rejected = _json(capsys.readouterr().out)
    assert [r["path"] for r in rejected] == [first] and rejected[0]["rating"] == -1

    assert main(["list", str(folder), *cat, "--where", "rating>=4", "--where", "label=Green"]) == 0
    out = capsys.readouterr().out
    assert "IMG_2.jpg" in out and "IMG_1.jpg" not in out

    out_csv = tmp_path / "decisions.csv"
    assert main(["export", str(folder), *cat, "--csv", str(out_csv)]) == 0
    table = {r["path"].rsplit("/", 1)[-1]: r for r in csv.DictReader(io.StringIO(out_csv.read_text()))}
    assert table["IMG_1.jpg"]["rating"] == "4" and table["IMG_2.jpg"]["label"] == "Green"
    assert float(table["IMG_3.jpg"]["quality"]) > 0 and table["IMG_9.jpg"]["status"] == "error"


def test_custom_prompt_rescoring_from_stored_embeddings(env, capsys, monkeypatch):
    folder, cat = env
    main(["index", str(folder), *cat, *MODEL, "--size", "128"])
    capsys.readouterr()
    import clipiqa_desktop.indexing.pipeline as pipeline_mod
    import clipiqa_desktop.indexing.stream as stream_mod

    def no_decoding(*a, **k):
        raise AssertionError("rescoring must not decode images")

    monkeypatch.setattr(stream_mod, "decode_photo", no_decoding)
    monkeypatch.setattr(pipeline_mod, "decode_photo", no_decoding)
    args = ["list", str(folder), *cat, *MODEL, "--format", "json", "--size", "128"]
    assert main([*args, "--prompt", "eyes=Eyes closed.:Eyes open.", "--save-prompt", "--sort", "eyes"]) == 0
    rows = [r for r in _json(capsys.readouterr().out) if r["status"] == "ok"]
    values = [r["scores"]["eyes"] for r in rows]
    assert len(values) == 5 and values == sorted(values) and all(0 < v < 1 for v in values)

    # stored in the catalog: the next list shows it without --prompt and without loading the model
    import clipiqa_desktop.scoring.engine as engine_mod

    monkeypatch.setattr(engine_mod, "load_clip", lambda spec: pytest.fail("the model must not be loaded"))
    assert main(["list", str(folder), *cat, "--format", "json", "--where", "eyes>0"]) == 0
    again = {r["path"]: r["scores"]["eyes"] for r in _json(capsys.readouterr().out)}
    assert sorted(again.values()) == pytest.approx(values, abs=1e-6)


def test_list_and_export_explain_missing_scores(env, capsys, tmp_path):
    folder, cat = env
    assert main(["list", str(folder), *cat]) == 2
    assert "there is no catalog at" in capsys.readouterr().err
    assert not (tmp_path / "c.sqlite").exists(), "a mistyped --catalog must not leave an empty file"
    (tmp_path / "other").mkdir()
    main(["index", str(tmp_path / "other"), *cat, *MODEL])
    capsys.readouterr()
    assert main(["list", str(folder), *cat]) == 2
    assert "not in the catalog" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), *cat, "--xmp"]) == 2
    err = capsys.readouterr().err
    assert "nope does not exist" in err and "index" not in err, "a typo is not told to get indexed"
    main(["index", str(folder), *cat, *MODEL, "--size", "128"])
    capsys.readouterr()
    assert main(["list", str(folder), *cat, *MODEL, "--size", "512"]) == 2
    assert "no scores for tiny-rn/none at size 512" in capsys.readouterr().err
    assert main(["export", str(folder), *cat, "--csv", str(tmp_path / "no" / "such" / "dir.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_bad_arguments(env, capsys):
    folder, cat = env
    assert main(["index", str(folder / "nope"), *cat, *MODEL]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["rate", str(folder / "IMG_0.jpg"), *cat, "--stars", "7"])
    assert "stars must be 0..5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["rate", str(folder / "IMG_0.jpg"), *cat, "--reject", "--pick"])
    capsys.readouterr()
    assert main(["rate", str(folder / "IMG_0.jpg"), *cat, "--pick"]) == 2
    assert "there is no catalog" in capsys.readouterr().err
    main(["index", str(folder), *cat, *MODEL, "--size", "128"])
    capsys.readouterr()
    assert main(["rate", str(folder), str(folder / "nothere.jpg"), *cat, "--pick"]) == 2
    err = capsys.readouterr().err
    assert "is a folder; rate takes photo files" in err and "nothere.jpg: no such file" in err
    assert main(["list", str(folder), *cat, "--where", "blur<0.3"]) == 2
    assert "unknown field 'blur'" in capsys.readouterr().err


def test_window_without_a_display_explains_instead_of_crashing(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    cases = [(env, "no display found"), ({**env, "DISPLAY": ":987"}, "cannot connect to the X display :987")]
    for case_env, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "clipiqa_desktop", str(tmp_path)],
            env=case_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert message in proc.stderr and "headless commands" in proc.stderr
        assert "Traceback" not in proc.stderr
