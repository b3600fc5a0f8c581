"""Natural-language search over a shoot's stored CLIP embeddings ("bride laughing").

The similarity of a photo to a text is the cosine of its stored unit image embedding (one analysis,
`Catalog.embeddings`) with the unit text feature of the same model: one matrix-vector product, no
image decoded. The text's feature comes from the catalog's text-feature cache (keyed by model id and
text, like culling/prompts.py), so a text searched before needs no model at all; a new one is
encoded by the `encode` callback (which loads the text tower, in a child process in the window).

The text is encoded as typed (whitespace tidied): CLIP's "a photo of {label}" template helps
zero-shot classification of bare class names, but a search is usually a phrase, and with no real
weights here nothing could show a template ranking photos better. A user may type "a photo of …"
themselves.

Reading 20,000 embeddings from SQLite costs far more than the product (benchmarks/search.py), so a
caller that searches the same photos again keeps the `ShootEmbeddings` it got and passes it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog
from ..scoring.constants import NO_MODEL

EncodeTexts = Callable[[list[str]], np.ndarray]  # texts -> (len, D) features

SEARCH_KEY = "search"  # the session column of the last search's similarity


class SearchError(Exception):
    """A search that cannot run; the text is a one-line message for the photographer."""


def clean_text(text: str) -> str:
    """The text as it is encoded and cached: surrounding and repeated whitespace removed. An empty
    text is a SearchError."""
    cleaned = " ".join(str(text).split())
    if not cleaned:
        raise SearchError("type what to look for, e.g. “bride laughing”")
    return cleaned


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in place (stored embeddings are unit length up to float16)."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
    matrix /= np.maximum(norms, np.float32(1e-12))
    return matrix


@dataclass(frozen=True, eq=False)
class ShootEmbeddings:
    """The unit image embeddings of one analysis over some folder rows, kept between searches."""

    folder_ids: tuple[int, ...]
    analysis_id: int
    model_id: str
    ids: np.ndarray  # photo ids, ascending
    unit: np.ndarray  # float32 N×D, rows of unit length

    @classmethod
    def load(cls, catalog: Catalog, folder_ids: Sequence[int], analysis_id: int) -> ShootEmbeddings:
        """Read them from the catalog; SearchError when these photos have none."""
        model_id = catalog.analysis(analysis_id)[0]
        if model_id == NO_MODEL:
            raise SearchError(
                "these photos were indexed without a CLIP model (--model none): there are no image "
                "embeddings to search; index them again with a model"
            )
        ids, matrix = catalog.embeddings(folder_ids, analysis_id)
        if len(ids) == 0:
            raise SearchError("no photo here has a CLIP embedding yet: index the folder first")
        return cls(tuple(int(f) for f in folder_ids), int(analysis_id), model_id, ids, _unit_rows(matrix))

    def fits(self, folder_ids: Sequence[int], analysis_id: int) -> bool:
        """True when these are the embeddings of those folder rows and that analysis."""
        return self.analysis_id == analysis_id and self.folder_ids == tuple(int(f) for f in folder_ids)

    def __len__(self) -> int:
        return len(self.ids)


def text_feature(catalog: Catalog, model_id: str, text: str, encode: EncodeTexts) -> np.ndarray:
    """The unit text feature (float32, D) of `text` for `model_id`: from the catalog's cache, or
    encoded by `encode` and cached (not in a catalog opened read-only)."""
    cached = catalog.text_features(model_id, [text])
    if text in cached:
        feature = cached[text]
    else:
        feature = np.asarray(encode([text]), dtype=np.float32).reshape(-1)
        catalog.store_text_features(model_id, {text: feature})
    feature = np.asarray(feature, dtype=np.float32)
    norm = float(np.linalg.norm(feature))
    if not np.isfinite(norm) or norm == 0.0:
        raise SearchError(f"the text feature of “{text}” is empty; try other words")
    return feature / np.float32(norm)


@dataclass(frozen=True, eq=False)
class SearchResult:
    """How well each photo matches `text`: cosine similarities, in the order of `ids`."""

    text: str
    ids: np.ndarray  # photo ids, ascending (as ShootEmbeddings)
    similarity: np.ndarray  # float32 cosine in [-1, 1]; real CLIP models give ~0.1-0.35

    def ranking(self, top: int = 0) -> np.ndarray:
        """Indices into `ids`, best match first (equal similarities in id order); `top` > 0 keeps
        that many."""
        order = np.argsort(-self.similarity, kind="stable")
        return order[:top] if top > 0 else order

    def ranks(self) -> np.ndarray:
        """Each photo's rank (1 = best match), in the order of `ids`."""
        out = np.empty(len(self.ids), dtype=np.int64)
        out[self.ranking()] = np.arange(1, len(self.ids) + 1)
        return out


def rank(embeddings: ShootEmbeddings, feature: np.ndarray, text: str) -> SearchResult:
    """The similarity of every photo to one unit text feature."""
    feature = np.asarray(feature, dtype=np.float32).reshape(-1)
    if feature.shape[0] != embeddings.unit.shape[1]:
        raise SearchError(
            f"the text feature ({feature.shape[0]} values) does not fit the stored embeddings "
            f"({embeddings.unit.shape[1]}): they were made by another model"
        )
    return SearchResult(text, embeddings.ids, embeddings.unit @ feature)


def search(
    catalog: Catalog,
    folder_ids: Sequence[int],
    analysis_id: int,
    text: str,
    encode: EncodeTexts,
    embeddings: ShootEmbeddings | None = None,
) -> tuple[SearchResult, ShootEmbeddings]:
    """Rank the photos of `folder_ids` (their embeddings of `analysis_id`) by `text`.

    `embeddings` from an earlier search of the same photos are used when they fit, else read again;
    the ones used are returned for the next search. The embeddings are read before the text is
    encoded, so photos without any fail before a model is loaded."""
    text = clean_text(text)
    if embeddings is None or not embeddings.fits(folder_ids, analysis_id):
        embeddings = ShootEmbeddings.load(catalog, folder_ids, analysis_id)
    feature = text_feature(catalog, embeddings.model_id, text, encode)
    return rank(embeddings, feature, text), embeddings
