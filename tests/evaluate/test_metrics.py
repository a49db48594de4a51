"""Metrics against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.evaluate import (
    beyond_accuracy,
    coverage,
    gini,
    intra_list_diversity,
    item_popularity,
    mae,
    novelty,
    ranking_metrics,
    rmse,
)

# Three users, six items. A: test {1, 3}, list [1, 2, 3, 4, 5]. B: test {4}, a short list
# [0, 2, 4] (padded with -1). C: no test item, so C is left out.
RECS = np.array([[1, 2, 3, 4, 5], [0, 2, 4, -1, -1], [0, 1, 2, 3, 4]])
TEST = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0]]))

LOG3 = math.log2(3)
# A: hits at 1 and 3. DCG = 1 + 1/log2(4) = 1.5; ideal over min(2, K) = 2 slots: 1 + 1/log2(3).
NDCG_A = 1.5 / (1 + 1 / LOG3)  # 0.9197...
# B: hit at 3. DCG = 1/log2(4) = 0.5; ideal over min(1, K) = 1 slot: 1.
EXPECTED = {
    1: {"recall": [0.5, 0.0], "precision": [1.0, 0.0], "ndcg": [1.0, 0.0], "map": [1.0, 0.0],
        "hitrate": [1.0, 0.0], "mrr": [1.0, 0.0]},
    3: {"recall": [1.0, 1.0], "precision": [2 / 3, 1 / 3], "ndcg": [NDCG_A, 0.5],
        # AP_A = (P@1 + P@3) / min(2, 3) = (1 + 2/3) / 2; AP_B = P@3 / 1 = 1/3
        "map": [5 / 6, 1 / 3], "hitrate": [1.0, 1.0], "mrr": [1.0, 1 / 3]},
    # K = 5 and 10 reach past B's three items (and 10 past every list): misses; Precision
    # still divides by K.
    5: {"recall": [1.0, 1.0], "precision": [2 / 5, 1 / 5], "ndcg": [NDCG_A, 0.5],
        "map": [5 / 6, 1 / 3], "hitrate": [1.0, 1.0], "mrr": [1.0, 1 / 3]},
    10: {"recall": [1.0, 1.0], "precision": [2 / 10, 1 / 10], "ndcg": [NDCG_A, 0.5],
         "map": [5 / 6, 1 / 3], "hitrate": [1.0, 1.0], "mrr": [1.0, 1 / 3]},
}


def test_ranking_metrics_match_the_hand_computed_example() -> None:
    assert abs(NDCG_A - 0.919720) < 1e-6
    out = ranking_metrics(RECS, TEST, ks=(1, 3, 5, 10))
    assert out["users"].tolist() == [0, 1]  # C has no test item
    for k, by_metric in EXPECTED.items():
        for name, values in by_metric.items():
            np.testing.assert_allclose(out[f"{name}@{k}"], values, err_msg=f"{name}@{k}")


def test_ndcg_ideal_dcg_is_over_min_test_and_k() -> None:
    # Four test items, K = 2, both slots hit: NDCG = 1 (ideal over 2 slots, not 4); MAP = 1.
    test = sp.csr_matrix(np.array([[1, 1, 1, 1, 0]]))
    out = ranking_metrics(np.array([[0, 1, 4]]), test, ks=(2,))
    assert out["ndcg@2"][0] == pytest.approx(1.0)
    assert out["map@2"][0] == pytest.approx(1.0)
    assert out["recall@2"][0] == pytest.approx(0.5)


def test_ranking_metrics_reject_bad_input() -> None:
    with pytest.raises(InvalidInput, match="one row per test row"):
        ranking_metrics(RECS[:2], TEST)
    with pytest.raises(InvalidInput, match="K must be"):
        ranking_metrics(RECS, TEST, ks=(0,))


def test_rating_errors_by_hand() -> None:
    # errors -1, 0, 2: MSE = 5/3, MAE = 1
    assert rmse([3, 4, 5], [4, 4, 3]) == pytest.approx(math.sqrt(5 / 3))
    assert mae([3, 4, 5], [4, 4, 3]) == pytest.approx(1.0)
    assert math.isnan(rmse([], []))
    with pytest.raises(InvalidInput):
        mae([1, 2], [1])


# Beyond accuracy: four items; lists A = [0, 1], B = [0, 2]. Training: item 0 is used by 2 of 4
# users, item 1 by 1, item 2 by all 4, item 3 by none (counted as 1).
LISTS = np.array([[0, 1], [0, 2]])
TRAIN = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0]]))
CATEGORIES = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]))  # x y z


def test_coverage_gini_novelty_by_hand() -> None:
    assert coverage(LISTS, 4, 2) == pytest.approx(3 / 4)
    # exposure [2, 1, 1, 0] sorted [0, 1, 1, 2]: Σ (2i − 5) c = 0 − 1 + 1 + 6 = 6; 6 / (4 · 4)
    assert gini(np.array([2, 1, 1, 0])) == pytest.approx(0.375)
    assert gini(np.array([3, 3, 3])) == pytest.approx(0.0)
    pop = item_popularity(TRAIN)
    np.testing.assert_allclose(pop, [0.5, 0.25, 1.0, 0.25])
    # A: (1 + 2) / 2 = 1.5; B: (1 + 0) / 2 = 0.5; mean 1.0
    assert novelty(LISTS, pop, 2) == pytest.approx(1.0)


def test_intra_list_diversity_by_hand() -> None:
    # A: J({x,y}, {y}) = 1/2 → 0.5; B: J({x,y}, {z}) = 0 → 1; mean 0.75
    assert intra_list_diversity(LISTS, CATEGORIES, 2) == pytest.approx(0.75)
    # [0, 1, 2]: distances 0.5, 1, 1 → 2.5 / 3; item 3 has no category: J = 0 → distance 1.
    assert intra_list_diversity(np.array([[0, 1, 2]]), CATEGORIES, 3) == pytest.approx(2.5 / 3)
    assert intra_list_diversity(np.array([[3, 3]]), CATEGORIES, 2) == pytest.approx(1.0)
    # a one-item list (the rest padding) has no pair and is left out
    assert math.isnan(intra_list_diversity(np.array([[0, -1]]), CATEGORIES, 2))


def test_beyond_accuracy_bundles_every_k() -> None:
    out = beyond_accuracy(LISTS, TRAIN, ks=(1, 2), categories=CATEGORIES)
    assert out["coverage@1"] == pytest.approx(1 / 4)  # only item 0 in anyone's top 1
    assert out["gini@1"] == pytest.approx(0.75)  # [0, 0, 0, 2]: 3·2 / (4·2)
    assert out["coverage@2"] == pytest.approx(3 / 4)
    assert out["gini@2"] == pytest.approx(0.375)
    assert out["novelty@2"] == pytest.approx(1.0)
    assert out["diversity@2"] == pytest.approx(0.75)
