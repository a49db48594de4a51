"""ItemKNN: the conformance suite, similarities against hand computations, top-k pruning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models.itemknn import ItemKNN, bm25_weight

from .conformance import ModelConformance, checkerboard


class TestItemKNN(ModelConformance):
    invalid_params = [("similarity", "jaccard"), ("k", 0), ("k", 2.5), ("shrinkage", -1.0),
                      ("alpha", 1.5), ("beta", -0.1), ("bm25_k1", 0.0), ("bm25_b", 2.0)]

    def make_model(self, **params: Any) -> ItemKNN:
        return ItemKNN(**{"k": 10, **params})


class TestItemKNNBM25(TestItemKNN):
    def make_model(self, **params: Any) -> ItemKNN:
        return ItemKNN(**{"k": 10, "similarity": "bm25", "shrinkage": 2.0, **params})


class TestItemKNNTfidf(TestItemKNN):
    def make_model(self, **params: Any) -> ItemKNN:
        return ItemKNN(**{"k": 10, "similarity": "tfidf", "beta": 0.3, **params})


# users × items; item 0 and 1 share two users, item 2 shares one with item 1
X = sp.csr_matrix(np.array([
    [1, 1, 0, 0],
    [1, 1, 1, 0],
    [0, 0, 1, 1],
    [1, 0, 0, 1],
], dtype=np.float32))


def _dense_cosine(M: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(M, axis=0)
    S = (M.T @ M) / np.outer(norms, norms)
    np.fill_diagonal(S, 0.0)
    return S


def test_cosine_is_the_cosine() -> None:
    model = ItemKNN(k=10).fit(X)
    np.testing.assert_allclose(model.similarity_.toarray(), _dense_cosine(X.toarray()),
                               rtol=1e-6)


def test_shrinkage_scales_by_co_counts() -> None:
    model = ItemKNN(k=10, shrinkage=2.0).fit(X)
    M = X.toarray()
    C = M.T @ M
    np.testing.assert_allclose(model.similarity_.toarray(), _dense_cosine(M) * C / (C + 2.0),
                               rtol=1e-6)


def test_top_k_per_target_column() -> None:
    model = ItemKNN(k=1).fit(X)
    S = model.similarity_
    assert (np.diff(S.tocsc().indptr) <= 1).all()
    full = _dense_cosine(X.toarray())
    for j in range(4):
        col = S[:, [j]].toarray().ravel()
        assert col.max() == pytest.approx(full[:, j].max())


def test_scores_are_history_times_similarity() -> None:
    model = ItemKNN(k=10).fit(X)
    H = sp.csr_matrix(np.array([[1, 0, 2, 0]], dtype=np.float32))
    expected = H.toarray() @ model.similarity_.toarray()
    np.testing.assert_allclose(model.score_histories(H), expected, rtol=1e-6)


def test_bm25_matches_the_formula() -> None:
    M = np.array([[3.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    out = bm25_weight(sp.csr_matrix(M), K1=1.2, B=0.75).toarray()
    idf = np.log(2) - np.log1p((M > 0).sum(axis=0))
    lengths = M.sum(axis=1)
    norm = 0.25 + 0.75 * lengths / lengths.mean()
    expected = np.where(M > 0, M * 2.2 / (1.2 * norm[:, None] + M) * idf, 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_similar_items() -> None:
    model = ItemKNN(k=10).fit(checkerboard())
    recs = model.similar_items(0, k=5)
    assert len(recs) == 5
    assert 0 not in recs.items
    assert (recs.items % 2 == 0).all()
    assert np.all(np.diff(recs.scores) <= 0)
    with pytest.raises(InvalidInput):
        model.similar_items(99)


@pytest.mark.parametrize(("similarity", "k", "beta"),
                         [("cosine", 5, 0.0), ("cosine", 30, 0.4), ("bm25", 8, 0.0),
                          ("tfidf", 3, 0.7)])
def test_implicit_fast_path_keeps_the_same_neighbours(
        monkeypatch: pytest.MonkeyPatch, similarity: str, k: int, beta: float) -> None:
    """The all-pairs kNN of ``implicit`` and the blockwise numpy path agree column by column
    (the values kept; among exactly tied neighbours either may be chosen)."""
    pytest.importorskip("implicit")
    import personae.models.itemknn as itemknn

    rng = np.random.default_rng(7)
    M = sp.random(120, 60, density=0.15, format="csr", random_state=rng, dtype=np.float32)
    M.data = rng.integers(1, 4, M.nnz).astype(np.float32)
    fast = ItemKNN(similarity=similarity, k=k, beta=beta).fit(M).similarity_
    monkeypatch.setattr(itemknn, "_symmetric_knn", lambda *args: None)
    slow = ItemKNN(similarity=similarity, k=k, beta=beta).fit(M).similarity_
    assert fast.nnz == slow.nnz
    assert (np.diff(fast.tocsc().indptr) <= k).all()
    assert fast.diagonal().max() == 0.0
    top = min(k, 59)
    np.testing.assert_allclose(np.sort(fast.toarray(), axis=0)[-top:],
                               np.sort(slow.toarray(), axis=0)[-top:], rtol=1e-4, atol=1e-6)


def test_implicit_fast_path_with_twin_items_keeps_k_neighbours(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Items with identical columns tie with themselves at cosine 1, so an item can be left out
    of its own k + 1 nearest by ``implicit`` and come back with k + 1 others: the fast path
    must drop the weakest (and keep what the blockwise path keeps)."""
    pytest.importorskip("implicit")
    import personae.models.itemknn as itemknn

    rng = np.random.default_rng(3)
    base = (rng.random((40, 12)) < 0.3).astype(np.float32)
    base[:, :4] = base[:, [0]]  # items 0-3 are twins: same users
    base[:5, 0] = 1.0
    base[:5, 1:4] = 1.0
    M = sp.csr_matrix(base)
    for k in (1, 2, 3):
        fast = ItemKNN(k=k).fit(M).similarity_
        assert (np.diff(fast.tocsc().indptr) <= k).all()
        assert fast.diagonal().max() == 0.0
        with monkeypatch.context() as m:
            m.setattr(itemknn, "_symmetric_knn", lambda *args: None)
            slow = ItemKNN(k=k).fit(M).similarity_
        assert fast.nnz == slow.nnz
        np.testing.assert_allclose(np.sort(fast.toarray(), axis=0),
                                   np.sort(slow.toarray(), axis=0), rtol=1e-5, atol=1e-6)
