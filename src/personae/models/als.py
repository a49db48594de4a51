"""ALS: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) through ``implicit``.

Fitting runs ``implicit.cpu.als.AlternatingLeastSquares`` (the CPU backend, chosen explicitly
so that a machine with CUDA gives the same factors). Scores are ``user_factors_ @
item_factors_.T``. New histories are folded in: a user's factor vector is the exact solution of
their least-squares problem against the fixed item factors, so a brand-new user is personalised
from the first events without refitting (``scores_histories = True``).

Needs the ``models`` extra: ``pip install 'personae[models]'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from personae.models._implicit import (
    FactorModel,
    check_float,
    import_implicit,
    numpy_single_threaded_blas,
    single_threaded_blas,
)

# Fold-in builds one f × f system per user; work on as many users at once as fit in this many
# bytes of float64 matrices (64 MiB), so that a large batch never needs gigabytes.
_FOLD_IN_BYTES = 64 * 2**20


class ALS(FactorModel):
    """Alternating least squares on implicit feedback, with closed-form fold-in.

    Each observed (user, item) pair of weight ``r`` is a positive with confidence
    ``alpha * r``; every unobserved pair is a negative with confidence 1. The loss is
    ``sum_ui c_ui (p_ui - x_u . y_i)^2 + regularization * (|X|^2 + |Y|^2)``, solved by
    ``iterations`` alternating sweeps (``implicit``'s conjugate-gradient solver).

    Parameters
    ----------
    factors : int, default 64
        Length ``f`` of the user and item vectors.
    regularization : float, default 20.0
        L2 penalty ``lambda`` (>= 0) on the factors, in the units of the confidences (it is
        not scaled by the number of interactions: larger data sets may want a larger value).
        The defaults of ``factors``, ``regularization`` and ``alpha`` are the best of a small
        grid on the P1 validation split of ml-100k (issue 4).
    alpha : float, default 2.0
        Confidence scale (> 0): an observed pair of weight ``r`` counts ``alpha * r`` times
        as much as an unobserved pair. With binary data and ``alpha = 1`` every pair weighs
        the same.
    iterations : int, default 15
        Alternating sweeps over users and items.
    random_state : int or None, default None
        Seed of the initial factors; with a seed two fits give identical factors (the
        solver updates each user or item independently, so the thread count does not change
        the result).
    num_threads : int, default 0
        Threads of ``implicit``'s solver; 0 means all cores.

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, factors)
    item_factors_ : ndarray of float32, shape (n_items, factors)
    """

    name = "als"
    scores_histories = True

    _gram: np.ndarray | None = None  # Y^T Y + lambda I, cached for fold-in

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 20.0,
        alpha: float = 2.0,
        iterations: int = 15,
        random_state: int | None = None,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _validate_params(self) -> None:
        super()._validate_params()
        check_float("ALS", "alpha", self.alpha, strict=True)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        als = import_implicit("implicit.cpu.als")
        # Confidences are scaled here, once, and implicit gets alpha=1: fit and fold-in then
        # share one definition of the confidence (see _fold_in).
        confidence = self._confidence(X)
        with single_threaded_blas():
            backend = als.AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=1.0,
                dtype=np.float32,
                iterations=int(self.iterations),
                num_threads=int(self.num_threads),
                random_state=None if self.random_state is None else int(self.random_state),
            )
            backend.fit(confidence, show_progress=False)
        self._store_factors(backend)
        self._gram = None

    def _confidence(self, X: sp.csr_matrix) -> sp.csr_matrix:
        C = sp.csr_matrix(X, dtype=np.float32, copy=True)
        C.eliminate_zeros()  # an explicit zero would count as a pair of confidence 0
        C.data *= np.float32(self.alpha)
        return C

    # ------------------------------------------------------------------ fold-in

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        return self.fold_in(histories) @ self.item_factors_.T

    def _score_history(self, items: np.ndarray, weights: np.ndarray,
                       context: Mapping[str, Any] | None) -> np.ndarray:
        # The user step of fold_in for one history, without the chunking machinery.
        items, inverse = np.unique(items, return_inverse=True)
        c = np.bincount(inverse, weights=weights, minlength=items.size).astype(np.float32)
        c *= np.float32(self.alpha)
        keep = c != 0  # an explicit zero would count as a pair of confidence 0
        items, c = items[keep], c[keep].astype(np.float64)
        if not items.size:
            return np.zeros(self.n_items_, dtype=np.float32)
        Yh = self.item_factors_[items].astype(np.float64)
        A = self._gram_matrix() + Yh.T @ (Yh * (c - 1.0)[:, None])
        x = np.linalg.solve(A, c @ Yh).astype(np.float32)
        return self.item_factors_ @ x

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """User vectors for histories unseen at fit time, with the item factors held fixed.

        For each row ``u`` (weights ``r_ui``, confidences ``c_ui = alpha * r_ui``) this solves
        ``(Y^T Y + sum_i (c_ui - 1) y_i y_i^T + lambda I) x_u = sum_i c_ui y_i`` exactly: the
        user half-step of ALS. An empty history gives the zero vector (all scores 0).

        Parameters
        ----------
        histories : csr_matrix, shape (n, n_items)
            Interaction weights, as at fit time.

        Returns
        -------
        ndarray of float32, shape (n, factors)
        """
        self._check_fitted()
        C = self._confidence(sp.csr_matrix(histories))
        Y = self.item_factors_.astype(np.float64)
        f = Y.shape[1]
        base = self._gram_matrix()
        out = np.zeros((C.shape[0], f), dtype=np.float32)
        lengths = np.diff(C.indptr)
        # Rows in order of history length, so that a chunk pads its rows to similar lengths.
        order = np.argsort(lengths, kind="stable")
        order = order[lengths[order] > 0]  # empty histories keep the zero vector
        budget = max(1, _FOLD_IN_BYTES // (8 * f))  # padded item vectors per chunk
        start = 0
        with numpy_single_threaded_blas():
            while start < order.size:
                n_rows = np.arange(1, order.size - start + 1)
                cost = np.maximum(n_rows * lengths[order[start:]], n_rows * f)
                stop = start + max(1, int(np.searchsorted(cost, budget, side="right")))
                rows = order[start:stop]
                out[rows] = _solve_users(C, rows, Y, base)
                start = stop
        return out

    def _gram_matrix(self) -> np.ndarray:
        """``Y^T Y + lambda I`` in float64, cached (it is the same for every user)."""
        if self._gram is None:
            Y = self.item_factors_.astype(np.float64)
            self._gram = Y.T @ Y + float(self.regularization) * np.eye(Y.shape[1])
        return self._gram

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self._gram = None


def _solve_users(C: sp.csr_matrix, rows: np.ndarray, Y: np.ndarray,
                 base: np.ndarray) -> np.ndarray:
    """Solve the ALS user step for ``rows`` of ``C`` (confidences), all at once.

    Each row's item vectors are gathered into a zero-padded (n, L, f) block, so that
    ``sum_i (c_ui - 1) y_i y_i^T`` is one batched matrix product for the whole chunk.
    """
    lengths = np.diff(C.indptr)[rows]
    width = int(lengths.max())
    slots = np.arange(width)
    present = slots[None, :] < lengths[:, None]
    positions = (C.indptr[rows][:, None] + slots[None, :])[present]
    items = np.zeros((rows.size, width, Y.shape[1]))
    confidence = np.zeros((rows.size, width))
    items[present] = Y[C.indices[positions]]
    confidence[present] = C.data[positions]
    weighted = items * (confidence - present)[..., None]  # (c - 1) y_i, 0 in padding
    A = base + np.matmul(items.transpose(0, 2, 1), weighted)
    b = np.matmul(confidence[:, None, :], items)[:, 0, :]
    return np.linalg.solve(A, b[..., None])[..., 0].astype(np.float32)
