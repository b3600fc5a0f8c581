"""Building the photo table that `list` and `export` show: catalog rows + scores + custom prompts.

Custom prompt pairs (from --prompt or stored in the catalog) are scored from the stored embeddings
(culling/prompts.py); a stored prompt needs no model, a new one loads it once to encode its texts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..catalog import Catalog, PhotoTable, build_table
from ..culling.prompts import prompt_scores
from ..culling.session import column_order
from ..scoring.attributes import (
    AttributePair,
    PromptError,
    custom_pair,
    parse_prompt_pair,
)
from .common import CommandError, load_scorer


def custom_pairs(args: argparse.Namespace, catalog: Catalog) -> list[AttributePair]:
    """Stored prompt pairs plus those given with --prompt (saved first when --save-prompt)."""
    try:
        given = [parse_prompt_pair(p) for p in getattr(args, "prompt", []) or []]
    except PromptError as exc:
        raise CommandError(str(exc)) from exc
    keys = [p.key for p in given]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:  # the second pair would silently replace the first
        raise CommandError(
            f"two --prompt pairs have the key {', '.join(dupes)}; name them apart with key=POS:NEG"
        )
    if getattr(args, "save_prompt", False):
        for pair in given:
            catalog.save_prompt(pair.key, pair.positive, pair.negative)
    stored = [custom_pair(pos, neg, key) for key, pos, neg in catalog.prompts()]
    by_key = {p.key: p for p in stored}
    by_key.update({p.key: p for p in given})
    return list(by_key.values())


def load_table(
    args: argparse.Namespace, catalog: Catalog, folder_ids: list[int], analysis_id: int, root: Path
) -> PhotoTable:
    """The photos of these folder rows, named by their path inside `root` ("100CANON/IMG_1.JPG")."""
    rows, scores = catalog.rows(folder_ids, analysis_id, root=root)
    table = build_table(rows, scores, column_order(scores.attributes))
    pairs = custom_pairs(args, catalog)
    if pairs:
        rescore(args, catalog, table, folder_ids, analysis_id, pairs)
    return table


def rescore(
    args: argparse.Namespace,
    catalog: Catalog,
    table: PhotoTable,
    folder_ids: list[int],
    analysis_id: int,
    pairs: list[AttributePair],
) -> None:
    """Add a score column per pair, computed from stored embeddings (no image is decoded)."""
    model_id = catalog.analysis(analysis_id)[0]

    def encode(texts: list[str]) -> np.ndarray:
        scorer = load_scorer(_args_for(args, model_id))
        return scorer.text_features(texts).cpu().numpy()

    ids, values = prompt_scores(catalog, folder_ids, analysis_id, pairs, encode)
    for j, pair in enumerate(pairs):
        table.add_scores(pair.key, ids, values[:, j])


def _args_for(args: argparse.Namespace, model_id: str) -> argparse.Namespace:
    """Model options that rebuild the model an analysis was made with (for encoding new prompts)."""
    from ..scoring.errors import UnknownModel
    from ..scoring.spec import ModelSpec

    current = ModelSpec.from_options(args.model, args.pretrained, args.weights)
    try:
        spec = current.for_model_id(model_id)
    except UnknownModel as exc:
        raise CommandError(str(exc)) from exc
    weights = str(spec.weights) if spec.weights else None
    return argparse.Namespace(
        **{**vars(args), "model": spec.arch, "pretrained": spec.pretrained, "weights": weights}
    )
