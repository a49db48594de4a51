"""LoRA re-ranker: trains on planted preferences, saves and reloads with identical outputs.

A tiny randomly initialised Llama with a word-level tokenizer stands in for SmolLM2 (same code
path through transformers and peft, milliseconds per step); the real model is exercised by
``bench/bench_llm_rerank.py``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

# Skip only when a package is absent; an installed one that fails to import is a real failure.
_missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
if _missing:
    pytest.skip(f"needs {', '.join(_missing)}: pip install 'personae[llm]'",
                allow_module_level=True)

import torch  # noqa: E402

from personae.data.interactions import Interactions  # noqa: E402
from personae.errors import InvalidInput  # noqa: E402
from personae.llm.rerank import (  # noqa: E402
    ANSWER,
    QUESTION,
    LoraReranker,
    RerankGroup,
    candidate_text,
    groups_from_view,
    profile_text,
)

WESTERNS = ["Rio Bravo", "Shane", "Stagecoach", "Unforgiven", "Tombstone", "Hondo"]
SCIFI = ["Alien", "Solaris", "Gattaca", "Contact", "Dune", "Tron"]
GENRES = {**{t: "Western" for t in WESTERNS}, **{t: "SciFi" for t in SCIFI}}


def tiny_lm(seed: int = 0):
    """A 2-layer Llama over a word-level vocabulary that covers every test text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "<eos>", "The", "user", "liked", "Candidate", ":", ";", ".", ",",
             "?", "Western", "SciFi"]
    words += QUESTION.replace("?", " ").replace(".", " ").split() + ANSWER[:-1].split()
    for t in WESTERNS + SCIFI:
        words.extend(w for w in t.split() if w not in words)
    vocab = {w: k for k, w in enumerate(dict.fromkeys(words))}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                pre_tokenizers.Punctuation()])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>",
                                  unk_token="<unk>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128, pad_token_id=0, eos_token_id=2,
                      bos_token_id=2)
    return tok, LlamaForCausalLM(cfg).eval()


def planted_groups(n: int = 24, seed: int = 0, *, contrarian: bool = False
                   ) -> list[RerankGroup]:
    """Western fans like westerns, sci-fi fans like sci-fi: label = same genre as profile.

    The profile shows each title's genre so that a tiny random model can learn the match
    (token agreement) within a few dozen steps."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        mine, other = (WESTERNS, SCIFI) if k % 2 == 0 else (SCIFI, WESTERNS)
        profile = profile_text([f"{t} {GENRES[t]}" for t in rng.choice(mine, 3, replace=False)])
        cands = [rng.choice(mine), rng.choice(other), rng.choice(other)]
        if contrarian:  # they like the one title of the other genre
            cands = [rng.choice(other), *rng.choice(mine, 2, replace=False)]
        labels = (1, 0, 0)
        out.append(RerankGroup(profile, tuple(candidate_text(c, [GENRES[c]]) for c in cands),
                               labels))
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_prefix_cache_equals_full_forward():
    """Scoring with the shared profile cache gives the same log-odds as one full pass."""
    tok, lm = tiny_lm()
    r = LoraReranker(max_profile_tokens=64).use_model(tok, lm)
    profile = profile_text(["Shane", "Alien"])
    cands = [candidate_text("Dune", ["SciFi"]), candidate_text("Rio Bravo", ["Western"])]
    with torch.inference_mode():
        fast = r._logodds(profile, cands)
        yes, no = r._answer_ids()
        for k, c in enumerate(cands):
            text = profile + QUESTION + " Candidate: " + c + ANSWER
            ids = tok(text, add_special_tokens=False)["input_ids"]
            logits = lm(input_ids=torch.tensor([ids])).logits[0, -1]
            assert float(fast[k]) == pytest.approx(float(logits[yes] - logits[no]), abs=1e-5)


def test_training_learns_planted_preference_and_round_trips(tmp_path):
    train, test = planted_groups(24, seed=1), planted_groups(12, seed=2)
    tok, lm = tiny_lm()
    r = LoraReranker(steps=40, groups_per_step=4, lr=1e-2, seed=0).use_model(tok, lm)

    def accuracy(adapter):
        hits = [int(np.argmax(r.score(g.profile, g.candidates, adapter=adapter)) ==
                    g.labels.index(1)) for g in test]
        return float(np.mean(hits))

    r.fit(train)
    assert r.adapters_ == ["default"]
    losses = r.history_["default"]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert accuracy("default") >= 0.9  # chance: 1/3

    g = test[0]
    before = r.score(g.profile, g.candidates)
    r.save(tmp_path / "rr")
    assert (tmp_path / "rr" / "adapter_model.safetensors").is_file()
    tok2, base2 = tiny_lm()  # the same base weights, no adapter
    again = LoraReranker.load(tmp_path / "rr", tokenizer=tok2, model=base2)
    np.testing.assert_array_equal(again.score(g.profile, g.candidates), before)
    assert again.history_["default"] == losses
    # the bare model (adapter off) scores differently: the adapter really was reloaded
    assert not np.allclose(again.score(g.profile, g.candidates, adapter=None), before)


def test_per_segment_adapters_are_separate(tmp_path):
    """Two segments with opposite tastes: each adapter learns its own, and both reload."""
    tok, lm = tiny_lm()
    r = LoraReranker(steps=40, lr=1e-2).use_model(tok, lm)
    r.fit(planted_groups(24, seed=1), adapter="fans")
    r.fit(planted_groups(24, seed=1, contrarian=True), adapter="contrarians")
    assert r.adapters_ == ["fans", "contrarians"]
    # one profile, candidates [same genre, other genre, other genre]
    g = planted_groups(1, seed=9)[0]
    p_fans = r.score(g.profile, g.candidates, adapter="fans")
    p_con = r.score(g.profile, g.candidates, adapter="contrarians")
    assert p_fans[0] > p_fans[1:].max()
    assert p_con[0] < p_con[1:].min()
    r.save(tmp_path / "seg")
    tok2, base2 = tiny_lm()
    again = LoraReranker.load(tmp_path / "seg", tokenizer=tok2, model=base2)
    np.testing.assert_array_equal(again.score(g.profile, g.candidates, adapter="contrarians"),
                                  p_con)
    np.testing.assert_array_equal(again.score(g.profile, g.candidates, adapter="fans"), p_fans)


def test_rerank_orders_and_blends():
    tok, lm = tiny_lm()
    r = LoraReranker(steps=40, lr=1e-2).use_model(tok, lm).fit(planted_groups(16))
    g = planted_groups(1, seed=5)[0]
    p = r.score(g.profile, g.candidates)
    assert list(r.rerank(g.profile, g.candidates)) == list(np.argsort(-p, kind="stable"))
    # weight 0: the recommender's order is kept exactly
    base = [0.1, 0.9, 0.5]
    assert list(r.rerank(g.profile, g.candidates, base_scores=base, weight=0.0)) == [1, 2, 0]
    with pytest.raises(InvalidInput, match="one score per candidate"):
        r.rerank(g.profile, g.candidates, base_scores=[1.0])
    with pytest.raises(InvalidInput, match="no adapter 'nope'"):
        r.score(g.profile, g.candidates, adapter="nope")


def test_groups_from_view_uses_last_liked_item_and_unseen_negatives():
    # user 0 liked items 0..5 in order; 6..9 unseen
    view = Interactions.from_arrays([0] * 6, list(range(6)), timestamps=list(range(6)),
                                    n_users=1, n_items=10)
    texts = [f"T{k}, G" for k in range(10)]
    (g,) = groups_from_view(view, texts, n_profile=3, negatives=2, seed=0)
    assert g.profile == "The user liked: T2; T3; T4."
    assert sum(g.labels) == 1 and g.candidates[g.labels.index(1)] == "T5, G"
    negs = [c for c, lab in zip(g.candidates, g.labels, strict=True) if lab == 0]
    assert all(int(c[1:].split(",")[0]) >= 6 for c in negs)
    # hard negatives come from the given candidates first
    (h,) = groups_from_view(view, texts, n_profile=3, negatives=2, candidates={0: [9, 1, 8]})
    assert sorted(c for c, lab in zip(h.candidates, h.labels, strict=True) if lab == 0) == \
        ["T8, G", "T9, G"]


def test_bad_parameters_are_refused():
    with pytest.raises(InvalidInput, match="'steps' parameter of LoraReranker"):
        LoraReranker(steps=0).fit(planted_groups(2))
    with pytest.raises(InvalidInput, match="as many labels"):
        RerankGroup("p", ("a", "b"), (1,))
