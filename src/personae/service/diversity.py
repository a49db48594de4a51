"""Diversity and business rules on a score vector: MMR re-ranking, per-category caps, exclusion
filters and a boost for fresh items, all in index space.

**MMR** (Carbonell & Goldstein 1998) builds the list greedily; at each step it takes the
candidate maximising::

    λ · rel(i) − (1 − λ) · max_{j already chosen} sim(i, j)

``rel`` is the model score min–max scaled to [0, 1] over the candidates (plus any boost), so
that λ means the same for every model. λ = 1 is the relevance order; λ = 0 picks, after the most
relevant item, the candidate least similar to everything chosen so far (ties: the more relevant).

Similarity comes from an :class:`ItemSimilarity`: cosine of item vectors (embeddings, factors,
TF-IDF rows), Jaccard of category/attribute sets, or a precomputed square matrix.

>>> sim = ItemSimilarity.from_categories(item_category_matrix)         # doctest: +SKIP
>>> top = rerank(scores, k=10, similarity=sim, lam=0.7, categories=item_category_matrix,
...              max_per_category=3, exclude=seen)                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput

_DAY = 86_400.0
_METRICS = ("cosine", "jaccard")


class ItemSimilarity:
    """Item–item similarity computed on demand for the few items a list is built from.

    Build it with :meth:`from_features`, :meth:`from_categories` or :meth:`from_matrix`;
    :meth:`between` gives the (len(a), len(b)) block.
    """

    def __init__(self, kind: str, data: Any, n_items: int) -> None:
        self.kind = kind
        self._data = data
        self.n_items = n_items
        if kind == "cosine":
            sq = (np.asarray(data.multiply(data).sum(axis=1)).ravel() if sp.issparse(data)
                  else np.einsum("ij,ij->i", data, data))
            norms = np.sqrt(sq.astype(np.float64))
            norms[norms == 0] = 1.0
            self._norms = norms
        elif kind == "jaccard":
            self._sizes = np.asarray(data.sum(axis=1)).ravel().astype(np.float64)

    @classmethod
    def from_features(cls, features: np.ndarray | sp.spmatrix,
                      metric: str = "cosine") -> ItemSimilarity:
        """From one feature row per item: ``cosine`` (vectors) or ``jaccard`` (sets: non-zero
        entries).

        Parameters
        ----------
        features : array or sparse matrix, shape (n_items, d)
        metric : {"cosine", "jaccard"}, default "cosine"
        """
        if metric not in _METRICS:
            raise InvalidInput(f"metric must be one of {_METRICS}. Got {metric!r} instead.")
        if sp.issparse(features):
            X: Any = sp.csr_matrix(features, dtype=np.float64)
        else:
            X = np.asarray(features, dtype=np.float64)
            if X.ndim != 2:
                raise InvalidInput(f"features must be 2-d (n_items, d), got shape {X.shape}")
        if metric == "jaccard":
            X = sp.csr_matrix(X != 0, dtype=np.float64)
        return cls(metric, X, int(X.shape[0]))

    @classmethod
    def from_categories(cls, categories: np.ndarray | sp.spmatrix | Sequence[Sequence[int]],
                        n_categories: int | None = None) -> ItemSimilarity:
        """Jaccard similarity of category sets: a (n_items, n_categories) indicator matrix, or
        one list of category indices per item (see :func:`category_matrix`)."""
        return cls.from_features(category_matrix(categories, n_categories), "jaccard")

    @classmethod
    def from_matrix(cls, similarity: np.ndarray | sp.spmatrix) -> ItemSimilarity:
        """A precomputed (n_items, n_items) similarity (e.g. ``ItemKNN.similarity_``)."""
        S = sp.csr_matrix(similarity, dtype=np.float64) if sp.issparse(similarity) \
            else np.asarray(similarity, dtype=np.float64)
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise InvalidInput(f"a similarity matrix must be square, got shape {S.shape}")
        return cls("matrix", S, int(S.shape[0]))

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarities of items ``a`` (rows) to items ``b`` (columns): float64 (len a, len b)."""
        X = self._data
        if self.kind == "matrix":
            block = X[a][:, b]
            return block.toarray() if sp.issparse(block) else np.asarray(block)
        if self.kind == "cosine":
            dots = X[a] @ X[b].T
            dots = dots.toarray() if sp.issparse(dots) else np.asarray(dots)
            return dots / self._norms[a][:, None] / self._norms[b][None, :]
        inter = (X[a] @ X[b].T).toarray()
        union = self._sizes[a][:, None] + self._sizes[b][None, :] - inter
        return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def category_matrix(categories: np.ndarray | sp.spmatrix | Sequence[Sequence[int]],
                    n_categories: int | None = None) -> sp.csr_matrix:
    """A (n_items, n_categories) 0/1 csr matrix from an indicator matrix, one category index
    per item (``-1``: none), or one list of indices per item."""
    if sp.issparse(categories):
        M = sp.csr_matrix(categories, dtype=np.float64)
        M.data[:] = 1.0
        M.eliminate_zeros()
        return M
    arr = np.asarray(categories, dtype=object) if not isinstance(categories, np.ndarray) \
        else categories
    if isinstance(arr, np.ndarray) and arr.dtype != object and arr.ndim == 2:
        return sp.csr_matrix(arr != 0, dtype=np.float64)
    if isinstance(arr, np.ndarray) and arr.dtype != object and arr.ndim == 1:
        lists: list[Sequence[int]] = [[int(c)] if c >= 0 else [] for c in arr]
    else:
        lists = [_as_list(c) for c in categories]
    rows = np.repeat(np.arange(len(lists)), [len(c) for c in lists])
    cols = np.array([int(c) for cs in lists for c in cs], dtype=np.int64)
    if cols.size and cols.min() < 0:
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
    n_cat = int(n_categories) if n_categories is not None else (int(cols.max()) + 1
                                                                if cols.size else 0)
    return sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(len(lists), n_cat))


def mmr(scores: np.ndarray, candidates: np.ndarray | Sequence[int] | None,
        similarity: ItemSimilarity | None, lam: float = 0.5, k: int = 10, *,
        categories: Any = None, max_per_category: int | Mapping[int, int] | None = None,
        boost: np.ndarray | None = None) -> np.ndarray:
    """Maximal marginal relevance re-ranking of ``candidates``.

    Parameters
    ----------
    scores : float array (n_items,)
        The model's scores (higher is better); non-finite scores are never picked.
    candidates : int array (m,), optional
        The items to choose from (default: every item with a finite score). Pass the model's
        top 100–500 to keep the cost at ``O(m² + k·m)``.
    similarity : ItemSimilarity, optional
        Needed when ``lam < 1``.
    lam : float in [0, 1], default 0.5
        Weight of relevance against novelty with respect to the items already chosen.
    k : int, default 10
        Length of the list (shorter when fewer candidates pass the caps).
    categories : category matrix or per-item lists, optional
        For ``max_per_category`` (see :func:`category_matrix`).
    max_per_category : int or {category index: int}, optional
        At most this many items per category; an item with several categories counts in each
        and is skipped while any of them is full.
    boost : float array (n_items,), optional
        Added to the scaled relevance (in [0, 1] units), e.g. :func:`freshness_boost`.

    Returns
    -------
    int64 array (≤ k,) of item indices, in list order.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_items = s.size
    if isinstance(lam, bool) or not isinstance(lam, int | float | np.floating) \
            or not 0.0 <= float(lam) <= 1.0:
        raise InvalidInput(f"lam must be a float in [0, 1]. Got {lam!r} instead.")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise InvalidInput(f"k must be an int >= 0. Got {k!r} instead.")
    if candidates is None:
        cand = np.flatnonzero(np.isfinite(s))
    else:
        cand = np.asarray(candidates, dtype=np.int64).reshape(-1)
        if cand.size and (cand.min() < 0 or cand.max() >= n_items):
            raise InvalidInput(f"candidates must be item indices in [0, {n_items}), got "
                               f"{int(cand.min())}..{int(cand.max())}")
        cand = cand[np.isfinite(s[cand])]
        cand = cand[np.sort(np.unique(cand, return_index=True)[1])]
    if cand.size == 0 or k == 0:
        return np.zeros(0, dtype=np.int64)
    cand = cand[np.argsort(-s[cand], kind="stable")]  # ties: the more relevant is first
    rel = s[cand]
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    if boost is not None:
        b = np.asarray(boost, dtype=np.float64).reshape(-1)
        if b.size != n_items:
            raise InvalidInput(f"boost must have one value per item ({n_items}), got {b.size}")
        rel = rel + b[cand]
    lam = float(lam)
    if lam < 1.0 and similarity is None:
        raise InvalidInput("mmr needs a similarity when lam < 1")
    S = similarity.between(cand, cand) if lam < 1.0 and similarity is not None else None
    cats, caps = _caps(categories, max_per_category, n_items, cand)
    used = np.zeros(0 if cats is None else cats.shape[1])
    max_sim = np.full(cand.size, -np.inf)
    free = np.ones(cand.size, dtype=bool)
    out: list[int] = []
    while len(out) < k:
        if cats is not None:
            full = used >= caps
            if full.any():
                free &= ~(cats[:, full].sum(axis=1) > 0)
        if not free.any():
            break
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        obj = lam * rel - (1.0 - lam) * penalty
        obj[~free] = -np.inf
        n = int(np.argmax(obj))  # first maximum: the more relevant among ties
        out.append(int(cand[n]))
        free[n] = False
        if S is not None:
            max_sim = np.maximum(max_sim, S[:, n])
        if cats is not None:
            used += cats[n]
    return np.asarray(out, dtype=np.int64)


def rerank(scores: np.ndarray, k: int = 10, *, similarity: ItemSimilarity | None = None,
           lam: float = 1.0, pool: int = 200, categories: Any = None,
           max_per_category: int | Mapping[int, int] | None = None,
           exclude: np.ndarray | Sequence[int] | None = None,
           allowed: np.ndarray | None = None, boost: np.ndarray | None = None) -> np.ndarray:
    """Rules, then MMR: drop excluded items, keep the ``pool`` best by score plus boost, and
    build the list of ``k`` with :func:`mmr` (λ, caps, boost).

    Parameters
    ----------
    scores : float array (n_items,)
    k : int, default 10
    similarity, lam, categories, max_per_category, boost
        As in :func:`mmr` (``lam=1``: no diversification, rules only).
    pool : int, default 200
        Candidates handed to MMR.
    exclude : item indices, optional
        Never returned (seen items, items the client excludes).
    allowed : bool array (n_items,), optional
        Only items where True (availability, category and attribute filters).

    Returns
    -------
    int64 array (≤ k,) of item indices.
    """
    s = np.array(scores, dtype=np.float64).reshape(-1)
    if allowed is not None:
        a = np.asarray(allowed, dtype=bool).reshape(-1)
        if a.size != s.size:
            raise InvalidInput(f"allowed must have one entry per item ({s.size}), got {a.size}")
        s[~a] = -np.inf
    if exclude is not None:
        ex = np.asarray(exclude, dtype=np.int64).reshape(-1)
        s[ex[(ex >= 0) & (ex < s.size)]] = -np.inf
    finite = np.flatnonzero(np.isfinite(s))
    if finite.size == 0:
        return np.zeros(0, dtype=np.int64)
    # The pool is chosen on the same scaled relevance + boost that MMR uses.
    rel = s[finite]
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    if boost is not None:
        rel = rel + np.asarray(boost, dtype=np.float64).reshape(-1)[finite]
    take = min(max(int(pool), int(k)), finite.size)
    part = np.argpartition(-rel, take - 1)[:take] if take < finite.size \
        else np.arange(finite.size)
    return mmr(s, finite[part], similarity, lam, k, categories=categories,
               max_per_category=max_per_category, boost=boost)


def freshness_boost(created_at: np.ndarray, now: float, *, half_life_days: float = 7.0,
                    weight: float = 0.2) -> np.ndarray:
    """An additive boost for new items: ``weight · 0.5 ** (age_days / half_life_days)``.

    Parameters
    ----------
    created_at : float array (n_items,)
        Creation times, UTC epoch seconds; NaN (unknown) gets no boost.
    now : float
        The reference time, UTC epoch seconds.
    half_life_days : float > 0, default 7.0
    weight : float >= 0, default 0.2
        The boost of a brand-new item, in units of scaled relevance ([0, 1], see :func:`mmr`).

    Returns
    -------
    float64 array (n_items,). Items created after ``now`` count as brand new.
    """
    if not half_life_days > 0:
        raise InvalidInput(f"half_life_days must be > 0. Got {half_life_days!r} instead.")
    if not weight >= 0:
        raise InvalidInput(f"weight must be >= 0. Got {weight!r} instead.")
    t = np.asarray(created_at, dtype=np.float64)
    age = np.clip((float(now) - t) / _DAY, 0.0, None)
    out = weight * 0.5 ** (age / float(half_life_days))
    return np.where(np.isnan(t), 0.0, out)


def _as_list(value: Any) -> list[int]:
    if isinstance(value, list | tuple | np.ndarray):
        return [int(c) for c in value]
    return [int(value)]


def _caps(categories: Any, max_per_category: int | Mapping[int, int] | None, n_items: int,
          cand: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    if max_per_category is None:
        return None, np.zeros(0)
    if categories is None:
        raise InvalidInput("max_per_category needs categories")
    M = category_matrix(categories)
    if M.shape[0] != n_items:
        raise InvalidInput(f"categories must have one row per item ({n_items}), got "
                           f"{M.shape[0]}")
    n_cat = M.shape[1]
    if isinstance(max_per_category, Mapping):
        caps = np.full(n_cat, np.inf)
        for c, cap in max_per_category.items():
            if not 0 <= int(c) < n_cat:
                raise InvalidInput(f"max_per_category names category {c!r}; categories are "
                                   f"0..{n_cat - 1}")
            caps[int(c)] = _cap(cap)
    else:
        caps = np.full(n_cat, float(_cap(max_per_category)))
    return M[cand].toarray(), caps


def _cap(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidInput(f"a category cap must be an int >= 0. Got {value!r} instead.")
    return int(value)


__all__ = ["ItemSimilarity", "category_matrix", "freshness_boost", "mmr", "rerank"]
