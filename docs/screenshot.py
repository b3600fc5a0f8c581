"""Render the real window under Xvfb to docs/screenshot.png (and docs/screenshot-loupe.png, and
docs/screenshot-peaking.png: the loupe with focus peaking on a shallow-depth-of-field frame, and
docs/screenshot-compare.png: 2-up compare at 100 % of a sharp frame and its blurred twin, and
docs/screenshot-stacks.png: bursts stacked with one opened, an exposure bracket kept whole).

    .venv/bin/python docs/screenshot.py            # needs Debian's xvfb (and the Qt xcb libraries)

Builds a small demo shoot from scikit-image's sample photographs (pip install '.[bench]'; synthetic
images otherwise) with blurred, dark and noisy variants, indexes it with the window's own background
worker, sorts by focus, makes a few decisions, and grabs the screen. The model is the tiny random
test network unless --model/--pretrained say otherwise, so the scores shown are not meaningful; the
screenshot is about what the window looks like.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

HERE = Path(__file__).resolve().parent
TINY = HERE.parent / "tests" / "data" / "tiny-rn.json"


def demo_photos() -> list[Image.Image]:
    try:
        from skimage import data

        sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]
    except ImportError:
        rng = np.random.default_rng(0)
        sources = [(rng.random((400, 600, 3)) * 255).astype(np.uint8) for _ in range(5)]
    out = []
    for src in sources:
        img = Image.fromarray(src).convert("RGB")
        img = img.resize((900, round(900 * img.height / img.width)), Image.Resampling.BICUBIC)
        out += [
            img,
            img.filter(ImageFilter.GaussianBlur(6)),
            ImageEnhance.Brightness(img).enhance(0.25),
            Image.fromarray(
                np.clip(
                    np.asarray(img) + np.random.default_rng(1).normal(0, 40, np.asarray(img).shape), 0, 255
                ).astype(np.uint8)
            ),
        ]
    return out


SHALLOW = "DSC_4731.JPG"  # the frame the focus-peaking screenshot shows


def shallow_depth_of_field() -> Image.Image | None:
    """scikit-image's coffee cup kept sharp inside an ellipse, the table around it blurred σ 8 px
    (feathered), as a wide aperture would: focus peaking marks the cup, not the table."""
    try:
        from skimage import data
    except ImportError:
        return None
    from PIL import ImageDraw

    img = Image.fromarray(data.coffee()).convert("RGB").resize((900, 600), Image.Resampling.BICUBIC)
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).ellipse((170, 40, 730, 560), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(20))
    return Image.composite(img, img.filter(ImageFilter.GaussianBlur(8)), mask)


def start_xvfb(size: str = "1600x1000x24") -> subprocess.Popen[bytes] | None:
    """Start Xvfb on a free display unless a display is already set; sets DISPLAY."""
    if os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") == "xcb":
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        sys.exit("Xvfb is not installed (Debian: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 ...)")
    for n in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists():
            proc = subprocess.Popen(
                [xvfb, f":{n}", "-screen", "0", size, "-nolisten", "tcp"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(100):
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    break
                time.sleep(0.05)
            os.environ["DISPLAY"] = f":{n}"
            os.environ["QT_QPA_PLATFORM"] = "xcb"
            return proc
    sys.exit("no free X display number found")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(TINY))
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--out", default=str(HERE / "screenshot.png"))
    args = ap.parse_args()
    xvfb = start_xvfb()
    try:
        return shoot(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


def shoot(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from clipiqa_desktop.catalog import Catalog
    from clipiqa_desktop.culling.decisions import DecisionChange
    from clipiqa_desktop.gui.main_window import MainWindow
    from clipiqa_desktop.gui.settings import AppSettings

    tmp = Path(tempfile.mkdtemp(prefix="clipiqa-shot-"))
    folder = tmp / "Wedding-2026-06-20"
    folder.mkdir()
    for i, img in enumerate(demo_photos()):
        img.save(folder / f"DSC_{4711 + i:04d}.JPG", quality=90)
    (folder / "DSC_9999.JPG").write_bytes(b"\xff\xd8\xff\xe0 truncated on the card")
    shallow = shallow_depth_of_field()
    if shallow is not None:
        shallow.save(folder / SHALLOW, quality=92)

    QCoreApplication.setOrganizationName("clipiqa-desktop-screenshot")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = AppSettings(
        model=args.model,
        pretrained=args.pretrained,
        device="cpu",
        size="512",
        catalog=str(tmp / "catalog.sqlite"),
    )
    catalog = Catalog(settings.catalog_path)
    window = MainWindow(settings, catalog, persist=False)
    window.resize(1600, 1000)
    window.move(0, 0)
    window.show()
    window.open_folder(folder)
    deadline = time.monotonic() + 300
    while (window.indexing or window.index_thread is not None) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    window.sort_box.set_current_key("focus")  # out of focus first: the frames to reject
    window.size_slider.setValue(190)
    for row, change in (
        (0, DecisionChange(reject=True)),
        (1, DecisionChange(reject=True)),
        (5, DecisionChange(stars=4)),
        (6, DecisionChange(pick=True)),
        (7, DecisionChange(label="Green")),
    ):
        window.grid.setCurrentIndex(window.model.index(row))
        window.grid.clearSelection()
        window.decide(change)
    window.grid.setCurrentIndex(window.model.index(3))
    for _ in range(50):
        app.processEvents()
        QTest.qWait(20)
    out = Path(args.out)
    window.grab().save(str(out))
    print(f"wrote {out}")
    window.toggle_loupe()  # Space; without a window manager Xvfb gives no window keyboard focus
    deadline = time.monotonic() + 30
    while window.loupe.view.item.pixmap().isNull() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
        QTest.qWait(20)
    loupe = out.with_name(out.stem + "-loupe.png")
    window.grab().save(str(loupe))
    print(f"wrote {loupe}")
    if shallow is not None:  # F on the shallow-depth-of-field frame
        from clipiqa_desktop.gui.photo_model import TableRowRole

        paths = window.session.table.paths if window.session is not None else []
        for r in range(window.model.rowCount()):
            row = window.model.index(r).data(TableRowRole)
            if row is not None and paths[int(row)].endswith(SHALLOW):
                window.grid.setCurrentIndex(window.model.index(r))
        window.loupe.toggle_peaking()  # F
        deadline = time.monotonic() + 60
        while not window.loupe.view.overlay.isVisible() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()
            QTest.qWait(20)
        peaking = out.with_name(out.stem + "-peaking.png")
        window.grab().save(str(peaking))
        print(f"wrote {peaking}")
    shoot_compare(app, window, out)
    shoot_stacks(app, window, out, tmp)
    window.close()
    catalog.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def shoot_compare(app: object, window: object, out: Path) -> None:
    """C on the sharp astronaut and its blurred frame: 2-up compare at 100 % on the face, the sharp
    one picked and pinned as the reference, the other rejected (docs/screenshot-compare.png)."""
    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtTest import QTest

    from clipiqa_desktop.culling.decisions import DecisionChange
    from clipiqa_desktop.gui.controllers import CompareController
    from clipiqa_desktop.gui.main_window import MainWindow
    from clipiqa_desktop.gui.photo_model import TableRowRole

    assert isinstance(window, MainWindow)
    session = window.session
    if session is None:
        return
    window.loupe_control.back_to_grid()
    rows = {}
    for r in range(window.model.rowCount()):
        row = window.model.index(r).data(TableRowRole)
        name = Path(session.table.paths[int(row)]).name if row is not None else ""
        if name in ("DSC_4711.JPG", "DSC_4712.JPG"):
            rows[name] = r
    if len(rows) != 2:
        return
    window.grid.clearSelection()
    window.grid.setCurrentIndex(window.model.index(rows["DSC_4711.JPG"]))
    window.grid.selectionModel().select(
        window.model.index(rows["DSC_4712.JPG"]), QItemSelectionModel.SelectionFlag.Select
    )
    control = window.controller(CompareController)
    control.open_compare()
    compare = window.compare
    deadline = time.monotonic() + 30
    while not compare.loaded and time.monotonic() < deadline:
        QTest.qWait(20)
    sharp = next(p.index for p in compare.panes if p.info and p.info.name == "DSC_4711.JPG")
    compare.set_active(sharp)
    window.decide(DecisionChange(pick=True))
    control.toggle_pin()
    compare.set_active(1 - sharp)
    window.decide(DecisionChange(reject=True))
    window.decisions.flush(10)
    compare.zoom_to(1.0, (0.5, 0.3))  # the face at true pixels in both panes
    for _ in range(20):
        QTest.qWait(20)
    shot = out.with_name(out.stem + "-compare.png")
    window.grab().save(str(shot))
    print(f"wrote {shot}")
    control.back_to_grid()


def shoot_stacks(app: object, window: object, out: Path, tmp: Path) -> None:
    """Bursts with EXIF capture times (0.4 s apart, every other frame blurred), a 0/−2/+2 EV
    bracket and frames alone, stacked (Ctrl+G) with the first burst opened (S)
    (docs/screenshot-stacks.png)."""
    import datetime
    from fractions import Fraction

    from PIL import ImageEnhance, ImageFilter
    from PIL.TiffImagePlugin import IFDRational
    from PySide6.QtTest import QTest

    from clipiqa_desktop.gui.controllers.stacks import StacksController
    from clipiqa_desktop.gui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    folder = tmp / "Wedding-2026-06-20-ceremony"
    folder.mkdir()
    start = datetime.datetime(2026, 6, 20, 15, 0, 0)

    def save(name: str, img: Image.Image, seconds: float, bias: float = 0.0) -> None:
        when = start + datetime.timedelta(seconds=seconds)
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Nikon", "NIKON Z 6"
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
        sub[0x9291] = f"{when.microsecond // 10_000:02d}"  # SubSecTimeOriginal
        sub[0x9204] = IFDRational(Fraction(bias))  # ExposureBiasValue
        sub[0x829A] = IFDRational(Fraction(1, 250))  # ExposureTime
        img.save(folder / name, quality=90, exif=exif.tobytes())

    n, t = 4711, 0.0
    for k, img in enumerate(demo_photos()[::4]):  # the sharp originals
        img = img.resize((600, round(600 * img.height / img.width)))
        if k == 2:  # an exposure bracket
            for j, bias in enumerate((0, -2, 2)):
                save(
                    f"DSC_{n}.JPG", ImageEnhance.Brightness(img).enhance(2.0 ** (bias / 2)), t + 0.3 * j, bias
                )
                n += 1
        else:
            for j in range((5, 3, 1, 4, 2)[k]):
                frame = img.crop((j * 6, 0, img.width - 30 + j * 6, img.height))
                if j % 2 == 1:
                    frame = frame.filter(ImageFilter.GaussianBlur(2 + j))
                save(f"DSC_{n}.JPG", frame, t + 0.4 * j)
                n += 1
        t += 90
    window.open_folder(folder)
    deadline = time.monotonic() + 300
    while (window.indexing or window.index_thread is not None) and time.monotonic() < deadline:
        QTest.qWait(20)
    stacks = window.controller(StacksController)
    window.view.sort_by("captured", False)
    stacks.stack_action.setChecked(True)
    QTest.qWait(200)
    stacks.wait()
    window.grid.setCurrentIndex(window.model.index(0))
    stacks.toggle_current()  # S: the first burst opened in place
    window.grid.setCurrentIndex(window.model.index(2))
    for _ in range(50):
        QTest.qWait(20)
    shot = out.with_name(out.stem + "-stacks.png")
    window.grab().save(str(shot))
    print(f"wrote {shot}")


if __name__ == "__main__":
    raise SystemExit(main())
