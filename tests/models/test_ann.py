"""The ANN item index: recall against exact search, the exact fallback, a two-tower model's
vectors retrieved through it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from personae.errors import InvalidInput
from personae.models.ann import ItemIndex, available_backends

APPROX = [b for b in ("faiss", "hnswlib") if importlib.util.find_spec(b) is not None]


def clustered(n: int = 3000, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, d))
    return (centres[rng.integers(30, size=n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def test_exact_backend_is_a_brute_force_top_k() -> None:
    items = clustered(200)
    queries = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    index = ItemIndex(items, backend="exact").build()
    got, scores = index.search(queries, k=7)
    for q in range(5):
        s = items @ queries[q]
        expect = np.argsort(-s)[:7]
        np.testing.assert_array_equal(got[q], expect)
        np.testing.assert_allclose(scores[q], s[expect], rtol=1e-5)
    assert index.recall(queries, k=7) == 1.0


@pytest.mark.parametrize("backend", APPROX)
def test_approximate_recall_against_exact(backend: str) -> None:
    items = clustered()
    queries = np.random.default_rng(2).normal(size=(100, 16)).astype(np.float32)
    index = ItemIndex(items, backend=backend, ef_search=200).build()
    assert index.recall(queries, k=10) >= 0.95
    # scores are inner products of the items returned
    got, scores = index.search(queries[:3], k=5)
    for q in range(3):
        np.testing.assert_allclose(scores[q], items[got[q]] @ queries[q], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", APPROX)
def test_a_small_beam_loses_recall(backend: str) -> None:
    """The recall check can fail: a tiny graph searched with a tiny beam misses neighbours."""
    items = clustered(5000, d=32)
    queries = np.random.default_rng(3).normal(size=(200, 32)).astype(np.float32)
    index = ItemIndex(items, backend=backend, m=2, ef_construction=4, ef_search=1).build()
    assert index.recall(queries, k=50) < 0.95


def test_k_beyond_the_catalogue_pads_with_minus_one() -> None:
    index = ItemIndex(clustered(4), backend="auto").build()
    items, scores = index.search(np.ones((1, 16), np.float32), k=6)
    assert set(items[0, :4].tolist()) == {0, 1, 2, 3}
    assert (items[0, 4:] == -1).all() and np.isneginf(scores[0, 4:]).all()


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match="'backend'"):
        ItemIndex(clustered(10), backend="annoy")
    with pytest.raises(InvalidInput, match="'m'"):
        ItemIndex(clustered(10), m=0)
    index = ItemIndex(clustered(10), backend="exact")
    with pytest.raises(InvalidInput, match="queries must be"):
        index.search(np.ones((1, 3), np.float32))
    assert available_backends()[-1] == "exact"


def test_two_tower_retrieval_through_the_index() -> None:
    pytest.importorskip("torch")
    import scipy.sparse as sp

    from personae.models.twotower import TwoTower

    from .conformance import checkerboard

    data = checkerboard()
    model = TwoTower(factors=16, epochs=20, batch_size=16, learning_rate=1e-2,
                     random_state=0, num_threads=1).fit(data)
    index = ItemIndex(model.item_vectors(), backend="auto").build()
    H = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 2])), shape=(1, data.n_items))
    items, _ = index.search(model.user_vectors(H), k=5)
    exact = np.argsort(-model.score_histories(H)[0])[:5]
    assert set(items[0].tolist()) == set(exact.tolist())
