"""The CLIP-IQA math, checked against independent straightforward computations."""

from __future__ import annotations

import copy
import math

import numpy as np
import open_clip
import pytest
import torch

from clipiqa_desktop.scoring import (
    BUILTIN_ATTRIBUTES,
    CLIP_MEAN,
    CLIP_STD,
    ClipIqaScorer,
    ModelSpec,
    ScoringError,
    get_attribute,
    load_clip,
    pair_scores,
    parse_prompt_pair,
)
from clipiqa_desktop.scoring.pooling import PositionFreeAttentionPool, make_size_agnostic

from ..conftest import TINY_RN, TINY_VIT


def test_golden_token_ids(tiny_scorer):
    tokens = tiny_scorer.tokenize(["Good photo.", "Bad photo.", "High contrast photo."])
    assert tokens.shape == (3, 77)
    assert tokens[0, :5].tolist() == [49406, 886, 1125, 269, 49407]
    assert tokens[1, :5].tolist() == [49406, 2103, 1125, 269, 49407]
    assert tokens[2, :6].tolist() == [49406, 1400, 18501, 1125, 269, 49407]
    assert int(tokens[0, 5:].abs().sum()) == 0


def _manual_pool(pool: PositionFreeAttentionPool, fmap: torch.Tensor) -> torch.Tensor:
    """CLIP-IQA's pool written out by hand: mean token first, no positional embedding, token 0 out."""
    n, c, h, w = fmap.shape
    heads = pool.num_heads
    d = c // heads
    tokens = fmap.reshape(n, c, h * w).transpose(1, 2)  # (N, HW, C)
    tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # (N, HW+1, C)
    q = pool.q_proj(tokens[:, :1])  # only token 0 is read out
    k = pool.k_proj(tokens)
    v = pool.v_proj(tokens)
    out = []
    for hd in range(heads):
        sl = slice(hd * d, (hd + 1) * d)
        att = (q[..., sl] @ k[..., sl].transpose(1, 2)) / math.sqrt(d)  # (N, 1, HW+1)
        out.append(att.softmax(dim=-1) @ v[..., sl])
    return pool.c_proj(torch.cat(out, dim=-1))[:, 0]


@pytest.mark.parametrize("hw", [(2, 2), (3, 5), (7, 7), (4, 9)])
def test_attention_pool_without_positional_embedding_matches_hand_computation(hw):
    torch.manual_seed(1)
    model, _ = load_clip(ModelSpec(str(TINY_RN), "none"))
    original = model.visual.attnpool
    pool = PositionFreeAttentionPool(original).eval()
    fmap = torch.randn(2, original.c_proj.in_features, *hw)
    with torch.no_grad():
        torch.testing.assert_close(pool(fmap), _manual_pool(pool, fmap), rtol=1e-5, atol=1e-5)


def test_attention_pool_equals_open_clip_pool_with_a_zero_positional_embedding():
    torch.manual_seed(2)
    model, _ = load_clip(ModelSpec(str(TINY_RN), "none"))
    original = model.visual.attnpool.eval()
    pool = PositionFreeAttentionPool(original).eval()
    side = round((original.positional_embedding.shape[0] - 1) ** 0.5)
    fmap = torch.randn(3, original.c_proj.in_features, side, side)
    with torch.no_grad():
        with_pos = original(fmap)
        original.positional_embedding.zero_()
        torch.testing.assert_close(pool(fmap), original(fmap), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(pool(fmap), with_pos, atol=1e-4), "the positional embedding must be gone"


def test_resnet_tower_takes_any_input_size(tiny_scorer):
    for h, w in [(64, 64), (96, 160), (200, 75), (33, 47)]:
        emb = tiny_scorer.encode_images(torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8))
        assert emb.shape == (1, tiny_scorer.embed_dim)
        assert torch.allclose(emb.norm(dim=-1), torch.ones(1), atol=1e-5)


def test_vit_at_native_size_equals_open_clip_and_other_sizes_work():
    torch.manual_seed(3)
    model, _ = load_clip(ModelSpec(str(TINY_VIT), "none"))
    reference = copy.deepcopy(model.visual).eval()
    assert make_size_agnostic(model.visual) == 16
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.visual(x), reference(x), rtol=1e-5, atol=1e-5)
        wide = model.visual(torch.randn(2, 3, 96, 160))
    assert wide.shape == (2, 32) and torch.isfinite(wide).all()


def _independent_scores(model, tokenizer, pixels: torch.Tensor, pos: str, neg: str) -> float:
    """sigmoid(scale · (cos₊ − cos₋)) from open_clip's own encoders and a hand-normalised input."""
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = (pixels.float() / 255.0 - mean) / std
    with torch.no_grad():
        img = model.visual(x)
        txt = model.encode_text(tokenizer([pos, neg]))
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    cos = (img @ txt.T)[0]
    scale = model.logit_scale.exp().item()
    return 1.0 / (1.0 + math.exp(-scale * float(cos[0] - cos[1])))


def test_scores_equal_sigmoid_of_scaled_cosine_difference():
    torch.manual_seed(4)
    model, tokenizer = load_clip(ModelSpec(str(TINY_RN), "none"))
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))  # the OpenAI value, so differences are amplified
    reference = copy.deepcopy(model)
    make_size_agnostic(reference.visual)
    scorer = ClipIqaScorer(model, tokenizer, torch.device("cpu"), "fp32")
    assert scorer.logit_scale == pytest.approx(100.0, rel=1e-5)
    pixels = torch.randint(0, 256, (1, 3, 120, 90), dtype=torch.uint8)
    pairs = [
        get_attribute("quality"),
        get_attribute("sharpness"),
        parse_prompt_pair("Eyes closed.:Eyes open."),
    ]
    got = scorer.score_batch(pixels, pairs)[0].scores
    for pair in pairs:
        want = _independent_scores(reference, tokenizer, pixels, pair.positive, pair.negative)
        assert got[pair.key] == pytest.approx(want, abs=1e-4)
    assert max(got.values()) - min(got.values()) > 1e-3, "scores should differ between pairs"


def test_pair_scores_is_the_two_way_softmax():
    img = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    pos = torch.tensor([[1.0, 0.0]])
    neg = torch.tensor([[0.0, 1.0]])
    s = pair_scores(img, pos, neg, 100.0)
    assert s[0, 0].item() == pytest.approx(1.0 / (1.0 + math.exp(-100.0)))
    assert s[1, 0].item() == pytest.approx(1.0 / (1.0 + math.exp(-100.0 * (0.6 - 0.8))))
    assert pair_scores(img.half(), pos, neg, 100.0).dtype == np.float32


def test_input_is_normalised_with_clip_constants_not_imagenet(tiny_scorer, monkeypatch):
    seen = {}
    visual = tiny_scorer._visual
    real_forward = visual.forward

    def spy(x):
        seen["x"] = x.detach().clone()
        return real_forward(x)

    monkeypatch.setattr(visual, "forward", spy)
    mean_pixel = torch.tensor([round(m * 255) for m in CLIP_MEAN], dtype=torch.uint8).view(1, 3, 1, 1)
    tiny_scorer.encode_images(mean_pixel.expand(1, 3, 40, 40).contiguous())
    # a pixel at CLIP's mean becomes ~0 (ImageNet constants would leave ≈ 0.1–0.2)
    assert seen["x"].abs().max().item() < 0.01


def test_text_features_are_computed_once_per_prompt(tiny_scorer, monkeypatch):
    calls = []
    real = tiny_scorer._text_model.encode_text
    monkeypatch.setattr(tiny_scorer._text_model, "encode_text", lambda t: calls.append(len(t)) or real(t))
    tiny_scorer._text_cache.clear()
    pixels = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    tiny_scorer.score_batch(pixels, BUILTIN_ATTRIBUTES)
    tiny_scorer.score_batch(pixels, BUILTIN_ATTRIBUTES)
    tiny_scorer.score_batch(pixels, [parse_prompt_pair("Eyes closed.:Eyes open.")])
    assert calls == [24, 2]


def test_stored_embeddings_rescore_without_the_image(tiny_scorer, monkeypatch):
    monkeypatch.setattr(tiny_scorer, "logit_scale", 100.0)  # OpenAI's scale: float16 errors ×100
    pixels = torch.randint(0, 256, (3, 3, 80, 60), dtype=torch.uint8)
    results = tiny_scorer.score_batch(pixels, BUILTIN_ATTRIBUTES)
    stored = np.stack([r.embedding for r in results]).astype(np.float16)  # compact storage
    again = tiny_scorer.score_embeddings(stored.astype(np.float32), BUILTIN_ATTRIBUTES)
    for row, r in zip(again, results, strict=True):
        for j, pair in enumerate(BUILTIN_ATTRIBUTES):
            assert row[j] == pytest.approx(r.scores[pair.key], abs=1e-3)


def test_batching_does_not_change_scores(tiny_scorer):
    pixels = torch.randint(0, 256, (5, 3, 72, 96), dtype=torch.uint8)
    batched = tiny_scorer.score_batch(pixels, BUILTIN_ATTRIBUTES)
    for i in range(5):
        single = tiny_scorer.score_batch(pixels[i : i + 1], BUILTIN_ATTRIBUTES)[0]
        for key, value in single.scores.items():
            assert batched[i].scores[key] == pytest.approx(value, abs=1e-5)


def test_bf16_channels_last_path_stays_within_001_of_fp32():
    torch.manual_seed(5)
    fp32 = ClipIqaScorer.load(ModelSpec(str(TINY_RN), "none"), "cpu", "fp32", "torch")
    torch.manual_seed(5)
    bf16 = ClipIqaScorer.load(ModelSpec(str(TINY_RN), "none"), "cpu", "bf16", "torch")
    fp32.logit_scale = bf16.logit_scale = 100.0
    pixels = torch.randint(0, 256, (4, 3, 96, 128), dtype=torch.uint8)
    a = fp32.score_batch(pixels, BUILTIN_ATTRIBUTES)
    b = bf16.score_batch(pixels, BUILTIN_ATTRIBUTES)
    diffs = [abs(x.scores[k] - y.scores[k]) for x, y in zip(a, b, strict=True) for k in x.scores]
    assert max(diffs) < 0.01


def test_non_finite_model_output_is_an_error_not_a_score(tiny_scorer, monkeypatch):
    monkeypatch.setattr(tiny_scorer._visual, "forward", lambda x: torch.full((x.shape[0], 32), float("nan")))
    with pytest.raises(ScoringError, match="non-finite"):
        tiny_scorer.encode_images(torch.zeros((1, 3, 64, 64), dtype=torch.uint8))


def test_quick_gelu_is_forced_for_openai_weights(monkeypatch):
    seen = {}

    def fake_create(arch, pretrained=None, force_quick_gelu=False, **kw):
        seen["quick"] = force_quick_gelu
        raise RuntimeError("stop here")

    from clipiqa_desktop.scoring import model as model_mod

    monkeypatch.setattr(model_mod, "_weights_cached", lambda a, t: True)
    monkeypatch.setattr(open_clip, "create_model", fake_create)
    with pytest.raises(RuntimeError, match="stop here"):
        load_clip(ModelSpec("RN50", "openai"))
    assert seen["quick"] is True
