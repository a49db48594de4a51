"""EASE: a closed-form linear item-item model (Steck, "Embarrassingly Shallow Autoencoders for
Sparse Data", WWW 2019).

``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹`` and a zero diagonal; a user's scores are
``history @ B``. Fitting inverts one ``n_items × n_items`` matrix (Cholesky, LAPACK
``potrf``/``potri``): about ``n_items³`` flops and ``n_items² × 8`` bytes (× 4 in float32), so
EASE suits catalogues up to some tens of thousands of items.

``dropout`` turns EASE into Steck's denoising variants (Steck, "Autoencoders that don't overfit
towards the Identity", NeurIPS 2020): training with input dropout ``p`` is, in expectation, the
ridge penalty ``Λ = p/(1-p) · diag(XᵀX) + λ`` — popular items are regularised more. With the zero
diagonal that is EDLAE (``B = I - P / diag(P)``, ``P = (XᵀX + Λ)⁻¹``); with
``zero_diagonal=False`` it is DLAE, ``B = (XᵀX + Λ)⁻¹ XᵀX = I - P Λ``, which needs no constraint
because dropout already keeps ``B`` from the identity.

``sequence_window`` adds the order of each user's events: the Gram matrix becomes
``XᵀX + β·(A + diag(A·1))``, where ``A[i, j]`` counts the users who took ``i`` and ``j`` within
``sequence_window`` places of each other in time (:meth:`Interactions.adjacency
<personae.data.interactions.Interactions.adjacency>`), ``β`` = ``sequence_weight``: as if every
such close pair were one more user, of weight β, holding just those two items (which keeps the
matrix positive semi-definite; the dropout penalty is still that of the real histories). Items
taken close together (in one session, from one page of the app) then weigh more in each other's
weights than items a user took months apart. It is the idea of SLIST's position-weighted item
co-occurrence (Choi et al., "Session-aware Linear Item-Item Models for Session-based
Recommendation", WWW 2021) applied to whole histories. Only fitting reads the order; scoring is
still ``history @ B``, so fold-in of new histories is unchanged. It helps to find the other items
of the sessions a user is known from, not the next item: on ml-100k's P1 validation splits
(random held-out items) DLAE with a window of 3–5 and β = 1 reached NDCG@10 0.2720–0.2724
against 0.2670 without it; on P2's (each user's last item) it moved by at most ±0.002, within
noise (``bench/bench_sequence.py``). Windows much longer than a session (30) lose: each pair
also adds to its items' diagonal, which then shrinks their weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models._params import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_number,
)
from personae.models.base import Recommender

_DTYPES = ("float64", "float32")


class EASE(Recommender):
    """Embarrassingly shallow autoencoder.

    Parameters
    ----------
    l2 : float, default 500.0
        The ridge penalty λ (> 0). Larger is smoother; 200–1000 suits MovieLens-sized data.
    dtype : {"float64", "float32"}, default "float64"
        Precision of the Gram matrix, its inverse and ``B``. ``float32`` is about twice as fast
        and halves the memory; rankings agree with float64 up to near-ties.
    implicit : bool, default False
        Fit on the binarised matrix (every interaction counts 1) instead of its weights.
    dropout : float in [0, 1), default 0.0
        Input dropout rate ``p`` of the denoising variants (EDLAE/DLAE): adds
        ``p/(1-p) · diag(XᵀX)`` to the penalty. 0 is plain EASE.
    zero_diagonal : bool, default True
        Constrain ``diag(B) = 0`` (EASE, EDLAE). False, with ``dropout > 0``, is DLAE.
    sequence_window : int, default 0
        Also count how close in time each user took two items (see the module docstring): pairs
        at most this many places apart in a user's history add ``sequence_weight`` to the Gram
        matrix. 0 ignores order. Needs a view with event times: fit on an
        :class:`~personae.data.interactions.Interactions` (from a store, or
        ``Split.train_view()``), not on a bare matrix.
    sequence_weight : float, default 1.0
        β ≥ 0, the weight of those close pairs against the plain co-occurrence counts.

    Attributes
    ----------
    B_ : ndarray, shape (n_items, n_items)
        Item-item weights with a zero diagonal, of ``dtype``.
    """

    name: ClassVar[str] = "ease"
    scores_histories: ClassVar[bool] = True

    B_: np.ndarray

    def __init__(self, l2: float = 500.0, dtype: str = "float64", implicit: bool = False,
                 dropout: float = 0.0, zero_diagonal: bool = True, sequence_window: int = 0,
                 sequence_weight: float = 1.0) -> None:
        self.l2 = l2
        self.dtype = dtype
        self.implicit = implicit
        self.dropout = dropout
        self.zero_diagonal = zero_diagonal
        self.sequence_window = sequence_window
        self.sequence_weight = sequence_weight

    @property
    def uses_event_order(self) -> bool:  # type: ignore[override]
        return bool(self.sequence_window)

    def _validate_params(self) -> None:
        check_float("EASE", "l2", self.l2, strict=True)
        check_choice("EASE", "dtype", self.dtype, _DTYPES)
        check_bool("EASE", "implicit", self.implicit)
        check_number("EASE", "dropout", self.dropout, "a float in [0, 1)",
                     lambda v: 0 <= v < 1)
        check_bool("EASE", "zero_diagonal", self.zero_diagonal)
        check_int("EASE", "sequence_window", self.sequence_window, 0)
        check_float("EASE", "sequence_weight", self.sequence_weight, strict=False)
        if not self.zero_diagonal and self.dropout == 0:
            raise InvalidInput("The 'zero_diagonal' parameter of EASE may be False only with "
                               "dropout > 0 (DLAE); without either B is the identity.")

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        dtype = np.dtype(self.dtype)
        if self.implicit:
            X = X.copy()
            X.data[:] = 1.0
        Xd = X.astype(dtype)
        G = (Xd.T @ Xd).toarray()
        p = float(self.dropout)
        lam = (p / (1.0 - p) * np.diag(G) + float(self.l2)).astype(dtype)
        if self.sequence_window:
            if view is None:
                raise InvalidInput(
                    f"EASE(sequence_window={self.sequence_window}) orders each user's items by "
                    "time: fit it on an Interactions view with event times (Store views, "
                    "Split.train_view()), not on a bare matrix")
            # β (A + diag(A·1)): each close pair is a pseudo-user holding its two items, so the
            # Gram matrix stays positive semi-definite (A alone is not); the dropout penalty
            # stays that of the real histories
            A = view.adjacency(int(self.sequence_window)).tocoo()
            beta = float(self.sequence_weight)
            G[A.row, A.col] += (beta * A.data).astype(dtype)
            G[np.diag_indices_from(G)] += (beta * np.bincount(
                A.row, weights=A.data, minlength=G.shape[0])).astype(dtype)
        G[np.diag_indices_from(G)] += lam
        self.B_ = _ease_weights(G, None if self.zero_diagonal else lam)

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self._score_histories(self.user_items_[users], context)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        H = histories.astype(self.B_.dtype)
        if self.implicit:
            H.data[:] = 1.0
        return np.asarray(H @ self.B_, dtype=np.float32)

    def _score_history(self, items: np.ndarray, weights: np.ndarray,
                       context: Mapping[str, Any] | None) -> np.ndarray:
        # One csr row of B's dtype straight into the sparse × dense kernel: a dense gather
        # ``weights @ B[items]`` copies len(items) rows of B and is slower past a few dozen.
        if self.implicit:
            items = np.unique(items)
            weights = np.ones(items.size, dtype=self.B_.dtype)
        H = sp.csr_matrix((weights.astype(self.B_.dtype), items, np.array([0, items.size])),
                          shape=(1, self.n_items_))
        return np.asarray(H @ self.B_, dtype=np.float32)[0]

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.B_ = arrays["B"]


def _ease_weights(G: np.ndarray, lam: np.ndarray | None = None) -> np.ndarray:
    """``B = I - P / diag(P)`` (zero diagonal) for the regularised Gram matrix ``G``, in place;
    with the penalty ``lam`` (per item) instead: DLAE's ``B = I - P diag(lam)``.

    ``P = G⁻¹`` comes from the Cholesky factor (``potrf`` then ``potri``): half the flops of a
    general inverse, and ``G`` is overwritten instead of copied.
    """
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (G,))
    c, info = potrf(G, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise InvalidInput(f"the Gram matrix is not positive definite (LAPACK info {info}); "
                           "increase 'l2'")
    P, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise InvalidInput(f"cannot invert the Gram matrix (LAPACK info {info}); increase 'l2'")
    # potri fills the upper triangle only: mirror it
    upper = np.triu(P)
    P = upper + np.triu(upper, 1).T
    if lam is not None:
        P *= -lam[np.newaxis, :]
        P[np.diag_indices_from(P)] += 1.0
        return P
    d = np.diag(P).copy()
    P /= -d[np.newaxis, :]
    P[np.diag_indices_from(P)] = 0.0
    return P
