"""CLIP-IQA+ learned prompts (scoring/learned.py): the token layout, the accepted files, the errors,
and quality_plus through the indexer (stored, filled in from embeddings, replaced by another file).

The context files are random tensors written here for the tiny test model (text width 32, as
tests/data/tiny-rn.json says); the released RN50 file is 16 × 512 and we ship none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
from clipiqa_desktop.scoring import ClipIqaScorer, LazyScorer, ModelSpec, ScoringError, pair_scores
from clipiqa_desktop.scoring.learned import LearnedPromptError, learned_pair

from ..conftest import TINY_RN, photo

WIDTH = 32  # text_cfg.width of tests/data/tiny-rn.json
OPTIONS = IndexOptions(long_side=96, batch_size=4, workers=2, thumb_long_side=48)


@pytest.fixture(scope="module")
def scorer():
    """A scorer of its own: adding learned prompts must not change the session's tiny_scorer."""
    torch.manual_seed(0)
    return ClipIqaScorer.load(ModelSpec(str(TINY_RN), "none"), device="cpu", precision="fp32", engine="torch")


def context_file(path, shape, seed=0, wrap=None):
    """torch.save a random context of `shape` (as a state dict under `wrap`'s keys if given)."""
    ctx = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.02
    torch.save(ctx if wrap is None else wrap(ctx), path)
    return path


def _encode(model, ids):
    tokens = torch.zeros(1, 77, dtype=torch.long)
    tokens[0, : len(ids)] = torch.tensor(ids)
    with torch.inference_mode():
        return torch.nn.functional.normalize(model.encode_text(tokens).float(), dim=-1)[0]


def test_context_takes_the_place_of_word_embeddings_around_the_class_words(scorer, tmp_path):
    """Contexts made of real word embeddings must give exactly the features of the sentence those
    words spell: [start] ctx[:n/2] good photo .. ctx[n/2:] [end] (and the bad prompt likewise)."""
    model = scorer._text_model
    good, bad = [49406, 886, 1125, 852, 49407], [49406, 2103, 1125, 852, 49407]  # "Good/Bad photo.."
    words = [[320, 1929, 538, 2442, 528, 518], [1125, 530, 320, 797, 1400, 269]]  # 6 per prompt
    table = model.token_embedding.weight.detach()
    ctx = torch.stack([table[torch.tensor(w)] for w in words])  # (2, 6, 32): one context per prompt
    torch.save(ctx, tmp_path / "words.pth")
    pair = scorer.add_learned_prompts(tmp_path / "words.pth")
    feats = scorer.text_features([pair.positive, pair.negative])
    for row, (cls, w) in enumerate(((good, words[0]), (bad, words[1]))):
        expected = _encode(model, [cls[0], *w[:3], *cls[1:4], *w[3:], cls[4]])
        torch.testing.assert_close(feats[row], expected, atol=1e-6, rtol=0)
    assert not torch.allclose(feats[0], feats[1])


def test_shared_context_equals_the_same_context_per_prompt_and_state_dicts_are_read(scorer, tmp_path):
    shared = context_file(tmp_path / "shared.pth", (16, WIDTH))
    ctx = torch.load(shared)
    torch.save(torch.stack([ctx, ctx]), tmp_path / "pair.pth")
    torch.save({"params": {"prompt_learner.ctx": ctx}}, tmp_path / "state.pth")
    feats = []
    for name in ("shared.pth", "pair.pth", "state.pth"):
        pair = scorer.add_learned_prompts(tmp_path / name)
        feats.append(scorer.text_features([pair.positive, pair.negative]))
        assert pair.key == "quality_plus" and pair.positive.startswith("learned:")
    torch.testing.assert_close(feats[0], feats[1])
    torch.testing.assert_close(feats[0], feats[2])
    # Each file has its own cache keys (sha256 of the file), so another file never reuses them.
    keys = {learned_pair(tmp_path / n).positive for n in ("shared.pth", "pair.pth", "state.pth")}
    assert len(keys) == 3


def test_quality_plus_is_the_softmax_of_the_learned_pair(scorer, tmp_path):
    pair = scorer.add_learned_prompts(context_file(tmp_path / "c.pth", (2, 16, WIDTH), seed=3))
    batch = torch.from_numpy(np.stack([np.asarray(photo(96, 64, seed=s)) for s in range(3)])).permute(
        0, 3, 1, 2
    )
    results = scorer.score_batch(batch.contiguous(), [pair])
    text = scorer.text_features([pair.positive, pair.negative])
    emb = np.stack([r.embedding for r in results])
    logits = scorer.logit_scale * emb @ text.numpy().T
    expected = np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)
    got = [r.scores["quality_plus"] for r in results]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got == pytest.approx(pair_scores(emb, text[:1], text[1:], scorer.logit_scale)[:, 0], abs=1e-6)


def test_a_learned_key_never_loaded_is_an_error_not_a_random_prompt(scorer):
    with pytest.raises(ScoringError, match="learned-prompts file"):
        scorer.text_features(["learned:0000:good"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, r"does not exist"),
        (lambda p: p.write_bytes(b"not a torch file at all") and p, r"torch cannot read it"),
        (lambda p: torch.save({"weight": torch.zeros(3)}, p) or p, r"no context tensor.*weight"),
        (lambda p: torch.save([1, 2], p) or p, r"holds a list, not a tensor"),
        (
            lambda p: context_file(p, (3, 16, WIDTH)),
            r"shape \(3, 16, 32\); learned prompts are \(n_ctx, width\) or \(2, n_ctx, width\)",
        ),
        (lambda p: context_file(p, (WIDTH,)), r"shape \(32\);"),
        (lambda p: context_file(p, (16, 512)), r"width 512, but the text encoder of tiny-rn/none is 32 wide"),
        (lambda p: context_file(p, (80, WIDTH)), r"80 context vectors.*85 tokens.*tokenizer takes 77"),
        (
            lambda p: (
                torch.save(
                    {
                        "prompt_learner.ctx": torch.zeros(16, WIDTH),
                        "prompt_learner.token_suffix": torch.zeros(2, 40, WIDTH),
                    },
                    p,
                )
                or p
            ),
            r"made for a tokenizer of 57 tokens, but tiny-rn/none's takes 77",
        ),
    ],
    ids=[
        "missing",
        "not-torch",
        "no-ctx",
        "not-a-tensor",
        "three-contexts",
        "one-dim",
        "width",
        "too-long",
        "tokenizer",
    ],
)
def test_unusable_files_are_refused_with_one_line(scorer, tmp_path, make, message):
    path = make(tmp_path / "prompts.pth")
    with pytest.raises(LearnedPromptError, match=message) as info:
        scorer.add_learned_prompts(path)
    assert "\n" not in str(info.value)


def test_loading_through_the_spec_and_the_missing_file_before_any_work(tmp_path):
    good = context_file(tmp_path / "p.pth", (16, WIDTH))
    torch.manual_seed(0)
    loaded = ClipIqaScorer.load(ModelSpec(str(TINY_RN), "none", learned_prompts=good), "cpu", "fp32", "torch")
    assert loaded.learned_pair == learned_pair(good)
    gone_spec = ModelSpec(str(TINY_RN), "none", learned_prompts=tmp_path / "gone.pth")
    gone = LazyScorer(gone_spec, "cpu", "fp32", "torch")
    with pytest.raises(LearnedPromptError, match=r"gone\.pth does not exist"):
        _ = gone.learned_pair
    # Encoding plain prompts for stored embeddings does not need (nor trip over) the learned file.
    assert (
        ModelSpec(str(TINY_RN), "none", learned_prompts=good).for_model_id("tiny-rn/none").learned_prompts
        is None
    )


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(4):
        photo(120, 90, seed=i).save(folder / f"IMG_{i}.jpg", quality=90)
    return folder


def _lazy(learned=None):
    torch.manual_seed(0)
    return LazyScorer(ModelSpec(str(TINY_RN), "none", learned_prompts=learned), "cpu", "fp32", "torch")


def _quality_plus(catalog, folder, analysis_id):
    _rows, scores = catalog.rows([catalog.folder_id(folder)], analysis_id)
    if "quality_plus" not in scores.attributes:
        return {}
    col = scores.values[:, scores.attributes.index("quality_plus")]
    return {int(pid): float(v) for pid, v in zip(scores.photo_ids, col, strict=True)}


def test_quality_plus_is_filled_in_from_embeddings_and_follows_the_file(
    catalog, shoot, tmp_path, monkeypatch
):
    first = index_folder(catalog, _lazy(), shoot, OPTIONS)
    analysis = first.analysis_id
    assert first.indexed == 4 and _quality_plus(catalog, shoot, analysis) == {}

    import clipiqa_desktop.indexing.pipeline as pipeline_mod

    def no_decoding(*a, **k):
        raise AssertionError("quality_plus of indexed photos comes from their stored embeddings")

    monkeypatch.setattr(pipeline_mod, "decode_photo", no_decoding)
    file_a = context_file(tmp_path / "a.pth", (16, WIDTH), seed=1)
    with_a = index_folder(catalog, _lazy(file_a), shoot, OPTIONS)
    values_a = _quality_plus(catalog, shoot, analysis)
    assert (with_a.indexed, with_a.learned_rescored) == (0, 4) and len(values_a) == 4
    assert "quality_plus of 4 photos scored with the learned prompts" in "; ".join(with_a.notes())
    # The stored values are the softmax of the learned pair over the stored embeddings, and the two
    # text features are cached in the catalog under the file's hash.
    pair = learned_pair(file_a)
    cached = catalog.text_features("tiny-rn/none", [pair.positive, pair.negative])
    ids, emb = catalog.embeddings([catalog.folder_id(shoot)], analysis)
    scale = catalog.analysis(analysis)[2]
    expected = pair_scores(emb, cached[pair.positive][None], cached[pair.negative][None], scale)[:, 0]
    np.testing.assert_allclose([values_a[int(i)] for i in ids], expected, atol=1e-6)

    # Same file again: nothing changes, and the model is not even loaded (features from the catalog).
    again = _lazy(file_a)
    assert index_folder(catalog, again, shoot, OPTIONS).learned_rescored == 0 and not again.loaded
    assert _quality_plus(catalog, shoot, analysis) == values_a

    # Another file: every photo's quality_plus changes, still without a decode.
    file_b = context_file(tmp_path / "b.pth", (2, 16, WIDTH), seed=2)
    with_b = index_folder(catalog, _lazy(file_b), shoot, OPTIONS)
    values_b = _quality_plus(catalog, shoot, analysis)
    assert with_b.learned_rescored == 4
    assert all(abs(values_b[k] - values_a[k]) > 1e-4 for k in values_a)

    # A new photo is scored as it is indexed, with the file of the run.
    monkeypatch.undo()
    photo(120, 90, seed=9).save(shoot / "IMG_9.jpg", quality=90)
    new = index_folder(catalog, _lazy(file_b), shoot, OPTIONS)
    assert new.indexed == 1 and new.learned_rescored == 0, "streamed value = stored-embedding value"
    assert len(_quality_plus(catalog, shoot, analysis)) == 5


def test_a_bad_file_stops_the_index_with_its_reason(catalog, shoot, tmp_path):
    wrong = context_file(tmp_path / "wide.pth", (16, 512))
    with pytest.raises(LearnedPromptError, match="width 512"):
        index_folder(catalog, _lazy(wrong), shoot, OPTIONS)
