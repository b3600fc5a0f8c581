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
    img = np.asarray(image_features, dtype=np.float32)
    # cos₊ − cos₋ = (img · (t₊ − t₋)) / |img| with unit t±: one matrix product, no normalised copy
    # of the (possibly 20,000 × 1024) embedding matrix.
    direction = (_unit(positive) - _unit(negative)).T
    norms = np.sqrt(np.einsum("ij,ij->i", img, img, dtype=np.float64))[:, None]
    diff = (img @ direction).astype(np.float64) / np.maximum(norms, 1e-12)
    with np.errstate(over="ignore"):  # exp overflow -> score 0.0, which is the correct limit
        return (1.0 / (1.0 + np.exp(-float(scale) * diff))).astype(np.float32)
