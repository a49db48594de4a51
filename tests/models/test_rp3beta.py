"""RP3beta: the conformance suite, the random walk against hand computations, pruning, blocks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models.rp3beta import RP3beta

from .conformance import ModelConformance, checkerboard


class TestRP3beta(ModelConformance):
    invalid_params = [("alpha", 0.0), ("alpha", -1.0), ("alpha", "one"), ("beta", -0.1),
                      ("beta", float("nan")), ("k", 0), ("k", 2.5), ("k", True)]

    def make_model(self, **params: Any) -> RP3beta:
        return RP3beta(**{"k": 10, **params})


class TestRP3betaUnpruned(TestRP3beta):
    def make_model(self, **params: Any) -> RP3beta:
        return RP3beta(**{"alpha": 0.6, "beta": 0.3, "k": 1000, **params})


# two users, three items: item 1 is shared, items 0 and 2 are one user's each
TINY = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))


def test_hand_computed_walk() -> None:
    """P_ui = [[.5, .5, 0], [0, .5, .5]]; P_iu: item 0 → user 0, item 1 → each user .5,
    item 2 → user 1. Rows of W (before the diagonal is cleared): W_0 = P_u0 = [.5, .5, 0],
    W_1 = .5 P_u0 + .5 P_u1 = [.25, .5, .25], W_2 = P_u1 = [0, .5, .5]."""
    W = RP3beta(alpha=1.0, beta=0.0, k=10).fit(TINY).similarity_.toarray()
    np.testing.assert_allclose(W, [[0, .5, 0], [.25, 0, .25], [0, .5, 0]])
    # beta = 1 divides column j by its popularity (1, 2, 1 users)
    W = RP3beta(alpha=1.0, beta=1.0, k=10).fit(TINY).similarity_.toarray()
    np.testing.assert_allclose(W, [[0, .25, 0], [.25, 0, .25], [0, .25, 0]])
    # alpha = 2 squares both transition probabilities: W_10 = .5² · .5² = .0625
    W = RP3beta(alpha=2.0, beta=0.0, k=10).fit(TINY).similarity_.toarray()
    np.testing.assert_allclose(W, [[0, .25, 0], [.0625, 0, .0625], [0, .25, 0]])
    # user 0's scores: rows 0 and 1 of W (beta = 1) added
    model = RP3beta(alpha=1.0, beta=1.0, k=10).fit(TINY)
    np.testing.assert_allclose(model.score_users([0])[0], [.25, .25, .25])


def _dense_rp3beta(X: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """W of the module docstring, written out; empty users and items count as degree 1."""
    P_ui = X / np.maximum(X.sum(axis=1, keepdims=True), 1e-300)
    P_iu = (X / np.maximum(X.sum(axis=0, keepdims=True), 1e-300)).T
    W = (P_iu ** alpha) @ (P_ui ** alpha) / np.maximum((X > 0).sum(axis=0), 1) ** beta
    np.fill_diagonal(W, 0.0)
    return W


def test_matches_the_dense_definition_on_weighted_data() -> None:
    rng = np.random.default_rng(3)
    X = (rng.random((30, 12)) < 0.4) * rng.integers(1, 5, (30, 12)).astype(np.float64)
    X[:, 0] = 0.0  # an item nobody has: an all-zero row and column, no division by zero
    X[0] = 0.0  # a user without interactions
    X[1, 1] = 1.0
    model = RP3beta(alpha=0.7, beta=0.4, k=100).fit(sp.csr_matrix(X))
    expected = _dense_rp3beta(X, 0.7, 0.4)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.score_users(np.arange(30)), X @ expected, rtol=1e-4,
                               atol=1e-6)


def test_each_row_keeps_its_k_largest() -> None:
    X = checkerboard().matrix
    full = RP3beta(beta=0.3, k=1000).fit(X).similarity_.toarray()
    pruned = RP3beta(beta=0.3, k=3).fit(X).similarity_
    assert (np.diff(pruned.indptr) <= 3).all()
    for i in range(X.shape[1]):
        row = pruned[i].toarray().ravel()
        np.testing.assert_allclose(np.sort(row)[-3:], np.sort(full[i])[-3:], rtol=1e-6)
        assert set(np.flatnonzero(row)) <= set(np.flatnonzero(full[i]))


def test_blocks_give_the_one_block_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import personae.models.rp3beta as rp3beta

    X = checkerboard().matrix
    whole = RP3beta(alpha=0.8, beta=0.5, k=7).fit(X).similarity_
    monkeypatch.setattr(rp3beta, "_BLOCK_CELLS", 4 * X.shape[1])  # 4 rows a block
    blocked = RP3beta(alpha=0.8, beta=0.5, k=7).fit(X).similarity_
    assert (whole != blocked).nnz == 0


def test_fold_in_of_a_training_history_gives_the_users_scores() -> None:
    model = RP3beta(k=10).fit(checkerboard())
    X = model.user_items_
    np.testing.assert_array_equal(model.score_histories(X[[3, 4]]), model.score_users([3, 4]))
    row = X[5]
    np.testing.assert_allclose(model.score_history(row.indices), model.score_users([5])[0],
                               rtol=1e-6)


def test_similar_items_reads_the_row() -> None:
    model = RP3beta(k=10).fit(checkerboard())
    recs = model.similar_items(0, k=4)
    assert len(recs) == 4
    assert 0 not in recs.items and (recs.items % 2 == 0).all()
    assert np.all(np.diff(recs.scores) <= 0)
    row = model.similarity_[0].toarray().ravel()
    np.testing.assert_allclose(recs.scores, row[recs.items])
    with pytest.raises(InvalidInput, match="item must be an index"):
        model.similar_items(30)


def test_error_names_the_parameter_and_the_value() -> None:
    with pytest.raises(InvalidInput, match=r"The 'beta' parameter of RP3beta must be a float "
                                           r">= 0\. Got -1 instead\."):
        RP3beta(beta=-1).fit(TINY)
