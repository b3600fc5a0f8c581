"""Which XMP sidecar belongs to which photo, for writing and for reading.

Two namings are in use:
- "darktable" (also digiKam, immich): `IMG_0001.CR3.xmp`, the photo's whole name + `.xmp`. Every
  file has its own sidecar; nothing can collide. The default.
- "adobe" (Lightroom, Camera Raw, Capture One, FastRawViewer): `IMG_0001.xmp`, the extension
  replaced. `IMG_0001.CR2` and `IMG_0001.JPG` then name the same sidecar.

The Adobe collision is resolved so that one photo's decision never lands in another's sidecar:
among the photos of one folder that share a stem, the single RAW file owns `IMG_0001.xmp` (Lightroom
reads sidecars only for RAW files; for a JPEG it reads the XMP inside the file); the others get
none and are reported. With two RAW files on one stem (`IMG_0001.CR2` + `IMG_0001.DNG`) or two
non-RAW files (`a.JPG` + `a.PNG`), nobody owns it: no photo is given the shared sidecar.

Reading follows the same rule: `IMG_0001.CR3.xmp` always belongs to `IMG_0001.CR3`; `IMG_0001.xmp`
only to the photo that owns the stem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..imaging.formats import RAW_EXTENSIONS, is_photo

NAMINGS = ("darktable", "adobe")
DEFAULT_NAMING = "darktable"


@dataclass(frozen=True)
class SidecarTarget:
    """Where a photo's sidecar goes under a naming: `path`, or None with the `reason` why not."""

    path: Path | None
    reason: str = ""


def full_name(photo: Path) -> Path:
    """`IMG_0001.CR3.xmp`: darktable's and digiKam's naming."""
    return photo.with_name(photo.name + ".xmp")


def stem_name(photo: Path) -> Path:
    """`IMG_0001.xmp`: Adobe's naming."""
    return photo.with_suffix(".xmp")


def stem_owner(photo: Path, siblings: Iterable[str]) -> tuple[bool, str]:
    """Whether `photo` owns `STEM.xmp` among the file names in its folder (`siblings`, which may
    include the photo itself, sidecars and non-photo files, which are ignored); when not, why."""
    stem = photo.stem.casefold()
    # Only photos compete for the name: a Live Photo's IMG_1.MOV, a voice memo's IMG_1.WAV or a
    # camera's IMG_1.THM beside IMG_1.JPG take no sidecar (and sidecars themselves are not siblings).
    others = sorted(
        n for n in siblings if n != photo.name and Path(n).stem.casefold() == stem and is_photo(n)
    )
    if not others:
        return True, ""
    is_raw = photo.suffix.lower() in RAW_EXTENSIONS
    raw_others = [n for n in others if Path(n).suffix.lower() in RAW_EXTENSIONS]
    shared = f"{stem_name(photo).name} would be shared with {', '.join(others)}"
    if is_raw and not raw_others:
        return True, ""
    if not is_raw and len(raw_others) == 1:
        return False, f"{shared}; it belongs to the RAW file {raw_others[0]}"
    return False, f"{shared}; with Adobe naming no file can have it (use darktable naming)"


def sidecar_target(photo: Path, naming: str, siblings: Iterable[str]) -> SidecarTarget:
    """The sidecar to write for `photo` under `naming`."""
    if naming == "darktable":
        return SidecarTarget(full_name(photo))
    if naming != "adobe":
        raise ValueError(f"sidecar naming must be one of {', '.join(NAMINGS)}, not {naming!r}")
    owns, reason = stem_owner(photo, siblings)
    return SidecarTarget(stem_name(photo)) if owns else SidecarTarget(None, reason)


def _existing(path: Path, names: set[str]) -> Path | None:
    """`path` if its folder holds it, matching the extension's case loosely (`.XMP` too)."""
    for candidate in (path, path.with_suffix(".XMP")):
        if candidate.name in names:
            return candidate
    return None


def sidecar_to_read(photo: Path, siblings: Iterable[str]) -> Path | None:
    """The sidecar whose decision belongs to `photo`, or None: `IMG.CR3.xmp` first (it names this
    file alone), then `IMG.xmp` when the photo owns its stem. `siblings`: every file name in the
    photo's folder (photos and sidecars), e.g. from one directory listing."""
    names = set(siblings)
    found = _existing(full_name(photo), names)
    if found is not None:
        return found
    if stem_owner(photo, names)[0]:
        return _existing(stem_name(photo), names)
    return None
