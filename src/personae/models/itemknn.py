"""Item-based nearest neighbours: a sparse item-item similarity, scores = history × S.

The similarity is computed from the user × item matrix in blocks of target columns
(``Wᵀ W[:, block]``, a few hundred MB at most), so that catalogues of any size fit in memory;
each target item keeps its ``k`` most similar items. Weighting schemes follow ``implicit``'s
``CosineRecommender``, ``TFIDFRecommender`` and ``BM25Recommender``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models._params import check_number
from personae.models.base import Recommendations, Recommender

_SIMILARITIES = ("cosine", "bm25", "tfidf")
#: Upper bound on one dense block of the similarity computation, in float32 cells (256 MB).
_BLOCK_CELLS = 64_000_000


class ItemItem(Recommender):
    """A model that scores a history by an item-item matrix: ``scores = history @
    similarity_`` (item-kNN, RP3beta). Subclasses set ``similarity_`` in ``_fit``; scoring,
    fold-in of unseen histories and the artifact's arrays are shared here."""

    scores_histories: ClassVar[bool] = True

    similarity_: sp.csr_matrix

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self._score_histories(self.user_items_[users], context)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        return np.asarray((histories @ self.similarity_).toarray(), dtype=np.float32)

    def _score_history(self, items: np.ndarray, weights: np.ndarray,
                       context: Mapping[str, Any] | None) -> np.ndarray:
        # The history's rows of S, weighted and summed by column: one bincount instead of a
        # sparse × sparse product and its conversion to dense.
        S = self.similarity_
        starts, lengths = S.indptr[items], np.diff(S.indptr)[items]
        total = int(lengths.sum())
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        at = np.arange(total) + offsets
        values = S.data[at].astype(np.float64) * np.repeat(weights, lengths)
        return np.bincount(S.indices[at], weights=values,
                           minlength=self.n_items_).astype(np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        S = self.similarity_
        return {"S_data": S.data, "S_indices": S.indices, "S_indptr": S.indptr}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.similarity_ = sp.csr_matrix(
            (arrays["S_data"], arrays["S_indices"], arrays["S_indptr"]),
            shape=(self.n_items_, self.n_items_),
        )


class ItemKNN(ItemItem):
    """Item-item collaborative filtering.

    Parameters
    ----------
    similarity : {"cosine", "bm25", "tfidf"}, default "cosine"
        ``cosine``: ``s_ij = x_i·x_j / (|x_i|^(2α) |x_j|^(2(1-α)))`` on the item columns ``x``
        of the interaction matrix (``alpha = 0.5`` is the plain cosine). ``bm25`` / ``tfidf``:
        dot products of BM25- / TF-IDF-weighted columns (:func:`bm25_weight`,
        :func:`tfidf_weight`).
    k : int, default 100
        Neighbours kept per item (≥ 1).
    shrinkage : float, default 0.0
        Similarity shrinkage (≥ 0): ``s_ij · n_ij / (n_ij + shrinkage)`` with ``n_ij`` the number
        of users who have both items; damps similarities resting on few co-occurrences.
    alpha : float, default 0.5
        Asymmetry of the cosine, in [0, 1] (ignored by ``bm25``/``tfidf``).
    beta : float, default 0.0
        Popularity penalty (≥ 0), as in RP3beta: the similarity *to* item ``j`` is divided by
        ``popularity_j ** beta`` (``popularity`` = number of users), which pushes long-tail
        items up the lists.
    bm25_k1 : float, default 1.2
        BM25 term-saturation constant (> 0).
    bm25_b : float, default 0.75
        BM25 length normalisation, in [0, 1].

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, float32, shape (n_items, n_items)
        ``similarity_[i, j]``: how much having item ``i`` recommends item ``j``; column ``j``
        holds at most ``k`` entries, the diagonal is zero.
    """

    name: ClassVar[str] = "itemknn"
    scores_histories: ClassVar[bool] = True

    similarity_: sp.csr_matrix

    def __init__(
        self,
        similarity: str = "cosine",
        k: int = 100,
        shrinkage: float = 0.0,
        alpha: float = 0.5,
        beta: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ) -> None:
        self.similarity = similarity
        self.k = k
        self.shrinkage = shrinkage
        self.alpha = alpha
        self.beta = beta
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    # ------------------------------------------------------------------ fitting

    def _validate_params(self) -> None:
        if self.similarity not in _SIMILARITIES:
            raise InvalidInput(
                f"The 'similarity' parameter of ItemKNN must be one of {_SIMILARITIES}. "
                f"Got {self.similarity!r} instead."
            )
        if not _is_int(self.k) or self.k < 1:
            raise InvalidInput(
                f"The 'k' parameter of ItemKNN must be an int >= 1. Got {self.k!r} instead."
            )
        _check_float(self.shrinkage, "shrinkage", ">= 0", lambda v: v >= 0)
        _check_float(self.alpha, "alpha", "in [0, 1]", lambda v: 0 <= v <= 1)
        _check_float(self.beta, "beta", ">= 0", lambda v: v >= 0)
        _check_float(self.bm25_k1, "bm25_k1", "> 0", lambda v: v > 0)
        _check_float(self.bm25_b, "bm25_b", "in [0, 1]", lambda v: 0 <= v <= 1)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        if self.similarity == "bm25":
            W = bm25_weight(X.T, K1=self.bm25_k1, B=self.bm25_b).T
        elif self.similarity == "tfidf":
            W = tfidf_weight(X.T).T
        else:
            W = X
        self.similarity_ = _similarity(
            sp.csr_matrix(W, dtype=np.float32), X, k=int(self.k),
            cosine=self.similarity == "cosine", alpha=float(self.alpha),
            shrinkage=float(self.shrinkage), beta=float(self.beta),
        )

    # ------------------------------------------------------------------ scoring

    def similar_items(self, item: int, k: int = 10) -> Recommendations:
        """The (at most ``k``) items most similar to ``item``, best first, itself excluded."""
        self._check_fitted()
        if not _is_int(item) or not 0 <= item < self.n_items_:
            raise InvalidInput(f"item must be an index in [0, {self.n_items_}), got {item!r}")
        col = self.similarity_[:, [int(item)]].tocoo()
        order = np.lexsort((col.row, -col.data))[: max(0, int(k))]
        return Recommendations(col.row[order].astype(np.int64),
                               col.data[order].astype(np.float32))


# ---------------------------------------------------------------------- weighting


def bm25_weight(X: sp.spmatrix, K1: float = 1.2, B: float = 0.75) -> sp.csr_matrix:
    """BM25-weighted copy of ``X`` (rows are documents, columns terms), as ``implicit``'s.

    ``idf_t = log(n_rows) - log1p(df_t)``; a row's length is its sum of weights.
    """
    M = sp.coo_matrix(X, dtype=np.float64)
    n_rows = M.shape[0]
    idf = np.log(n_rows) - np.log1p(np.bincount(M.col, minlength=M.shape[1]))
    lengths = np.ravel(M.sum(axis=1))
    avg = lengths.mean() if lengths.size and lengths.mean() > 0 else 1.0
    norm = (1.0 - B) + B * lengths / avg
    data = M.data * (K1 + 1.0) / (K1 * norm[M.row] + M.data) * idf[M.col]
    return sp.csr_matrix((data.astype(np.float32), (M.row, M.col)), shape=M.shape)


def tfidf_weight(X: sp.spmatrix) -> sp.csr_matrix:
    """TF-IDF-weighted copy of ``X`` (rows documents, columns terms), as ``implicit``'s:
    ``sqrt(tf) · (log(n_rows) - log1p(df))``."""
    M = sp.coo_matrix(X, dtype=np.float64)
    idf = np.log(M.shape[0]) - np.log1p(np.bincount(M.col, minlength=M.shape[1]))
    data = np.sqrt(M.data) * idf[M.col]
    return sp.csr_matrix((data.astype(np.float32), (M.row, M.col)), shape=M.shape)


# ---------------------------------------------------------------------- similarity


def _similarity(W: sp.csr_matrix, X: sp.csr_matrix, *, k: int, cosine: bool, alpha: float,
                shrinkage: float, beta: float) -> sp.csr_matrix:
    """Top-``k``-per-column item-item similarity of the columns of ``W``."""
    n_items = W.shape[1]
    k = min(k, max(n_items - 1, 1))
    penalty = None
    if beta > 0:  # RP3beta: the similarity to item j is divided by popularity_j ** beta
        pop = np.diff(X.tocsc().indptr).astype(np.float64)
        pop[pop == 0] = 1.0
        penalty = pop ** -beta
    if shrinkage == 0 and (not cosine or alpha == 0.5) and n_items > 1:
        # A symmetric similarity whose per-target scaling (beta) does not change which
        # neighbours are kept: implicit's multi-threaded C++ all-pairs kNN does the heavy part.
        S = _symmetric_knn(W, k, cosine, penalty)
        if S is not None:
            return S
    Wt = W.T.tocsr()
    Wc = W.tocsc()
    if shrinkage > 0:
        Xb = X.copy()
        Xb.data[:] = 1.0
        Xbt, Xbc = Xb.T.tocsr(), Xb.tocsc()
    if cosine:
        sq = np.ravel(W.multiply(W).sum(axis=0)).astype(np.float64)
        sq[sq == 0] = 1.0
        left = sq ** -alpha
        right = sq ** -(1.0 - alpha)
    block = max(1, min(n_items, _BLOCK_CELLS // max(n_items, 1)))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        D = (Wt @ Wc[:, start:stop]).toarray()
        if cosine:
            D *= left[:, None]
            D *= right[None, start:stop]
        if shrinkage > 0:
            C = (Xbt @ Xbc[:, start:stop]).toarray()
            D *= C / (C + shrinkage)
        if penalty is not None:
            D *= penalty[None, start:stop]
        D[np.arange(start, stop), np.arange(stop - start)] = 0.0  # an item is not its neighbour
        parts.append(top_k_block(D, k, axis=0, offset=start))
    return from_blocks(parts, n_items)


def top_k_block(D: np.ndarray, k: int, axis: int, offset: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest positive entries of each column (``axis=0``) or row (``axis=1``) of a
    dense block ``D`` of an item-item matrix whose columns (rows) start at item ``offset``: as
    COO (rows, cols, float32 values) in the whole matrix's indices."""
    n = D.shape[axis]
    if k < n:
        idx = np.argpartition(-D, k - 1, axis=axis)
        idx = idx[:k] if axis == 0 else idx[:, :k]
        top = np.take_along_axis(D, idx, axis=axis)
    else:
        idx = np.broadcast_to(np.arange(n)[:, None] if axis == 0 else np.arange(n)[None, :],
                              D.shape)
        top = D
    keep = top > 0
    picked, along = idx[keep], np.nonzero(keep)[1 - axis] + offset
    rows, cols = (picked, along) if axis == 0 else (along, picked)
    return rows, cols, top[keep].astype(np.float32)


def from_blocks(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_items: int
                ) -> sp.csr_matrix:
    """The float32 (n_items, n_items) CSR matrix (sorted indices) of :func:`top_k_block`'s
    parts."""
    if not parts:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    rows, cols, vals = (np.concatenate(a) for a in zip(*parts, strict=True))
    S = sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items), dtype=np.float32)
    S.sort_indices()
    return S


def _symmetric_knn(W: sp.csr_matrix, k: int, cosine: bool, penalty: np.ndarray | None
                   ) -> sp.csr_matrix | None:
    """:func:`_similarity` for a symmetric similarity without shrinkage, through ``implicit``'s
    all-pairs kNN (None when ``implicit`` is not installed); ``penalty`` scales each target
    column after the neighbours are chosen."""
    try:
        from implicit.nearest_neighbours import all_pairs_knn
    except ImportError:
        return None
    n_items = W.shape[1]
    W64 = sp.csr_matrix(W, dtype=np.float64, copy=True)
    if cosine:
        norms = np.sqrt(np.bincount(W64.indices, weights=W64.data ** 2, minlength=n_items))
        norms[norms == 0] = 1.0
        W64.data /= norms[W64.indices]
    # k + 1, so that the item itself (usually its own nearest neighbour) can be dropped.
    M = sp.coo_matrix(all_pairs_knn(W64, k + 1, show_progress=False, num_threads=0))
    keep = (M.row != M.col) & (M.data > 0)  # only positive similarities, as the block path
    target, source, value = M.row[keep], M.col[keep], M.data[keep]
    counts = np.bincount(target, minlength=n_items)
    over = counts > k
    if over.any():
        # A target that was not among its own k + 1 (a tie with a twin column, an empty
        # column): drop its weakest. Only those targets' entries are sorted; on ml-100k at
        # k = 20 a sort of every entry cost a sixth of the whole fit.
        at = np.flatnonzero(over[target])
        at = at[np.lexsort((source[at], -value[at], target[at]))]
        c = counts[over]
        rank = np.arange(at.size) - np.repeat(np.cumsum(c) - c, c)
        keep = np.ones(target.size, dtype=bool)
        keep[at[rank >= k]] = False
        target, source, value = target[keep], source[keep], value[keep]
    if penalty is not None:
        value = value * penalty[target]
    S = sp.csr_matrix((value.astype(np.float32), (source, target)), shape=(n_items, n_items))
    S.sort_indices()
    return S


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_float(value: Any, name: str, expected: str, ok: Any) -> None:
    check_number("ItemKNN", name, value, f"a float {expected}", ok)
