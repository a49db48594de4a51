"""EASE: the conformance suite, the closed form on a hand-checkable case, and float32."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from personae.models.ease import EASE

from .conformance import ModelConformance, checkerboard


class TestEASE(ModelConformance):
    invalid_params = [("l2", -3.0), ("l2", 0), ("l2", "big"), ("dtype", "float16"),
                      ("implicit", "yes"), ("dropout", 1.0), ("dropout", -0.1),
                      ("zero_diagonal", "no"), ("zero_diagonal", False)]

    def make_model(self, **params: Any) -> EASE:
        return EASE(**{"l2": 1.0, **params})


def test_closed_form_matches_the_definition() -> None:
    X = checkerboard().matrix
    model = EASE(l2=3.0).fit(X)
    G = (X.T @ X).toarray().astype(np.float64) + 3.0 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = np.eye(X.shape[1]) - P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.B_, B, atol=1e-10)
    assert np.all(np.diag(model.B_) == 0)


class TestDLAE(ModelConformance):
    def make_model(self, **params: Any) -> EASE:
        return EASE(**{"l2": 1.0, "dropout": 0.5, "zero_diagonal": False, **params})


def test_denoising_variants_match_their_closed_forms() -> None:
    """EDLAE is EASE with the penalty p/(1-p)·diag(G) + λ; DLAE is (G + Λ)⁻¹ G (Steck 2020)."""
    X = checkerboard().matrix
    G = (X.T @ X).toarray().astype(np.float64)
    lam = 0.25 / 0.75 * np.diag(G) + 3.0
    P = np.linalg.inv(G + np.diag(lam))
    edlae = np.eye(X.shape[1]) - P / np.diag(P)
    np.fill_diagonal(edlae, 0.0)
    np.testing.assert_allclose(EASE(l2=3.0, dropout=0.25).fit(X).B_, edlae, atol=1e-10)
    dlae = EASE(l2=3.0, dropout=0.25, zero_diagonal=False).fit(X)
    np.testing.assert_allclose(dlae.B_, np.linalg.solve(G + np.diag(lam), G), atol=1e-10)
    assert np.all(np.diag(dlae.B_) > 0)  # no constraint: dropout alone keeps B from I
    np.testing.assert_allclose(EASE(l2=3.0, dropout=0.0).fit(X).B_,
                               EASE(l2=3.0).fit(X).B_)


def test_float32_agrees_with_float64() -> None:
    X = checkerboard().matrix
    b64 = EASE(l2=2.0).fit(X)
    b32 = EASE(l2=2.0, dtype="float32").fit(X)
    assert b32.B_.dtype == np.float32
    np.testing.assert_allclose(b32.B_, b64.B_, atol=1e-5)


def test_implicit_ignores_weights() -> None:
    X = checkerboard().matrix.copy()
    weighted = X.copy()
    weighted.data = np.linspace(1, 5, weighted.nnz).astype(np.float32)
    a = EASE(l2=2.0, implicit=True).fit(X)
    b = EASE(l2=2.0, implicit=True).fit(weighted)
    np.testing.assert_allclose(a.B_, b.B_)
    H = sp.csr_matrix(([3.0], ([0], [0])), shape=(1, X.shape[1]))
    np.testing.assert_allclose(b.score_histories(H), a.score_histories(H / 3.0))


def test_single_history_path_of_implicit_and_float32() -> None:
    """``score_history`` (the serving path) equals ``score_histories`` for the variants the
    conformance suite does not fit: implicit (weights and repeats ignored) and float32."""
    X = checkerboard().matrix
    items = np.array([3, 1, 3, 7])
    weights = np.array([2.0, 1.0, 1.0, 0.5])
    H = sp.csr_matrix((weights, (np.zeros(4, dtype=int), items)), shape=(1, X.shape[1]))
    H.sum_duplicates()
    for params in ({"implicit": True}, {"dtype": "float32"}):
        model = EASE(l2=2.0, **params).fit(X)
        np.testing.assert_allclose(model.score_history(items, weights),
                                   model.score_histories(H)[0], rtol=1e-5, atol=1e-6)


def _timed_view(order: str) -> Any:
    """Three users who take items 0-3; ``order`` decides which items sit next to each other."""
    from personae.data.interactions import Interactions

    histories = {"near": [[0, 1, 2, 3], [1, 0, 3, 2], [0, 1, 3, 2]],
                 "far": [[0, 2, 1, 3], [1, 3, 0, 2], [0, 3, 1, 2]]}[order]
    users = [u for u, h in enumerate(histories) for _ in h]
    items = [i for h in histories for i in h]
    times = [float(t) for h in histories for t in range(len(h))]
    return Interactions.from_arrays(users, items, timestamps=times)


def test_sequence_window_adds_the_adjacency_to_the_gram_matrix() -> None:
    view = _timed_view("near")
    X = view.matrix.astype(np.float64)
    G = (X.T @ X).toarray()
    lam = 0.25 / 0.75 * np.diag(G) + 3.0  # the penalty of the real histories
    A = view.adjacency(1).toarray()
    G += 0.5 * (A + np.diag(A.sum(axis=1)))  # each close pair: a pseudo-user of weight 0.5
    model = EASE(l2=3.0, dropout=0.25, zero_diagonal=False, sequence_window=1,
                 sequence_weight=0.5).fit(view)
    np.testing.assert_allclose(model.B_, np.linalg.solve(G + np.diag(lam), G), atol=1e-10)
    assert model.uses_event_order and not EASE(l2=3.0).uses_event_order
    # the same pairs in another order give other weights; no window ignores the order
    other = EASE(l2=3.0, dropout=0.25, zero_diagonal=False, sequence_window=1,
                 sequence_weight=0.5).fit(_timed_view("far"))
    assert not np.allclose(model.B_, other.B_)
    np.testing.assert_allclose(EASE(l2=3.0).fit(_timed_view("near")).B_,
                               EASE(l2=3.0).fit(_timed_view("far")).B_)
    # weight 0 is plain EASE
    np.testing.assert_allclose(EASE(l2=3.0, sequence_window=2, sequence_weight=0.0)
                               .fit(view).B_, EASE(l2=3.0).fit(view).B_)


def test_sequence_window_needs_event_times() -> None:
    import pytest

    from personae.errors import InvalidInput

    view = _timed_view("near")
    with pytest.raises(InvalidInput, match="fit it on an Interactions view with event times"):
        EASE(sequence_window=2).fit(view.matrix)
    for name, bad in (("sequence_window", -1), ("sequence_window", 1.5),
                      ("sequence_weight", -0.5), ("sequence_weight", "x")):
        with pytest.raises(InvalidInput, match=name):
            EASE(**{name: bad}).fit(view)


def test_sequence_window_round_trips_through_save_and_load(tmp_path: Any) -> None:
    from personae.models.base import Recommender

    model = EASE(l2=3.0, sequence_window=2, sequence_weight=0.5).fit(_timed_view("near"))
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.get_params()["sequence_window"] == 2
    np.testing.assert_array_equal(loaded.score_users(np.arange(3)),
                                  model.score_users(np.arange(3)))
