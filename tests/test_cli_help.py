"""The command line as a new user meets it: typos, --help, bad --prompt pairs, JSON lines, --weights."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from clipiqa_desktop.cli import COMMANDS, main
from clipiqa_desktop.commands import listing, score
from clipiqa_desktop.measures.photo import measurable_keys
from clipiqa_desktop.measures.registry import PIXEL_KEYS
from clipiqa_desktop.scoring import DEFAULT_ATTRIBUTES

from .conftest import TINY_ARGS, photo

MODEL_OPTIONS = ("--model", "--pretrained", "--weights", "--device", "--precision", "--engine", "--size")


def _no_display_env() -> dict[str, str]:
    """An environment in which the window cannot open: reaching it says 'no display found'."""
    drop = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clipiqa_desktop", *args],
        cwd=cwd,
        env=env or _no_display_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- a mistyped command --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        (["idnex", "photos"], "index"),
        (["lsit", "photos"], "list"),
        (["--catalog", "c.sqlite", "sore", "a"], "score"),
    ],
)
def test_a_mistyped_command_is_named_with_the_likely_one_not_the_window(tmp_path, args, meant):
    (tmp_path / "photos").mkdir()
    proc = _run(*args, cwd=tmp_path)
    typo = next(a for a in args if a in ("idnex", "lsit", "sore"))
    assert proc.returncode == 2
    assert f"unknown command '{typo}' — did you mean '{meant}'?" in proc.stderr
    assert "display" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "c.sqlite").exists()


def test_a_word_that_is_neither_a_command_nor_a_folder_is_refused(tmp_path):
    proc = _run("wedding", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        "'wedding' is neither a command (index, list, rate, export, score, move-rejects, evaluate, "
        "search, groups, learn, roots) nor an existing folder" in proc.stderr
    )
    proc = _run("./shoots/wedding", cwd=tmp_path)
    assert proc.returncode == 2 and "./shoots/wedding: no such folder" in proc.stderr


def test_an_existing_folder_still_opens_the_window_even_when_named_like_a_typo(tmp_path):
    (tmp_path / "idnex").mkdir()  # a folder the user really has
    proc = _run("idnex", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no display found" in proc.stderr, "the window path was taken (and explains the display)"
    assert "unknown command" not in proc.stderr


def test_help_as_a_word_shows_the_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["help", "rate"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: clipiqa-desktop rate")
    with pytest.raises(SystemExit) as exit_info:
        main(["help"])
    assert exit_info.value.code == 0 and "COMMAND" in capsys.readouterr().out


# --- --help ------------------------------------------------------------------------------------------------


def _help(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _sections(text: str) -> dict[str, str]:
    """Help text by heading ('options', 'catalog', 'model', 'examples', ...)."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z][a-z ]*):(.*)", line)
        if m and not line.startswith(" "):
            current = m.group(1)
            sections[current] = [m.group(2)]
        else:
            sections[current].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def _options(section: str) -> set[str]:
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", section, flags=re.MULTILINE))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples_and_exit_status(capsys, command):
    sections = _sections(_help(capsys, command))
    assert f"clipiqa-desktop {command} " in sections["examples"]
    codes = re.findall(r"\b(\d+) ", sections["exit status"])
    assert "0" in codes and "2" in codes, sections["exit status"]


def test_top_level_help_has_examples_and_exit_status(capsys):
    sections = _sections(_help(capsys))
    assert "exit status" in sections and "clipiqa-desktop index" in sections["examples"]
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\w", sections["positional arguments"], re.MULTILINE), command


@pytest.mark.parametrize(
    ("command", "wanted"),
    [
        ("index", {"--catalog", *MODEL_OPTIONS}),
        # list/export show stored scores; a new --prompt loads the model (which, on what device) to encode
        # its texts. --precision and --engine only change the image tower, so they are not offered.
        ("list", {"--catalog", "--model", "--pretrained", "--weights", "--size", "--device"}),
        ("export", {"--catalog", "--model", "--pretrained", "--weights", "--size", "--device"}),
        ("rate", {"--catalog"}),  # never loads a model
        ("score", set(MODEL_OPTIONS)),  # never opens the catalog
    ],
)
def test_help_shows_only_the_catalog_and_model_options_a_command_uses(capsys, command, wanted):
    sections = _sections(_help(capsys, command))
    shown = set().union(*(_options(s) for s in sections.values()))
    assert shown & {"--catalog", *MODEL_OPTIONS} == wanted
    if "--catalog" in wanted:
        assert _options(sections["catalog"]) == {"--catalog"}, "--catalog under its own heading"
    model_heading = "model" if command in ("index", "score") else "which scores"
    assert _options(sections.get(model_heading, "")) == wanted - {"--catalog"}


def test_options_a_command_does_not_use_are_refused(tmp_path, capsys):
    for args in (
        ["rate", "a.jpg", "--pick", "--weights", "x.pt"],
        ["score", "--catalog", "c.sqlite", "a.jpg"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_attributes_help_lists_every_valid_name(capsys):
    text = " ".join(_help(capsys, "score").split())  # undo the line wrapping
    pixels = re.search(r"--attributes KEYS comma-separated, from the pixel measures ([a-z_, ]+) \(", text)
    pairs = re.search(r" and the CLIP-IQA pairs ([a-z, ]+); or 'all'", text)
    assert pixels is not None and pairs is not None, text
    assert pixels.group(1).split(", ") == list(PIXEL_KEYS)
    assert pairs.group(1).split(", ") == list(DEFAULT_ATTRIBUTES)


def test_verbose_is_accepted_after_the_command_name_too(tmp_path, capsys):
    photo(64, 48).save(tmp_path / "a.png")
    assert main(["score", "-v", *TINY_ARGS, "--format", "json", str(tmp_path / "a.png")]) == 0
    assert json.loads(capsys.readouterr().out)["error"] is None


# --- --prompt ----------------------------------------------------------------------------------------------


@pytest.fixture
def indexed(tmp_path, capsys):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(3):
        photo(160, 120, seed=i).save(folder / f"IMG_{i}.jpg")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2024:06:01 10:11:12"  # DateTimeOriginal
    photo(160, 120, seed=7).save(folder / "IMG_7.jpg", exif=exif)
    (folder / "IMG_9.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    cat = ["--catalog", str(tmp_path / "c.sqlite")]
    assert main(["index", str(folder), *cat, *TINY_ARGS, "--size", "128"]) == 1  # IMG_9 fails
    capsys.readouterr()
    return folder, cat


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a:b:c", "has 2 ':' but needs exactly one"),
        (":Eyes open.", "empty positive text"),
        ("Eyes closed.:", "empty negative text"),
        ("quality=Crisp photo.:Soft photo.", "prompt key 'quality' is already a built-in attribute"),
    ],
)
def test_a_malformed_prompt_is_refused_by_score_and_list(indexed, capsys, prompt, message):
    folder, cat = indexed
    assert main(["score", *TINY_ARGS, "--prompt", prompt, str(folder / "IMG_0.jpg")]) == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""
    assert main(["list", str(folder), *cat, "--prompt", prompt, "--save-prompt"]) == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""
    assert main(["list", str(folder), *cat, "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    measured = {k for k in measurable_keys() if k not in ("face_focus", "eyes_closed")}
    assert set(rows[0]["scores"]) == set(DEFAULT_ATTRIBUTES) | measured, "the refused prompt saved nothing"


def test_two_prompts_with_one_key_are_refused_by_list(indexed, capsys):
    folder, cat = indexed
    args = ["--prompt", "Eyes closed.:Eyes open.", "--prompt", "Eyes closed!:Eyes wide open."]
    assert main(["list", str(folder), *cat, *TINY_ARGS[:-2], *args]) == 2
    assert "two --prompt pairs have the key custom_eyes_closed" in capsys.readouterr().err


# --- JSON lines --------------------------------------------------------------------------------------------


def test_score_json_lines_always_carry_every_key(tmp_path, capsys):
    photo(96, 64).save(tmp_path / "good.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg at all")
    paths = [str(tmp_path / n) for n in ("good.jpg", "bad.jpg", "missing.jpg")]
    assert main(["score", *TINY_ARGS, "--format", "json", "--attributes", "quality", *paths]) == 1
    rows = {Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {"good.jpg", "bad.jpg", "missing.jpg"}
    for row in rows.values():
        assert list(row) == list(score.JSON_KEYS)
    good, bad, missing = rows["good.jpg"], rows["bad.jpg"], rows["missing.jpg"]
    assert set(good["scores"]) == {"quality"} and good["error"] is None and good["model"] == "tiny-rn/none"
    assert bad["scores"] is None and bad["error"] and bad["model"] == "tiny-rn/none"
    assert missing["scores"] is None and missing["error"] == "file not found"

    # no photo readable: no model was loaded, so model and size are unknown (null), still present
    assert main(["score", *TINY_ARGS, "--format", "json", str(tmp_path / "gone.jpg")]) == 1
    (only,) = map(json.loads, capsys.readouterr().out.splitlines())
    assert list(only) == list(score.JSON_KEYS) and only["model"] is None and only["size"] is None


def test_list_json_lines_always_carry_every_key(indexed, capsys):
    folder, cat = indexed
    assert main(["rate", str(folder / "IMG_1.jpg"), *cat, "--label", "red"]) == 0
    (folder / "IMG_2.jpg").unlink()
    assert main(["index", str(folder), *cat, *TINY_ARGS, "--size", "128"]) == 1  # IMG_2 now missing
    capsys.readouterr()
    assert main(["list", str(folder), *cat, "--format", "json"]) == 0
    rows = {Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {"IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg", "IMG_7.jpg", "IMG_9.jpg"}
    for row in rows.values():
        assert list(row) == list(listing.JSON_KEYS)
        assert row["model"] == "tiny-rn/none" and row["size"] == "128"
    ok, labelled, dated, failed = rows["IMG_0.jpg"], rows["IMG_1.jpg"], rows["IMG_7.jpg"], rows["IMG_9.jpg"]
    assert ok["error"] is None and ok["captured_at"] is None and ok["label"] is None
    # every CLIP-IQA score, and every pixel measure that applies (no face here: no face_focus)
    measured = {k for k in measurable_keys() if k not in ("face_focus", "eyes_closed")}
    assert set(ok["scores"]) == set(DEFAULT_ATTRIBUTES) | measured
    assert all(0 < ok["scores"][k] < 1 for k in DEFAULT_ATTRIBUTES)
    assert all(ok["scores"][k] is not None for k in measured)
    assert labelled["label"] == "Red"
    assert dated["captured_at"].startswith("2024-06-01T10:11:12")
    assert failed["status"] == "error" and failed["error"] and failed["scores"] is None
    assert rows["IMG_2.jpg"]["status"] == "missing"


# --- --weights: said at once, before torch is imported -------------------------------------------------


def _main_in_fresh_python(args: list[str], env: dict[str, str] | None = None) -> tuple[str, str]:
    code = (
        "import sys\n"
        "from clipiqa_desktop.cli import main\n"
        "try:\n"
        f"    status = main({args!r})\n"
        "except SystemExit as exit:\n"
        "    status = exit.code\n"
        "print('exit', status, 'torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env or dict(os.environ)
    )
    return proc.stdout.strip(), proc.stderr


def test_a_missing_weights_file_is_reported_before_torch_is_imported(tmp_path):
    photo(64, 48).save(tmp_path / "a.jpg")
    missing = str(tmp_path / "models" / "RN50.pt")
    for command in (["score", str(tmp_path / "a.jpg")], ["index", str(tmp_path)], ["list", str(tmp_path)]):
        out, err = _main_in_fresh_python([*command, "--weights", missing])
        assert out == "exit 2 False False", err
        assert f"weights file {missing} does not exist" in err and "Traceback" not in err
    out, err = _main_in_fresh_python(["score", str(tmp_path / "a.jpg"), "--weights", str(tmp_path)])
    assert out == "exit 2 False False" and "is a folder; give the weights file itself" in err
    out, err = _main_in_fresh_python(["score", str(tmp_path / "a.jpg"), "--model", str(tmp_path / "my.json")])
    assert out == "exit 2 False False" and "model config" in err and "does not exist" in err


def test_a_missing_weights_file_named_by_the_environment_is_reported_at_once(tmp_path):
    photo(64, 48).save(tmp_path / "a.jpg")
    missing = str(tmp_path / "RN50.pt")
    env = {**os.environ, "CLIPIQA_WEIGHTS": missing}
    out, err = _main_in_fresh_python(["score", str(tmp_path / "a.jpg")], env)
    assert out == "exit 2 False False", err
    assert f"weights file {missing} does not exist (named by $CLIPIQA_WEIGHTS)" in err
    out, err = _main_in_fresh_python(["index", str(tmp_path), "--catalog", str(tmp_path / "c.sqlite")], env)
    assert out == "exit 2 False False", err
    assert not (tmp_path / "c.sqlite").exists()
