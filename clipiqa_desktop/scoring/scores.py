"""The CLIP-IQA score of embeddings against prompt pairs, in numpy (no torch needed).

s = softmax(scale · [cos₊, cos₋])[0] = sigmoid(scale · (cos₊ − cos₋)), computed in float64 from
unit vectors. The scorer uses it right after the image encoder, and rescoring uses it on embeddings
read from the catalog, so both give the same number for the same embedding.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _unit(x: ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.maximum(norm, np.float32(1e-12))


def pair_scores(
    image_features: ArrayLike, positive: ArrayLike, negative: ArrayLike, scale: float
) -> np.ndarray:
    """Scores (N, K) float32 for N image embeddings and K pairs of text features (any norm)."""
    img = _unit(image_features)
    diff = (img @ _unit(positive).T).astype(np.float64) - (img @ _unit(negative).T).astype(np.float64)
    with np.errstate(over="ignore"):  # exp overflow -> score 0.0, which is the correct limit
        return (1.0 / (1.0 + np.exp(-float(scale) * diff))).astype(np.float32)
