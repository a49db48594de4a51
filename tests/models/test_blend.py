"""Blend: the conformance suite, normalisations, weight tuning and nested save/load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.evaluate.metrics import ranking_metrics
from personae.models import Recommender
from personae.models.blend import Blend, _normalize, tune_weights_on_folds
from personae.models.ease import EASE
from personae.models.itemknn import ItemKNN
from personae.models.popularity import Popularity

from .conformance import ModelConformance, checkerboard


class TestBlend(ModelConformance):
    invalid_params = [("models", []), ("models", ["ease"]), ("weights", [1.0]),
                      ("weights", [-1.0, 2.0]), ("weights", [0.0, 0.0]),
                      ("normalize", "softmax"), ("refit", "no")]

    def make_model(self, **params: Any) -> Blend:
        defaults: dict[str, Any] = {
            "models": [("ease", {"l2": 1.0}), ItemKNN(k=10)], "weights": [0.7, 0.3]}
        return Blend(**{**defaults, **params})


class TestBlendRankWithPopularity(TestBlend):
    def make_model(self, **params: Any) -> Blend:
        defaults: dict[str, Any] = {
            "models": [("ease", {"l2": 1.0}), ("popularity", {})], "weights": [0.8, 0.2],
            "normalize": "rank"}
        return Blend(**{**defaults, **params})


def test_normalisations_ignore_seen_items() -> None:
    S = np.array([[100.0, 1.0, 2.0, 3.0]], dtype=np.float32)
    seen = np.array([[True, False, False, False]])
    np.testing.assert_allclose(_normalize(S.copy(), seen, "minmax")[0, 1:], [0, 0.5, 1])
    z = _normalize(S.copy(), seen, "zscore")[0, 1:]
    np.testing.assert_allclose(z, (np.array([1, 2, 3]) - 2) / np.std([1, 2, 3]), rtol=1e-6)
    np.testing.assert_allclose(_normalize(S.copy(), seen, "rank")[0, 1:], [0, 0.5, 1])
    # a constant row maps to zeros, not NaN
    flat = _normalize(np.ones((1, 3), np.float32), np.zeros((1, 3), bool), "minmax")
    assert np.array_equal(flat, np.zeros((1, 3)))


def test_single_member_blend_ranks_like_the_member() -> None:
    data = checkerboard()
    ease = EASE(l2=1.0).fit(data)
    blend = Blend([ease], refit=False).fit(data)
    assert blend.members_[0] is ease
    for u in range(5):
        assert blend.recommend(u, k=4).items.tolist() == ease.recommend(u, k=4).items.tolist()


def test_refit_false_checks_the_data() -> None:
    data = checkerboard()
    other = EASE(l2=1.0).fit(data.matrix[:, :20])
    with pytest.raises(InvalidInput, match="fingerprint"):
        Blend([other], refit=False).fit(data)
    # refit=True fits a copy and leaves the given object alone
    fresh = EASE(l2=1.0)
    Blend([fresh]).fit(data)
    assert not hasattr(fresh, "B_")


def _held_out(X: sp.csr_matrix, nth: int, users: range | None = None) -> sp.csr_matrix:
    """Per user, the ``nth`` unseen item of their group: only a personalised model finds it."""
    rows, cols = [], []
    for u in users if users is not None else range(X.shape[0]):
        seen = set(X.indices[X.indptr[u]:X.indptr[u + 1]].tolist())
        cols.append([i for i in range(u % 2, X.shape[1], 2) if i not in seen][nth])
        rows.append(u)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=X.shape)


def test_tune_weights_prefers_the_personalised_model() -> None:
    data = checkerboard()
    V = _held_out(data.matrix, 0)
    blend = Blend([("popularity", {}), ("ease", {"l2": 1.0})], weights=[0.9, 0.1]).fit(data)
    blend.tune_weights(V, k=5, step=0.25)
    assert blend.weights_[1] >= 0.5
    assert blend.tuned_score_ is not None and blend.tuned_score_ > 0.3
    again = Blend([("popularity", {}), ("ease", {"l2": 1.0})]).fit(data).tune_weights(
        V, k=5, step=0.25)
    np.testing.assert_array_equal(again.weights_, blend.weights_)
    with pytest.raises(InvalidInput, match="step"):
        Blend([("ease", {}), ("itemknn", {}), ("popularity", {}), ("ease", {"l2": 9.0})]).fit(
            data).tune_weights(V, step=0.001)


def test_save_load_keeps_members_and_tuned_weights(tmp_path: Path) -> None:
    data = checkerboard()
    blend = Blend([EASE(l2=1.0), ("popularity", {"shrinkage": 5.0})]).fit(data)
    blend.weights_ = np.array([0.25, 0.75])
    folder = blend.save(tmp_path / "blend")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["params"]["models"] == [["ease", EASE(l2=1.0).get_params()],
                                        ["popularity", Popularity(shrinkage=5.0).get_params()]]
    assert (folder / "member_0" / "model.json").exists()
    loaded = Recommender.load(folder)
    assert isinstance(loaded, Blend)
    np.testing.assert_array_equal(loaded.weights_, [0.25, 0.75])
    np.testing.assert_array_equal(loaded.score_users([0, 1]), blend.score_users([0, 1]))


def test_abilities_follow_the_members() -> None:
    assert Blend([("ease", {}), ("popularity", {})]).scores_histories
    assert Blend([("ease", {}), ("popularity", {})]).uses_context
    assert not Blend([("ease", {})]).uses_context


MEMBERS = [("popularity", {}), ("ease", {"l2": 1.0})]


def test_tune_weights_on_one_fold_is_tune_weights() -> None:
    data = checkerboard()
    V = _held_out(data.matrix, 0)
    weights, score = tune_weights_on_folds(MEMBERS, [(data, V)], normalize="zscore", k=5,
                                           step=0.25)
    blend = Blend(MEMBERS, normalize="zscore").fit(data).tune_weights(V, k=5, step=0.25)
    np.testing.assert_array_equal(weights, blend.weights_)
    assert score == pytest.approx(blend.tuned_score_, rel=1e-12)


def test_tune_weights_on_folds_pools_the_users_of_every_fold() -> None:
    """The returned score is the NDCG of the chosen weights over both folds' users together
    (a fold of 40 users weighs four times a fold of 10), recomputed here from the blend's own
    recommendations."""
    data = checkerboard()
    X = data.matrix
    folds = [(X, _held_out(X, 0)), (X, _held_out(X, 1, range(10)))]
    weights, score = tune_weights_on_folds(MEMBERS, folds, k=5, step=0.25)
    assert weights.sum() == pytest.approx(1.0) and weights[1] >= 0.5
    total, n = _pooled_ndcg5(MEMBERS, weights, folds)
    assert n == 50
    assert score == pytest.approx(total / n, rel=1e-6)


def _pooled_ndcg5(members: list[Any], weights: np.ndarray,
                  folds: list[tuple[Any, sp.csr_matrix]]) -> tuple[float, int]:
    """NDCG@5 of a blend with these weights, summed over every fold's validation users (from
    its own recommendations), and the number of those users."""
    total, n = 0.0, 0
    for train, V in folds:
        users = np.flatnonzero(np.diff(V.indptr))
        items, _ = Blend(members, weights=weights).fit(train).recommend_batch(users, k=5)
        total += float(ranking_metrics(items, V[users], (5,))["ndcg@5"].sum())
        n += users.size
    return total, n


def test_tune_weights_on_folds_refuses_bad_folds() -> None:
    data = checkerboard()
    with pytest.raises(InvalidInput, match="'folds'"):
        tune_weights_on_folds(MEMBERS, [])
    with pytest.raises(InvalidInput, match="'folds'"):
        tune_weights_on_folds(MEMBERS, [data])
    with pytest.raises(InvalidInput, match="validation must have shape"):
        tune_weights_on_folds(MEMBERS, [(data, sp.csr_matrix((3, 3)))])


@pytest.mark.parametrize("anti", [False, True])
def test_grid_on_candidates_ranks_as_every_item(anti: bool) -> None:
    """The weight search ranks only each row's candidates (the members' best items) and falls
    back to every item where a bound says the candidates may miss one; its NDCG totals must be
    those of ranking every item. ``anti``: members that disagree (one ranks by x, one by -x), so
    that the blend's best items are in no member's best and the fallback has to work."""
    from personae.models.blend import _grid, _grid_totals, _ndcg_sum, _weighted
    from personae.models.topk import topk

    rng = np.random.default_rng(11)
    n_rows, n_items, k = 60, 400, 5
    x = rng.normal(size=(n_rows, n_items))
    parts = [x + 0.3 * rng.normal(size=x.shape),
             (-x if anti else x) + 0.3 * rng.normal(size=x.shape),
             rng.normal(size=x.shape)]
    if anti:  # the middle of both, where neither member looks, is what the rows hold
        parts[2] = -np.abs(x) + 0.1 * rng.normal(size=x.shape)
    parts = [p.astype(np.float32) for p in parts]
    exclude = rng.random((n_rows, n_items)) < 0.2
    exclude[0, 3:] = True  # a row with fewer allowed items than k
    best = np.argsort(-np.abs(x) if not anti else np.abs(x), axis=1)[:, :8]
    truth = np.zeros((n_rows, n_items), dtype=bool)
    np.put_along_axis(truth, best, True, axis=1)
    truth &= ~exclude
    truth[0, :3] = True
    T = sp.csr_matrix(truth.astype(np.float32))
    grid = _grid(3, 0.1)
    got = _grid_totals(parts, exclude, T, grid, k)
    want = [_ndcg_sum(topk(_weighted(parts, w), k, exclude=exclude)[0], T, k) for w in grid]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert max(want) > 0


def test_fitting_step_is_the_finest_doubling_whose_grid_can_be_searched() -> None:
    from personae.models.blend import _MAX_GRID, _grid, fitting_step

    assert fitting_step(4, 0.05) == 0.05  # 1,771 vectors: searched as asked
    step = fitting_step(6, 0.05)  # 53,130 vectors at 0.05: too many
    assert step == 0.1
    assert len(_grid(6, step)) <= _MAX_GRID
    with pytest.raises(InvalidInput, match="larger step"):
        _grid(6, step / 2)


def test_plateau_takes_the_mean_of_the_near_best_weights() -> None:
    data = checkerboard()
    X = data.matrix
    folds = [(X, _held_out(X, 0)), (X, _held_out(X, 1))]
    members = [("popularity", {}), ("ease", {"l2": 1.0}), ("itemknn", {"k": 5})]
    best, best_score = tune_weights_on_folds(members, folds, k=5, step=0.25)
    # every vector of the grid, scored as the function scores them
    grids = [Blend(members).fit(t)._grid_ndcg(v, k=5, step=0.25) for t, v in folds]
    grid = grids[0][0]
    mean_ndcg = sum(g[1] for g in grids) / sum(g[2] for g in grids)
    assert best_score == pytest.approx(mean_ndcg.max(), rel=1e-12)
    np.testing.assert_array_equal(best, grid[int(np.argmax(mean_ndcg))])
    # a plateau wider than every score: the centre of the whole grid, scored for itself
    centre, centre_score = tune_weights_on_folds(members, folds, k=5, step=0.25, plateau=1.0)
    np.testing.assert_allclose(centre, [1 / 3, 1 / 3, 1 / 3])
    total, n = _pooled_ndcg5(members, centre, folds)
    assert centre_score == pytest.approx(total / n, rel=1e-6)
    # a narrow plateau holds some of the vectors (here those tied at the top): their mean
    near = [grid[j] for j in np.flatnonzero(mean_ndcg >= mean_ndcg.max() - 1e-6)]
    assert 1 < len(near) < len(grid)
    w, _ = tune_weights_on_folds(members, folds, k=5, step=0.25, plateau=1e-6)
    np.testing.assert_allclose(w, np.mean(near, axis=0))
    assert w.sum() == pytest.approx(1.0) and not np.allclose(w, best)
    # one fold: Blend.tune_weights chooses the same
    w1, s1 = tune_weights_on_folds(members, folds[:1], k=5, step=0.25, plateau=1.0)
    blend = Blend(members).fit(X).tune_weights(folds[0][1], k=5, step=0.25, plateau=1.0)
    np.testing.assert_allclose(blend.weights_, w1)
    assert blend.tuned_score_ == pytest.approx(s1, rel=1e-12)
    for bad in (-0.1, float("nan"), "wide", True):
        with pytest.raises(InvalidInput, match="plateau"):
            tune_weights_on_folds(members, folds, k=5, step=0.25, plateau=bad)
