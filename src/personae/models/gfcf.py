"""GF-CF: graph filtering collaborative filtering (Shen et al., "How Powerful is Graph
Convolution for Recommendation?", CIKM 2021).

A training-free item-item model. With the degree-normalised interaction matrix
``R̃ = D_u^{-1/2} R D_i^{-1/2}``, a user's scores are their history times

- a *linear filter*, the normalised item-item co-occurrence ``P̃ = R̃ᵀ R̃``, plus
- ``alpha`` times an *ideal low-pass filter*: the projection on the top ``k`` right singular
  vectors ``V_k`` of ``R̃``, rescaled by the item degrees, ``D_i^{-1/2} V_k V_kᵀ D_i^{1/2}``.

Both parts are ``n_items × n_items``; they are summed into one matrix ``W``, so scoring, fold-in
of unseen histories and the history items' contributions to a score work as in EASE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personae.models._params import check_bool, check_choice, check_float, check_int
from personae.models.base import Recommender

_DTYPES = ("float64", "float32")


class GFCF(Recommender):
    """Graph-filter collaborative filtering (linear + ideal low-pass filter).

    Parameters
    ----------
    k : int, default 64
        Rank of the ideal low-pass filter (singular vectors kept; capped at ``n_items - 1``).
    alpha : float, default 0.3
        Weight of the ideal low-pass filter against the linear filter (0: linear only).
    implicit : bool, default True
        Fit on the binarised matrix (every interaction counts 1) instead of its weights.
    dtype : {"float64", "float32"}, default "float32"
        Precision of ``W``.
    random_state : int or None, default None
        Seed of the iterative SVD's start vector. Same seed, same model.

    Attributes
    ----------
    W_ : ndarray, shape (n_items, n_items)
        The item-item filter; a history ``h`` is scored ``h @ W_``.
    """

    name: ClassVar[str] = "gfcf"
    scores_histories: ClassVar[bool] = True

    W_: np.ndarray

    def __init__(self, k: int = 64, alpha: float = 0.3, implicit: bool = True,
                 dtype: str = "float32", random_state: int | None = None) -> None:
        self.k = k
        self.alpha = alpha
        self.implicit = implicit
        self.dtype = dtype
        self.random_state = random_state

    def _validate_params(self) -> None:
        check_int("GFCF", "k", self.k, 1)
        check_float("GFCF", "alpha", self.alpha, strict=False)
        check_bool("GFCF", "implicit", self.implicit)
        check_choice("GFCF", "dtype", self.dtype, _DTYPES)
        if self.random_state is not None:
            check_int("GFCF", "random_state", self.random_state, 0)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        R = sp.csr_matrix(X, dtype=np.float64)
        if self.implicit:
            R.data[:] = 1.0
        du = np.asarray(R.sum(axis=1)).ravel()
        di = np.asarray(R.sum(axis=0)).ravel()
        inv_u = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1e-12)), 0.0)
        inv_i = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1e-12)), 0.0)
        Rn = sp.diags(inv_u) @ R @ sp.diags(inv_i)
        W = (Rn.T @ Rn).toarray()
        k = min(int(self.k), min(R.shape) - 1)
        if self.alpha and k >= 1 and Rn.nnz:
            V = _top_right_singular_vectors(sp.csr_matrix(Rn), k, self.random_state)
            # D_i^{-1/2} V Vᵀ D_i^{1/2}: items without interactions get nothing
            W += float(self.alpha) * ((inv_i[:, None] * V) @ (V.T * np.sqrt(di)[None, :]))
        # exact zeros come out of the float64 products as noise of ~1e-16 whose sign can change
        # from run to run with BLAS threading; snapping it keeps a seeded fit reproducible
        W[np.abs(W) <= 1e-12 * max(float(np.abs(W).max(initial=0.0)), 1e-300)] = 0.0
        self.W_ = W.astype(self.dtype)

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self._score_histories(self.user_items_[users], context)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        H = histories.astype(self.W_.dtype)
        if self.implicit:
            H.data[:] = 1.0
        return np.asarray(H @ self.W_, dtype=np.float32)

    def _score_history(self, items: np.ndarray, weights: np.ndarray,
                       context: Mapping[str, Any] | None) -> np.ndarray:
        if self.implicit:
            items = np.unique(items)
            weights = np.ones(items.size, dtype=self.W_.dtype)
        H = sp.csr_matrix((weights.astype(self.W_.dtype), items, np.array([0, items.size])),
                          shape=(1, self.n_items_))
        return np.asarray(H @ self.W_, dtype=np.float32)[0]

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"W": self.W_}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.W_ = arrays["W"]


def _top_right_singular_vectors(R: sp.csr_matrix, k: int, seed: int | None) -> np.ndarray:
    """The ``k`` right singular vectors of ``R`` with the largest singular values, columns in
    descending order, each with a deterministic sign (largest entry positive)."""
    from scipy.sparse.linalg import svds

    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(min(R.shape))
    _, s, vt = svds(R, k=k, v0=v0)
    V = vt[np.argsort(-s)].T
    flip = np.sign(V[np.abs(V).argmax(axis=0), np.arange(V.shape[1])])
    return V * np.where(flip == 0, 1.0, flip)[None, :]
