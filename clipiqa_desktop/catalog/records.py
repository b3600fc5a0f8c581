"""Plain data that crosses the catalog boundary (no SQLAlchemy objects leave the catalog)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..imaging.metadata import PhotoMeta

RATING_REJECTED = -1
LABELS = ("Red", "Yellow", "Green", "Blue", "Purple")
STATUSES = ("ok", "error", "missing")  # photos.status: scored, cannot be read, file gone


@dataclass(frozen=True)
class Decision:
    """A photographer's decision: rating -1 (rejected), 0 (unrated) or 1..5 stars; pick; colour label."""

    rating: int = 0
    picked: bool = False
    label: str | None = None

    @property
    def rejected(self) -> bool:
        return self.rating == RATING_REJECTED


DECISION_FIELDS = ("rating", "picked", "label")


@dataclass(frozen=True)
class DecisionDelta:
    """What one change did to one photo's decision, read and written in one transaction."""

    photo_id: int
    before: Decision
    after: Decision

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields this change altered (an undo puts back exactly these)."""
        return tuple(f for f in DECISION_FIELDS if getattr(self.before, f) != getattr(self.after, f))


@dataclass(frozen=True)
class SidecarState:
    """An XMP sidecar as the catalog last saw (or wrote) it: its file name beside the photo, its own
    modification time and size. A sidecar whose stat differs was changed by another tool.

    `fields`: the decision fields that file stated when it was read or written, as the XMP reader
    parses them ({"rating": 3, "label": None}: only the fields it states), or None when not known
    (a record made before they were kept). The XMP import compares a changed sidecar's fields with
    these, so only the fields the other tool changed come in (a three-way merge). Equality (and the
    hash) compare the stat only: two states are the same file as seen."""

    name: str
    mtime_ns: int
    size: int
    fields: Mapping[str, int | bool | str | None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PhotoRecord:
    """Everything the indexing pipeline writes for one photo, in one transaction with its batch.

    `rel_path` is the file's path relative to the folder given to `Catalog.write_batch` ("a.jpg",
    "100CANON/a.jpg") or an absolute path; the photo is stored under the folder row of the directory
    that contains it, so it has one record whatever folder it was indexed from."""

    rel_path: str
    size_bytes: int
    mtime_ns: int
    fingerprint: str | None = None
    error: str | None = None  # None = decoded and scored
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    meta: PhotoMeta = field(default_factory=PhotoMeta)
    scores: dict[str, float] | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    thumbnail: tuple[int, int, bytes] | None = field(default=None, repr=False)  # width, height, JPEG
    xmp_decision: Decision | None = None  # read from XMP; applied only if the catalog has none yet
    sidecar: SidecarState | None = None  # the XMP sidecar as read while indexing


@dataclass(frozen=True)
class PhotoState:
    """What the catalog knows of a photo, enough to decide whether to index it again."""

    id: int
    rel_path: str  # relative to the folder asked about ("100CANON/a.jpg"), or absolute outside it
    size_bytes: int
    mtime_ns: int
    status: str
    scored: bool  # has scores for the analysis in question
    error: str | None = None  # the reason, for a photo with status "error"
    measured: frozenset[str] = frozenset()  # the pixel measures it has in that analysis


@dataclass(frozen=True)
class PhotoScores:
    """A photo's file and the scores of one analysis: what the XMP hand-off writes beside its
    decision (Catalog.photo_scores)."""

    id: int
    path: Path
    status: str
    model_id: str | None = None
    analysis_size: str | None = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreMatrix:
    """Scores of one analysis as a matrix: row i = photo_ids[i], column j = attributes[j], NaN = none."""

    photo_ids: np.ndarray  # int64, ascending
    attributes: list[str]
    values: np.ndarray = field(repr=False)  # float32 (len(photo_ids), len(attributes))

    @classmethod
    def empty(cls) -> ScoreMatrix:
        return cls(np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32))

    def of(self, photo_id: int) -> dict[str, float]:
        """One photo's scores (tests and small callers; tables use the matrix directly)."""
        i = int(np.searchsorted(self.photo_ids, photo_id))
        if i >= len(self.photo_ids) or self.photo_ids[i] != photo_id:
            return {}
        return {a: float(v) for a, v in zip(self.attributes, self.values[i], strict=True) if not np.isnan(v)}


@dataclass(frozen=True)
class GroupInputs:
    """What grouping photos into bursts, brackets and scenes needs, one row per photo (not missing),
    ordered by photo id (`Catalog.group_inputs`). NaN (or None) where the file or catalog does not
    say; a photo without an embedding has a row of zeros and `has_embedding` False."""

    ids: np.ndarray  # int64, ascending
    names: list[str]  # paths relative to the folder asked about ("100CANON/IMG_1.JPG"): the order
    # of photos without a capture time
    times: np.ndarray = field(repr=False)  # float64 seconds (camera local time as if UTC, sub-second
    # from EXIF SubSecTimeOriginal), NaN = unknown
    embeddings: np.ndarray = field(repr=False)  # float32 (N, D), unit rows; zeros where none
    has_embedding: np.ndarray = field(repr=False)  # bool
    exposure_bias: np.ndarray = field(repr=False)  # float64 EV (EXIF ExposureBiasValue), NaN = unknown
    subject_distance: np.ndarray = field(repr=False)  # float64 metres (EXIF SubjectDistance), NaN
    exposure_time: np.ndarray = field(repr=False)  # float64 seconds, NaN
    f_number: np.ndarray = field(repr=False)  # float64, NaN
    iso: np.ndarray = field(repr=False)  # float64, NaN
    camera: list[str | None] = field(repr=False)  # "make model", None = unknown

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, dim: int = 0) -> GroupInputs:
        nan = np.zeros(0, np.float64)
        return cls(
            np.zeros(0, np.int64), [], nan, np.zeros((0, dim), np.float32), np.zeros(0, bool),
            nan, nan, nan, nan, nan, [],
        )  # fmt: skip
