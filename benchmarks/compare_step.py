"""Compare: how long a step (← / →) takes to put the next frame on screen at 100 %.

    .venv/bin/python benchmarks/compare_step.py            # 24 MP frames, 8 steps per mode
    .venv/bin/python benchmarks/compare_step.py --quick    # 12 MP frames, 4 steps per mode

The real CompareView, offscreen, 2-up at 100 % in a 1400 × 800 window. A burst of JPEGs
(scikit-image's astronaut, upscaled, each frame turned a little so no two are the same file) is
written once under benchmarks/.cache/. Each step gives pane 0 the next frame and times from
`set_pane` until the pane's viewport has repainted with it, in two modes alternated ABBA:

- on demand: the frame is decoded when the step asks for it (what the loupe does);
- decoded ahead: `decode_ahead` of that frame has finished before the step (what the compare
  controller asks for after each step, while the photographer looks at the current frame).

Printed: the median and the worst step per mode, and the decode alone (`loupe._rgb_of` + the
conversion to the pixmap's format) for scale. Wall-clock on a shared machine: expect noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CACHE = Path(__file__).resolve().parent / ".cache" / "compare-step"


def burst(width: int, height: int, n: int) -> list[str]:
    from PIL import Image
    from skimage import data

    folder = CACHE / f"{width}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"F{i:02d}.jpg" for i in range(n)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        base = Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BICUBIC)
        for i, p in enumerate(paths):
            if not p.exists():
                base.rotate(0.3 * i).save(p, quality=92)
    return [str(p) for p in paths]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="12 MP frames, 4 steps per mode")
    args = ap.parse_args()
    width, height, steps = (4240, 2832, 4) if args.quick else (6000, 4000, 8)

    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from clipiqa_desktop.gui.compare import CompareView, PaneInfo
    from clipiqa_desktop.gui.loupe import _rgb_of

    paths = burst(width, height, 2 * steps + 2)
    app = QApplication([])
    view = CompareView()
    view.resize(1400, 800)
    view.show()

    def wait(done: object) -> None:
        while not done():  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.001)

    view.set_photos([PaneInfo(0, paths[0]), PaneInfo(1, paths[1])])
    wait(lambda: view.loaded)
    view.zoom_to(1.0, (0.5, 0.3))
    app.processEvents()
    times: dict[str, list[float]] = {"on demand": [], "decoded ahead": []}
    order = ["on demand", "decoded ahead", "decoded ahead", "on demand"]
    nxt = 2
    for k in range(2 * steps):
        mode = order[k % 4]
        path = paths[nxt]
        nxt += 1
        if mode == "decoded ahead":
            view.decode_ahead(path)
            wait(lambda: view._ahead is not None)
        t = time.perf_counter()
        view.set_pane(0, PaneInfo(100 + k, path))
        wait(lambda: view.panes[0].view.has_photo)
        view.panes[0].view.viewport().repaint()
        times[mode].append(time.perf_counter() - t)
    view.shutdown()

    t = time.perf_counter()
    rgb, _ = _rgb_of(paths[0])
    h, w = rgb.shape[:2]
    QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)
    decode = time.perf_counter() - t

    mp = width * height / 1e6
    print(f"compare step at 100 %, {width}×{height} JPEG frames ({mp:.0f} MP), 2-up 1400×800")
    for mode, values in times.items():
        median, worst = statistics.median(values), max(values)
        print(f"  {mode:14s} median {median:.3f} s   worst {worst:.3f} s   ({len(values)} steps)")
    print(f"  decode + convert of one frame alone: {decode:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
