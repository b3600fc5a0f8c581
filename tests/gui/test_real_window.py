"""The real app in a real X window (Xvfb, xcb platform), driven from outside with xdotool.

Skipped where Xvfb or xdotool is missing; `.ci/run` installs both (Debian packages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import app_command, photo, query_readonly

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs Debian's xvfb and xdotool (installed by .ci/run)",
)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def xserver(tmp_path):
    for n in range(120, 160):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    proc = subprocess.Popen(
        ["Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait(lambda: Path(f"/tmp/.X11-unix/X{n}").exists(), 10, "Xvfb")
    yield f":{n}"
    proc.terminate()
    proc.wait(10)


def test_real_window_indexes_and_takes_keys_from_outside(tmp_path, xserver):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(6):
        photo(320, 240, seed=i).save(folder / f"IMG_{i:04d}.jpg")
    db = tmp_path / "catalog.sqlite"
    env = {
        **os.environ,
        "DISPLAY": xserver,
        "QT_QPA_PLATFORM": "xcb",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    cmd = [*app_command(str(folder), catalog=db), "--size", "128"]
    app = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(
            lambda: query_readonly(db, "SELECT COUNT(DISTINCT photo_id) FROM scores") == [(6,)],
            90,
            "indexing",
        )
        wid = subprocess.run(
            ["xdotool", "search", "--sync", "--name", "shoot — clipiqa-desktop"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split()[0]
        time.sleep(1.0)  # let the window finish applying the last batch
        subprocess.run(["xdotool", "windowfocus", "--sync", wid], env=env, check=True, timeout=30)
        subprocess.run(["xdotool", "key", "--delay", "50", "x"], env=env, check=True, timeout=30)
        rejected = "SELECT p.name FROM decisions d JOIN photos p ON p.id = d.photo_id WHERE d.rating = -1"
        _wait(
            lambda: query_readonly(db, rejected) == [("IMG_0000.jpg",)],
            20,
            "the X key to reject the first photo",
        )
        subprocess.run(["xdotool", "key", "ctrl+z"], env=env, check=True, timeout=30)
        _wait(lambda: query_readonly(db, rejected) == [], 20, "Ctrl+Z to undo")
        subprocess.run(["xdotool", "key", "ctrl+q"], env=env, check=True, timeout=30)
        assert app.wait(30) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        stderr = app.stderr.read() if app.stderr else ""
        if app.stderr:
            app.stderr.close()
    assert "Traceback" not in stderr, stderr
