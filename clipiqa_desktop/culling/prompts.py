"""Scoring prompt pairs over a catalog from stored embeddings (no image is decoded).

Text features are cached in the catalog per model, so a stored prompt rescoring needs no model at
all; only texts never seen before are encoded, by the `encode` callback (which loads the model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..catalog import Catalog
from ..scoring.attributes import AttributePair
from ..scoring.scores import pair_scores

EncodeTexts = Callable[[list[str]], np.ndarray]  # texts -> (len, D) unit features


def prompt_scores(
    catalog: Catalog,
    folder_ids: Sequence[int],
    analysis_id: int,
    pairs: Sequence[AttributePair],
    encode: EncodeTexts,
) -> tuple[np.ndarray, np.ndarray]:
    """(photo ids, scores N×K) of `pairs` over the stored embeddings of one analysis."""
    model_id, _, logit_scale = catalog.analysis(analysis_id)
    texts = [p.positive for p in pairs] + [p.negative for p in pairs]
    cached = catalog.text_features(model_id, texts)
    missing = [t for t in dict.fromkeys(texts) if t not in cached]
    if missing:
        fresh = dict(zip(missing, np.asarray(encode(missing), dtype=np.float32), strict=True))
        catalog.store_text_features(model_id, fresh)
        cached.update(fresh)
    ids, emb = catalog.embeddings(folder_ids, analysis_id)
    if len(ids) == 0:
        return ids, np.zeros((0, len(pairs)), dtype=np.float32)
    text = np.stack([cached[t] for t in texts])
    k = len(pairs)
    return ids, pair_scores(emb, text[:k], text[k:], logit_scale)
