"""All pixel measures of one photo, from one decode: what the indexer and `score` store.

`measure_photo(full, analysis)` runs in the decoding threads (numpy, single-threaded), beside the
CLIP encoder on the model's thread, so on a normal machine the focus pass never becomes the wall:
- focus and motion_blur from the luminance of the FULL-resolution image (focus.py, made and measured
  one band of tiles at a time, so no full-size float copy is ever alive), and noise from the same
  pass (the noise level it discounts, as a 0..1 score: registry.noise_score);
- highlights_clipped and shadows_clipped from the analysis image (exposure.py: free, it is decoded);
- faces, face_focus and eyes_closed when the [faces] extra is installed (faces.py): detection on a
  reduced copy, eyes and face focus on the full-resolution crops. Without a face, face_focus and
  eyes_closed are absent (NaN in tables), and `faces` is 0. A face out of focus (focus at or below
  FOCUS_OUT) is never counted as eyes closed: its eyelids cannot be read.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from PIL import Image

from .registry import FACE_KEYS, FOCUS_OUT, PIXEL_KEYS, noise_score


def faces_unavailable() -> str | None:
    """Why faces cannot be measured here (None when they can)."""
    try:
        from .faces import faces_unavailable as why
    except ImportError as exc:  # never a traceback for a missing optional part
        return f"faces and eyes cannot be measured: {exc}"
    return why()


def measurable_keys(with_faces: bool | None = None) -> tuple[str, ...]:
    """The pixel measures this installation computes (faces only with the [faces] extra)."""
    if with_faces is None:
        with_faces = faces_unavailable() is None
    return tuple(k for k in PIXEL_KEYS if with_faces or k not in FACE_KEYS)


def measure_photo(
    full: Image.Image | np.ndarray,
    analysis: Image.Image | None = None,
    keys: Collection[str] | None = None,
    reduced: Image.Image | np.ndarray | None = None,
) -> dict[str, float]:
    """The pixel measures of one upright RGB photo at full resolution (`analysis`: the reduced
    image the clipping is counted on; default: `full`). `keys` limits what is computed (default:
    everything this installation can measure); `reduced`, the decoder's box-reduced copy
    (DecodedPhoto.reduced), saves the face detector a reduction of the full frame. Values absent
    from the result were not measured or do not apply (no face)."""
    from .exposure import clipping
    from .focus import measure_focus_rgb

    wanted = set(measurable_keys() if keys is None else keys)
    out: dict[str, float] = {}
    if isinstance(full, np.ndarray):  # the caller let go of the image: no second 72 MB copy at 24 MP
        rgb = full
    else:
        rgb = np.asarray(full.convert("RGB") if full.mode != "RGB" else full)
    if wanted & {"focus", "motion_blur", "noise"}:
        focus = measure_focus_rgb(rgb)  # band by band: no full-size luminance or Haar details
        if focus.judged:  # a frame without an edge to judge (plain sky, fog) has no focus value
            out["focus"] = float(focus.score)
            out["motion_blur"] = float(focus.motion)
        out["noise"] = noise_score(focus.noise)
    if wanted & {"highlights_clipped", "shadows_clipped"}:
        small = rgb if analysis is None else np.asarray(analysis.convert("RGB"))
        clip = clipping(small)
        out["highlights_clipped"] = float(clip.highlights)
        out["shadows_clipped"] = float(clip.shadows)
    if wanted & set(FACE_KEYS) and faces_unavailable() is None:
        from .faces import detect_faces

        faces = detect_faces(rgb, None if reduced is None else np.asarray(reduced))
        out["faces"] = float(len(faces))
        if faces:
            focus_values = [f.focus for f in faces if np.isfinite(f.focus)]  # an eye region too small: NaN
            if focus_values:
                out["face_focus"] = float(max(focus_values))
            # Eyelids cannot be read on a face that is out of focus (the landmarks drift onto the
            # blur): such a face is counted for face_focus, never as eyes closed.
            out["eyes_closed"] = float(sum(1 for f in faces if f.eyes_closed and f.focus > FOCUS_OUT))
    return {k: v for k, v in out.items() if k in wanted and np.isfinite(v)}
