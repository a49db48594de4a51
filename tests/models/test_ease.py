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
