"""RP3beta: a three-step random walk user → item → user → item, with a popularity penalty.

Paudel et al., "Updatable, Accurate, Diverse, and Scalable Recommendations for Interactive
Applications" (ACM TiiS 2017); as re-implemented and tuned in Dacrema et al., "Are We Really
Making Much Progress?" (RecSys 2019), whose ``RP3betaRecommender`` this follows.

With ``P_ui = x_ui / Σ_j x_uj`` (user → item) and ``P_iu = x_ui / Σ_v x_vi`` (item → user), each
raised element-wise to ``alpha``, the item-item transition is

    W_ij = (Σ_u P_iu^α P_uj^α) / popularity_j^β,    W_ii = 0,

and each source item ``i`` keeps its ``k`` largest ``W_ij``. A user's scores are
``history @ W``, so a history never seen at fit time is scored like a training user's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models._params import check_float, check_int, check_number
from personae.models.base import Recommendations
from personae.models.itemknn import ItemItem, from_blocks, top_k_block

#: Upper bound on one dense block of the transition computation, in float64 cells (256 MB).
_BLOCK_CELLS = 32_000_000


class RP3beta(ItemItem):
    """Random walk of three steps with a popularity penalty.

    Parameters
    ----------
    alpha : float, default 1.0
        Exponent (> 0) applied to both transition probabilities before they are multiplied;
        1 is the plain random walk (P3), values below 1 flatten the transitions.
    beta : float, default 0.5
        Popularity penalty (≥ 0): the transition *to* item ``j`` is divided by
        ``popularity_j ** beta`` (``popularity`` = number of users who have ``j``); 0 is P3alpha.
    k : int, default 100
        Transitions kept per source item (≥ 1): the ``k`` largest of each row of ``W``.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, float32, shape (n_items, n_items)
        ``similarity_[i, j] = W_ij``: how much having item ``i`` recommends item ``j``; row
        ``i`` holds at most ``k`` positive entries, the diagonal is zero.
    """

    name: ClassVar[str] = "rp3beta"
    scores_histories: ClassVar[bool] = True

    similarity_: sp.csr_matrix

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, k: int = 100) -> None:
        self.alpha = alpha
        self.beta = beta
        self.k = k

    # ------------------------------------------------------------------ fitting

    def _validate_params(self) -> None:
        check_float("RP3beta", "alpha", self.alpha, strict=True)
        check_number("RP3beta", "beta", self.beta, "a float >= 0", lambda v: v >= 0)
        check_int("RP3beta", "k", self.k, 1)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        self.similarity_ = _transitions(X, alpha=float(self.alpha), beta=float(self.beta),
                                        k=int(self.k))

    # ------------------------------------------------------------------ scoring

    def similar_items(self, item: int, k: int = 10) -> Recommendations:
        """The (at most ``k``) items that ``item`` leads to most, best first, itself excluded."""
        self._check_fitted()
        if not isinstance(item, int | np.integer) or isinstance(item, bool) \
                or not 0 <= item < self.n_items_:
            raise InvalidInput(f"item must be an index in [0, {self.n_items_}), got {item!r}")
        S = self.similarity_
        start, stop = S.indptr[int(item)], S.indptr[int(item) + 1]
        cols, vals = S.indices[start:stop], S.data[start:stop]
        order = np.lexsort((cols, -vals))[: max(0, int(k))]
        return Recommendations(cols[order].astype(np.int64), vals[order].astype(np.float32))


def _transitions(X: sp.csr_matrix, *, alpha: float, beta: float, k: int) -> sp.csr_matrix:
    """The pruned item → item matrix ``W`` of :class:`RP3beta` for the interactions ``X``."""
    n_items = X.shape[1]
    X64 = sp.csr_matrix(X, dtype=np.float64)
    user_sum = np.ravel(X64.sum(axis=1))
    item_sum = np.ravel(X64.sum(axis=0))
    # users or items without interactions have all-zero rows: divide by 1, not 0
    P_ui = sp.diags(1.0 / np.where(user_sum > 0, user_sum, 1.0)) @ X64
    P_iu = (X64 @ sp.diags(1.0 / np.where(item_sum > 0, item_sum, 1.0))).T.tocsr()
    if alpha != 1.0:
        P_ui.data **= alpha
        P_iu.data **= alpha
    P_ui = P_ui.tocsc()
    popularity = np.diff(X64.tocsc().indptr).astype(np.float64)
    penalty = np.where(popularity > 0, popularity, 1.0) ** -beta
    k = min(k, max(n_items - 1, 1))
    block = max(1, min(n_items, _BLOCK_CELLS // max(n_items, 1)))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        D = (P_iu[start:stop] @ P_ui).toarray()
        D *= penalty[None, :]
        D[np.arange(stop - start), np.arange(start, stop)] = 0.0  # no walk back to itself
        parts.append(top_k_block(D, k, axis=1, offset=start))
    return from_blocks(parts, n_items)
