"""`clipiqa-desktop score`, run in-process as a user would run it."""

from __future__ import annotations

import csv
import io
import json

import pytest

from clipiqa_desktop.cli import main
from clipiqa_desktop.measures.photo import measurable_keys

from .conftest import TINY_ARGS as TINY
from .conftest import photo


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(5):
        photo(300 if i % 2 else 200, 200 if i % 2 else 300, seed=i).save(
            folder / f"IMG_{i:04d}.JPG", quality=90
        )
    data = (folder / "IMG_0000.JPG").read_bytes()
    (folder / "IMG_0099.JPG").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not a photo")
    (folder / "._IMG_0000.JPG").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    return folder


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_output_one_object_per_photo_and_errors_reported(shoot, capsys):
    code = main(["score", *TINY, "--format", "json", "--attributes", "quality,sharpness", str(shoot)])
    out, err = capsys.readouterr()
    rows = _json_lines(out)
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == [f"IMG_{i:04d}.JPG" for i in (0, 1, 2, 3, 4, 99)]
    for r in rows[:5]:
        assert set(r["scores"]) == {"quality", "sharpness"}
        assert all(0.0 <= v <= 1.0 for v in r["scores"].values())
        assert r["size"] == "512" and r["error"] is None
    failed = rows[5]
    assert (failed["path"], failed["scores"], failed["model"]) == (
        str(shoot / "IMG_0099.JPG"),
        None,
        "tiny-rn/none",
    )
    assert "truncated" in failed["error"] and set(failed) == set(rows[0])
    assert code == 1, "a failed photo makes the exit status non-zero"
    assert "5 photo(s)" in err and "1 failed" in err and "skipped 2 non-photo" in err


def test_all_good_exits_zero_and_prints_a_table(shoot, capsys):
    (shoot / "IMG_0099.JPG").unlink()
    code = main(["score", *TINY, "--size", "224", str(shoot / "IMG_0001.JPG"), str(shoot / "IMG_0002.JPG")])
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert code == 0
    # the pixel measures first (no CLIP model needed for them), then the twelve CLIP-IQA pairs
    assert lines[0].split() == [
        *measurable_keys(),
        "quality",
        "brightness",
        "sharpness",
        "noisiness",
        "colorfulness",
        "contrast",
        "aesthetic",
        "happy",
        "natural",
        "new",
        "scary",
        "complex",
        "path",
    ]
    assert len(lines) == 3 and lines[1].endswith("IMG_0001.JPG")


def test_custom_prompt_and_csv(shoot, capsys):
    code = main(
        [
            "score",
            *TINY,
            "--format",
            "csv",
            "--attributes",
            "quality",
            "--prompt",
            "Eyes closed.:Eyes open.",
            "--prompt",
            "smile=Smiling person.:Serious person.",
            str(shoot / "IMG_0003.JPG"),
            str(shoot / "missing.jpg"),
        ]
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code == 1
    assert list(rows[0]) == ["path", "quality", "custom_eyes_closed", "smile", "error"]
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert by_name["missing.jpg"]["error"] == "file not found"
    assert 0 < float(by_name["IMG_0003.JPG"]["custom_eyes_closed"]) < 1


def test_scores_do_not_depend_on_batch_size_or_order(shoot, capsys):
    args = ["score", *TINY, "--format", "json", "--size", "256", str(shoot)]
    main([*args, "--batch-size", "1"])
    one = {r["path"]: r.get("scores") for r in _json_lines(capsys.readouterr().out)}
    main([*args, "--batch-size", "4", "--workers", "3"])
    four = {r["path"]: r.get("scores") for r in _json_lines(capsys.readouterr().out)}
    assert one.keys() == four.keys()
    for path, scores in one.items():
        if scores is None:
            assert four[path] is None
            continue
        for key, value in scores.items():
            assert four[path][key] == pytest.approx(value, abs=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attributes", "blurriness"], "unknown attribute 'blurriness'"),
        (["--prompt", "no separator here"], "positive:negative"),
        (["--model", "RN5O"], "unknown model 'RN5O'"),
    ],
)
def test_bad_arguments_get_a_message_and_exit_2(shoot, capsys, args, message):
    base = ["score", "--pretrained", "none", "--device", "cpu"]
    code = main([*base, *args, str(shoot)])
    _, err = capsys.readouterr()
    assert code == 2 and message in err


def test_bad_size_and_empty_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--size", "huge", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "'huge' is not a pixel count" in capsys.readouterr().err
    assert main(["score", *TINY, str(tmp_path)]) == 2
    assert "no photos found" in capsys.readouterr().err


def test_recursive_finds_photos_in_subfolders(tmp_path, capsys):
    (tmp_path / "day1").mkdir()
    photo(64, 64).save(tmp_path / "day1" / "a.png")
    assert main(["score", *TINY, "--format", "json", str(tmp_path)]) == 2  # nothing at the top level
    capsys.readouterr()
    assert main(["score", *TINY, "--format", "json", "-r", str(tmp_path)]) == 0
    assert len(_json_lines(capsys.readouterr().out)) == 1


def test_rows_come_in_input_order_with_missing_and_empty_files_in_place(shoot, tmp_path, capsys):
    (shoot / "empty.jpg").write_bytes(b"")
    given = [shoot / "IMG_0003.JPG", tmp_path / "gone.jpg", shoot / "empty.jpg", shoot / "IMG_0001.JPG"]
    code = main(["score", *TINY, "--format", "json", "--attributes", "quality", *map(str, given)])
    rows = _json_lines(capsys.readouterr().out)
    assert code == 1
    assert [r["path"] for r in rows] == [str(p) for p in given]
    assert [r["error"] for r in rows] == [None, "file not found", "empty file (0 bytes)", None]


def _terminal_screen(raw: str) -> list[str]:
    """What a terminal shows for `raw`: \\r returns to column 0, ESC[K erases to the end of the line."""
    lines: list[str] = []
    line: list[str] = []
    col, i = 0, 0
    while i < len(raw):
        if raw.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        ch = raw[i]
        if ch == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    if line:
        lines.append("".join(line))
    return lines


def test_the_progress_line_never_ends_up_inside_the_table(shoot):
    """stdout and stderr on one terminal, as a user runs it: the table must read clean."""
    import os
    import pty
    import subprocess
    import sys

    (shoot / "IMG_0099.JPG").unlink()
    for i in range(5, 14):  # enough photos for the progress line to be drawn between rows
        photo(160, 120, seed=i).save(shoot / f"IMG_{i:04d}.JPG")
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "clipiqa_desktop", "score", *TINY, "--attributes", "quality,sharpness"]
    proc = subprocess.Popen([*cmd, "--batch-size", "1", str(shoot)], stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    raw = b"".join(chunks).decode("utf-8")
    assert "scoring " in raw, "the progress line was drawn (stderr is a terminal)"
    screen = [line for line in _terminal_screen(raw) if line.strip()]
    table = [line for line in screen if "IMG_" in line or line.split()[:1] == ["quality"]]
    assert table[0].split() == ["quality", "sharpness", "path"]
    assert [line.rsplit("/", 1)[-1] for line in table[1:]] == [f"IMG_{i:04d}.JPG" for i in range(14)]
    for line in table[1:]:
        assert len(line.split()) == 3 and "scoring" not in line and "photos/s" not in line, line
    assert not any("photos/s" in line for line in screen), "the finished progress line was cleared"
