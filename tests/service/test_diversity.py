"""MMR and rules: λ=1 is the relevance order, λ=0 spreads over categories, caps hold."""

from __future__ import annotations

import numpy as np
import pytest

from personae.errors import InvalidInput
from personae.service.diversity import (
    ItemSimilarity,
    category_matrix,
    freshness_boost,
    mmr,
    rerank,
)

# 24 items in 4 categories of 6; the best-scored items all sit in category 0, then 1, …
CATS = np.repeat(np.arange(4), 6)
SCORES = np.linspace(2.0, 0.5, 24)


def test_lambda_one_is_the_relevance_order() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=50)
    sim = ItemSimilarity.from_features(rng.normal(size=(50, 5)))
    got = mmr(scores, None, sim, lam=1.0, k=10)
    assert got.tolist() == np.argsort(-scores, kind="stable")[:10].tolist()
    cands = rng.choice(50, size=20, replace=False)
    got = mmr(scores, cands, sim, lam=1.0, k=20)
    assert got.tolist() == cands[np.argsort(-scores[cands], kind="stable")].tolist()


def test_lambda_zero_is_maximally_diverse() -> None:
    sim = ItemSimilarity.from_categories(CATS)
    diverse = mmr(SCORES, None, sim, lam=0.0, k=4)
    relevant = mmr(SCORES, None, sim, lam=1.0, k=4)
    # every category once (the least similar set there is), each by its most relevant item
    assert sorted(CATS[diverse].tolist()) == [0, 1, 2, 3]
    assert diverse.tolist() == [0, 6, 12, 18]
    assert set(CATS[relevant].tolist()) == {0}
    # the λ=0 list has the lowest possible mean pairwise similarity
    def mean_sim(items: np.ndarray) -> float:
        S = sim.between(items, items)
        return float(S[np.triu_indices(len(items), 1)].mean())
    assert mean_sim(diverse) == 0.0 < mean_sim(relevant)


def test_intermediate_lambda_trades_off() -> None:
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(200, 8))
    scores = rng.normal(size=200)
    sim = ItemSimilarity.from_features(feats)
    rel, div = [], []
    for lam in (1.0, 0.7, 0.4, 0.0):
        top = mmr(scores, None, sim, lam=lam, k=10)
        rel.append(scores[top].mean())
        S = sim.between(top, top)
        div.append(1 - S[np.triu_indices(10, 1)].mean())
    assert rel == sorted(rel, reverse=True)  # relevance falls as λ falls
    assert div[-1] > div[0]  # and diversity rises


def test_category_caps_are_respected() -> None:
    for cap in (1, 2, 3):
        got = mmr(SCORES, None, None, lam=1.0, k=8, categories=CATS, max_per_category=cap)
        counts = np.bincount(CATS[got], minlength=4)
        assert counts.max() <= cap
        assert len(got) == min(8, 4 * cap)
        # within the caps it is still the relevance order
        assert got.tolist() == sorted(got.tolist())
    # a cap per category; multi-category items count in each
    multi = [[0], [0, 1], [1], [1], [2], [2]]
    got = mmr(np.arange(6, 0, -1.0), None, None, lam=1.0, k=6, categories=multi,
              max_per_category={1: 1})
    assert got.tolist() == [0, 1, 4, 5]  # item 1 uses category 1's only slot: 2 and 3 wait


def test_rerank_applies_exclusions_allowed_and_boost() -> None:
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    assert rerank(scores, k=3, exclude=[0]).tolist() == [1, 2, 3]
    allowed = np.array([True, False, True, True, True])
    assert rerank(scores, k=2, allowed=allowed).tolist() == [0, 2]
    now = 1_700_000_000.0
    created = np.array([now - 400 * 86400, np.nan, now - 300 * 86400, now - 86400, now])
    boost = freshness_boost(created, now, half_life_days=7.0, weight=1.0)
    assert boost[1] == 0.0 and boost[4] == 1.0 and boost[3] == pytest.approx(0.5 ** (1 / 7))
    # scaled relevance is (1, .75, .5, .25, 0); the fresh items 3 and 4 overtake
    assert rerank(scores, k=3, boost=boost).tolist() == [3, 0, 4]
    assert rerank(np.full(3, -np.inf), k=3).size == 0


def test_similarity_kinds_agree() -> None:
    cats = category_matrix([[0, 1], [1], [2], []], n_categories=3)
    sim = ItemSimilarity.from_categories(cats)
    S = sim.between(np.arange(4), np.arange(4))
    assert S[0, 1] == pytest.approx(0.5) and S[0, 2] == 0.0 and S[3, 3] == 0.0
    dense = ItemSimilarity.from_matrix(S)
    np.testing.assert_allclose(dense.between(np.array([0, 2]), np.array([1])), [[0.5], [0.0]])
    vec = ItemSimilarity.from_features(np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert vec.between(np.array([0]), np.array([1]))[0, 0] == pytest.approx(2 ** -0.5)


def test_bad_input() -> None:
    with pytest.raises(InvalidInput, match="lam"):
        mmr(SCORES, None, None, lam=1.5)
    with pytest.raises(InvalidInput, match="similarity"):
        mmr(SCORES, None, None, lam=0.5)
    with pytest.raises(InvalidInput, match="categories"):
        mmr(SCORES, None, None, lam=1.0, max_per_category=2)
    with pytest.raises(InvalidInput, match="candidates"):
        mmr(SCORES, [99], None, lam=1.0)
