"""Pixel measures: what a photo's own pixels say, with no CLIP model (see registry.py).

- focus.py     focus at native resolution: the sharpest region, noise-robust, motion vs defocus;
               the focus-peaking map the loupe draws
- exposure.py  clipped highlights and shadows, and the histogram the loupe draws
- faces.py     faces, the sharpest face's focus, closed eyes (the optional [faces] extra: mediapipe)
- registry.py  names, groups, units and readable reasons of every attribute

numpy (and Pillow) only: no torch, no Qt.
"""
