"""GF-CF: the conformance suite and the filter against its definition."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from personae.models.gfcf import GFCF

from .conformance import ModelConformance


class TestGFCF(ModelConformance):
    invalid_params = [("k", 0), ("k", 2.5), ("alpha", -1.0), ("implicit", "yes"),
                      ("dtype", "float16"), ("random_state", -1)]

    def make_model(self, **params: Any) -> GFCF:
        return GFCF(**{"k": 4, "alpha": 0.5, "random_state": 0, **params})


def _random(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(30, 12, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    X.data[:] = 1.0
    X[np.arange(12), np.arange(12)] = 1.0  # every item and the first users interact
    return sp.csr_matrix(X)


def test_filter_matches_the_definition() -> None:
    X = _random()
    R = X.toarray().astype(np.float64)
    du, di = R.sum(1), R.sum(0)
    Rn = R / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    _, s, vt = np.linalg.svd(Rn)
    V = vt[:3].T
    expected = Rn.T @ Rn + 0.7 * np.diag(di ** -0.5) @ V @ V.T @ np.diag(di ** 0.5)
    model = GFCF(k=3, alpha=0.7, dtype="float64", random_state=1).fit(X)
    # the top-3 subspace is unique when singular values 3 and 4 differ
    assert s[2] - s[3] > 1e-6
    np.testing.assert_allclose(model.W_, expected, atol=1e-8)
    linear = GFCF(alpha=0.0, dtype="float64").fit(X)
    np.testing.assert_allclose(linear.W_, Rn.T @ Rn, atol=1e-12)


def test_weights_are_ignored_when_implicit() -> None:
    X = _random(1)
    weighted = X.copy()
    weighted.data = np.linspace(1, 5, weighted.nnz).astype(np.float32)
    a = GFCF(k=3, random_state=0).fit(X)
    b = GFCF(k=3, random_state=0).fit(weighted)
    np.testing.assert_allclose(a.W_, b.W_, atol=1e-6)
    H = sp.csr_matrix(([3.0], ([0], [0])), shape=(1, X.shape[1]))
    np.testing.assert_allclose(b.score_histories(H), a.score_histories(H / 3.0), atol=1e-6)
