"""The runner: exclusions, hand-checked numbers, buckets, tuning on validation only, output."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.evaluate import Split, evaluate, random_holdout, table_text, tune, tune_and_evaluate
from personae.models.base import Recommender

FITTED_ON: list[sp.csr_matrix] = []


class Pop(Recommender):
    """Popularity times ``factor``, ties broken towards lower item indices."""

    name = "test-pop"

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        FITTED_ON.append(X)
        counts = np.asarray((X > 0).sum(axis=0)).ravel().astype(np.float32)
        self.scores_ = self.factor * counts - 0.01 * np.arange(X.shape[1], dtype=np.float32)

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return np.tile(self.scores_, (users.size, 1))

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), 4.0)


def csr(rows: list[list[int]], n_items: int = 5) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for u, items in enumerate(rows):
        dense[u, items] = 1.0
    return sp.csr_matrix(dense)


def same(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return a.shape == b.shape and abs(a - b).nnz == 0


def hand_split() -> Split:
    ids = np.array(["u0", "u1", "u2"], dtype=object)
    items = np.array([f"i{k}" for k in range(5)], dtype=object)
    validation = Split("hand-validation", csr([[0], [0], [0, 1]]), csr([[1], [], []]), ids,
                       items)
    ratings = csr([[0, 1, 2], [0, 2, 3], [0]]) * 5.0
    return Split("hand", csr([[0, 1], [0, 2], [0]]), csr([[2], [3], []]), ids, items,
                 validation=validation, ratings=sp.csr_matrix(ratings))


def test_evaluate_matches_the_hand_computed_ranking() -> None:
    # Popularity: item 0 (3 users) > 1 > 2 (1 user each, by index) > 3 > 4.
    # u0 excludes {0, 1} → [2, 3, 4]: test item 2 first. u1 excludes {0, 2} → [1, 3, 4]:
    # test item 3 second. u2 has no test item and is not evaluated.
    result = evaluate(Pop(), hand_split(), ks=(1, 5))
    assert result.n_users == 2
    m = result.metrics
    assert m["hitrate@1"] == pytest.approx(0.5)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert m["mrr@5"] == pytest.approx(0.75)
    assert m["precision@5"] == pytest.approx(0.2)
    assert m["coverage@1"] == pytest.approx(2 / 5)  # items 2 and 1
    # every test pair has rating 5, the model says 4
    assert m["rmse"] == pytest.approx(1.0) and m["mae"] == pytest.approx(1.0)
    assert result.buckets == {"1-5": {"n_users": 2, **{
        k: pytest.approx(v) for k, v in m.items()
        if "@" in k and not k.startswith(("coverage", "gini", "novelty"))}}}
    assert result.fit_seconds >= 0 and result.recommend_seconds >= 0
    assert result.peak_memory_bytes and result.peak_memory_bytes > 0


class PopWithoutRatings(Pop):
    """Has ``predict_ratings`` whose rating part is switched off (as a two-tower model fit
    without its rating head): calling it fails."""

    name = "test-pop-no-ratings"
    predicts_ratings = False

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise AssertionError("predict_ratings called although predicts_ratings is False")


def test_a_model_that_says_it_predicts_no_ratings_gets_no_rmse() -> None:
    result = evaluate(PopWithoutRatings(), hand_split(), ks=(1, 5))
    assert "rmse" not in result.metrics and "mae" not in result.metrics
    assert result.metrics["hitrate@1"] == pytest.approx(0.5)


def test_training_items_are_never_recommended() -> None:
    rng = np.random.default_rng(3)
    view = Interactions.from_arrays(rng.integers(0, 30, 400), rng.integers(0, 25, 400))
    split = random_holdout(view)
    model = Pop().fit(split.train)
    from personae.evaluate.runner import _recommend

    users = split.test_users()
    recs = _recommend(model, split, users, 20, batch_size=7)
    train_rows = split.train[users].toarray().astype(bool)
    picked = np.take_along_axis(train_rows, np.maximum(recs, 0), axis=1) & (recs >= 0)
    assert not picked.any()
    # every user's list holds all its non-training items when the catalogue is small
    assert ((recs >= 0).sum(axis=1) == np.minimum(20, 25 - train_rows.sum(axis=1))).all()


def test_candidates_restrict_the_ranking() -> None:
    s = hand_split()
    cold = Split("cold", s.train, s.test, s.user_ids, s.item_ids,
                 candidates=np.array([False, False, False, True, True]))
    result = evaluate(Pop(), cold, ks=(2,))
    # u0's test item 2 is not a candidate; u1 gets [3, 4]: hit at 1.
    assert result.metrics["hitrate@2"] == pytest.approx(0.5)
    assert result.metrics["coverage@2"] == pytest.approx(1.0)  # 2 of 2 candidates


def test_tuning_uses_validation_only_and_tests_once() -> None:
    split = hand_split()
    FITTED_ON.clear()
    tuning, result = tune_and_evaluate(Pop, {"factor": [-1.0, 1.0]}, split)
    # On validation u0 (train {0}) must find item 1: factor 1 ranks it first (NDCG 1), factor
    # -1 fourth (1/log2(5)).
    assert tuning.best_params == {"factor": 1.0}
    assert [t["params"] for t in tuning.trials] == [{"factor": -1.0}, {"factor": 1.0}]
    assert tuning.trials[0]["ndcg@10"] == pytest.approx(1 / math.log2(5))
    assert tuning.best_score == pytest.approx(1.0)
    on_test = [X for X in FITTED_ON if same(X, split.train)]
    on_val = [X for X in FITTED_ON if same(X, split.validation.train)]
    assert len(on_test) == 1 and len(on_val) == 2 and len(FITTED_ON) == 3
    assert result.params == {"factor": 1.0}


def test_random_search_is_deterministic_and_budget_stops_it() -> None:
    split = hand_split()
    grid = {"factor": [-2.0, -1.0, 0.5, 1.0, 2.0]}
    a = tune(Pop, grid, split, search="random", n_iter=3, seed=4)
    b = tune(Pop, grid, split, search="random", n_iter=3, seed=4)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    assert len(a.trials) == 3
    budget = tune(Pop, grid, split, time_budget_s=0.0)
    assert len(budget.trials) == 1 and budget.stopped_by_budget
    no_val = Split("x", split.train, split.test, split.user_ids, split.item_ids)
    with pytest.raises(InvalidInput, match="no validation"):
        tune(Pop, grid, no_val)


def test_result_json_and_table() -> None:
    result = evaluate(Pop(), hand_split(), ks=(5, 10), memory="none")
    data = json.loads(result.to_json())
    assert data["metrics"]["ndcg@10"] == pytest.approx(result.metrics["ndcg@10"])
    assert data["split"]["n_test"] == 2 and data["peak_memory_bytes"] is None
    assert data["params"] == {"factor": 1.0}
    text = table_text([result], k=10)
    assert "test-pop" in text and "ndcg@10" in text and "hand/test" in text


def test_a_model_fit_elsewhere_is_refused() -> None:
    model = Pop().fit(csr([[0]], n_items=4))
    with pytest.raises(InvalidInput, match="fit it on split.train"):
        evaluate(model, hand_split(), fit=False)


def test_ease_on_p1_if_available() -> None:
    ease = pytest.importorskip("personae.models.ease")
    rng = np.random.default_rng(0)
    # two planted groups: users < 20 like items < 10, the others items >= 10
    users, items = [], []
    for u in range(40):
        pool = np.arange(10) if u < 20 else np.arange(10, 20)
        for i in rng.choice(pool, 6, replace=False):
            users.append(u)
            items.append(int(i))
    split = random_holdout(Interactions.from_arrays(users, items))
    result = evaluate(ease.EASE(), split, ks=(5,))
    assert result.metrics["hitrate@5"] > 0.9


def test_a_model_that_reads_event_order_is_fit_on_the_timed_training_view() -> None:
    from personae.models.blend import Blend
    from personae.models.ease import EASE

    rng = np.random.default_rng(5)
    n = 800
    view = Interactions.from_arrays(rng.integers(0, 40, n), rng.integers(0, 25, n),
                                    timestamps=rng.permutation(n).astype(float))
    split = random_holdout(view)
    params = {"l2": 2.0, "sequence_window": 3}
    model = EASE(**params)
    assert model.uses_event_order
    result = evaluate(model, split, ks=(10,), memory="none")
    np.testing.assert_allclose(model.B_, EASE(**params).fit(split.train_view()).B_)
    # the order changed what was learnt: the same pairs without it give other weights
    assert not np.allclose(model.B_, EASE(l2=2.0).fit(split.train).B_)
    assert result.n_users == split.test_users().size
    blend = Blend([("ease", params), ("ease", {"l2": 2.0})])
    assert blend.uses_event_order and not Blend([("ease", {"l2": 2.0})]).uses_event_order
    evaluate(blend, split, ks=(10,), memory="none")
    np.testing.assert_allclose(blend.members_[0].B_, model.B_)
