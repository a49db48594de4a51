"""Ranking, rating and beyond-accuracy metrics, vectorised over users.

Inputs are index-space arrays: ``recs`` (n_users, k) holds each evaluated user's ranked items,
best first, ``-1`` in slots past the end of a short list; ``test`` is a csr matrix whose row
``r`` holds the held-out items of ``recs``'s row ``r``.

Definitions (per user with ``T`` test items and list ``L``; ``rel_j`` = 1 when ``L[j]`` ∈ T,
positions ``j = 1..K``):

- Recall@K = hits / |T|;  Precision@K = hits / K (K, also when the list is shorter);
- NDCG@K = Σ rel_j / log2(j + 1)  ÷  Σ_{j ≤ min(|T|, K)} 1 / log2(j + 1)  (binary gain);
- MAP@K = Σ_j Precision@j · rel_j  ÷  min(|T|, K);
- HitRate@K = 1 if hits > 0;  MRR@K = 1 / (position of the first hit), 0 without one.

Users with no test item are left out (they have no row to score). Means are over users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput

RANKING_METRICS = ("recall", "precision", "ndcg", "map", "hitrate", "mrr")


def hit_matrix(recs: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """Bool (n_users, k): whether ``recs[r, j]`` is one of row ``r``'s test items."""
    recs = np.asarray(recs, dtype=np.int64)
    if recs.ndim != 2 or recs.shape[0] != test.shape[0]:
        raise InvalidInput(
            f"recs must be (n_users, k) with one row per test row ({test.shape[0]}), got "
            f"{recs.shape}"
        )
    t = sp.csr_matrix(test)
    t.sort_indices()
    n_items = int(t.shape[1])
    rows = np.repeat(np.arange(t.shape[0], dtype=np.int64), np.diff(t.indptr))
    keys = rows * n_items + t.indices  # ascending: rows, then sorted columns
    rec_keys = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_items + recs
    pos = np.searchsorted(keys, rec_keys)
    pos = np.minimum(pos, max(keys.size - 1, 0))
    if keys.size == 0:
        return np.zeros(recs.shape, dtype=bool)
    return (keys[pos] == rec_keys) & (recs >= 0)


def ranking_metrics(
    recs: np.ndarray, test: sp.csr_matrix, ks: Sequence[int] = (5, 10, 20)
) -> dict[str, np.ndarray]:
    """Per-user ranking metrics: ``{"ndcg@10": float64 (n_evaluated,), ...}``.

    Rows of ``test`` without any item are dropped (and so are the matching rows of ``recs``);
    ``"users"`` holds the kept row numbers. ``K`` may exceed the list length: missing slots
    count as misses.
    """
    n_test = np.diff(sp.csr_matrix(test).indptr).astype(np.float64)
    keep = n_test > 0
    hits = hit_matrix(recs, test)[keep]
    n_test = n_test[keep]
    out: dict[str, np.ndarray] = {"users": np.flatnonzero(keep)}
    width = hits.shape[1]
    for k in ks:
        if int(k) < 1:
            raise InvalidInput(f"every K must be an int >= 1. Got {k!r} instead.")
        k = int(k)
        h = np.zeros((hits.shape[0], k), dtype=bool)
        h[:, : min(k, width)] = hits[:, :k]
        pos = np.arange(1, k + 1, dtype=np.float64)
        n_hits = h.sum(axis=1).astype(np.float64)
        discount = 1.0 / np.log2(pos + 1.0)
        dcg = (h * discount).sum(axis=1)
        ideal_n = np.minimum(n_test, k).astype(np.int64)
        idcg = np.r_[0.0, np.cumsum(discount)][ideal_n]
        precision_at = np.cumsum(h, axis=1) / pos
        ap = (precision_at * h).sum(axis=1) / np.minimum(n_test, k)
        first = np.where(h.any(axis=1), h.argmax(axis=1) + 1.0, np.inf)
        out[f"recall@{k}"] = n_hits / n_test
        out[f"precision@{k}"] = n_hits / k
        out[f"ndcg@{k}"] = dcg / idcg
        out[f"map@{k}"] = ap
        out[f"hitrate@{k}"] = (n_hits > 0).astype(np.float64)
        out[f"mrr@{k}"] = 1.0 / first
    return out


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error of rating predictions (NaN for no pair)."""
    p, a = _aligned(predicted, actual)
    return float(np.sqrt(np.mean((p - a) ** 2))) if p.size else float("nan")


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error of rating predictions (NaN for no pair)."""
    p, a = _aligned(predicted, actual)
    return float(np.mean(np.abs(p - a))) if p.size else float("nan")


def _aligned(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    if p.shape != a.shape:
        raise InvalidInput(f"predicted and actual differ in length: {p.size} and {a.size}")
    return p, a


# ---------------------------------------------------------------------- beyond accuracy


def exposure(recs: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """How many users get each item in their top ``k``: int64 (n_items,)."""
    top = np.asarray(recs, dtype=np.int64)[:, :k]
    return np.bincount(top[top >= 0], minlength=n_items)


def coverage(recs: np.ndarray, n_items: int, k: int) -> float:
    """Catalogue coverage@K: the share of the ``n_items`` items in anyone's top ``k``."""
    return float((exposure(recs, n_items, k) > 0).sum() / n_items) if n_items else float("nan")


def gini(counts: np.ndarray) -> float:
    """Gini index of exposure over *all* items (zeros included): 0 equal, → 1 concentrated.

    ``G = Σ_i (2i − n − 1) c_(i) / (n Σ c)`` with counts sorted ascending, ``i = 1..n``.
    """
    c = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = c.size, c.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * c).sum() / (n * total))


def item_popularity(train: sp.csr_matrix) -> np.ndarray:
    """Share of users with the item in train: float64 (n_items,); an unseen item counts 1 user.

    Counting unseen items as one user keeps their novelty finite (``log2(n_users)``, the
    largest possible).
    """
    m = sp.csr_matrix(train)
    n_users = max(int(m.shape[0]), 1)
    users_per_item = np.bincount(m.indices, minlength=m.shape[1])
    return np.maximum(users_per_item, 1) / n_users


def novelty(recs: np.ndarray, popularity: np.ndarray, k: int) -> float:
    """Mean over users of the mean ``−log2(popularity)`` of their top ``k`` items."""
    top = np.asarray(recs, dtype=np.int64)[:, :k]
    valid = top >= 0
    info = np.where(valid, -np.log2(popularity[np.where(valid, top, 0)]), 0.0)
    n = valid.sum(axis=1)
    per_user = info.sum(axis=1)[n > 0] / n[n > 0]
    return float(per_user.mean()) if per_user.size else float("nan")


def intra_list_diversity(
    recs: np.ndarray, categories: sp.csr_matrix | np.ndarray, k: int, *, batch_size: int = 1024
) -> float:
    """Mean over users of ``1 − mean pairwise Jaccard`` of the categories of their top ``k``.

    ``categories`` is (n_items, n_categories), nonzero where an item has a category. The
    Jaccard similarity of two items without any category is 0 (distance 1). Users with fewer
    than two items in their list are left out.
    """
    cats = sp.csr_matrix(categories, dtype=np.float32)
    cats.data[:] = 1.0
    top = np.asarray(recs, dtype=np.int64)[:, :k]
    sizes = np.asarray(cats.sum(axis=1)).ravel()
    total, n_users = 0.0, 0
    for start in range(0, top.shape[0], batch_size):
        block = top[start:start + batch_size]
        valid = block >= 0
        idx = np.where(valid, block, 0)
        c = cats[idx.ravel()].toarray().reshape(*idx.shape, -1)  # (b, k, n_cat)
        inter = np.einsum("bic,bjc->bij", c, c)
        s = sizes[idx]
        union = s[:, :, None] + s[:, None, :] - inter
        jac = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        pair = valid[:, :, None] & valid[:, None, :]
        iu = np.triu_indices(idx.shape[1], k=1)
        pair_upper = pair[:, iu[0], iu[1]]
        n_pairs = pair_upper.sum(axis=1)
        dist = ((1.0 - jac[:, iu[0], iu[1]]) * pair_upper).sum(axis=1)
        ok = n_pairs > 0
        total += float((dist[ok] / n_pairs[ok]).sum())
        n_users += int(ok.sum())
    return total / n_users if n_users else float("nan")


def beyond_accuracy(
    recs: np.ndarray,
    train: sp.csr_matrix,
    ks: Sequence[int] = (5, 10, 20),
    categories: sp.csr_matrix | np.ndarray | None = None,
    *,
    n_items: int | None = None,
) -> dict[str, float]:
    """Coverage, Gini, novelty (and diversity, with ``categories``) at every K.

    ``n_items`` is the catalogue size for coverage and Gini (default: the columns of
    ``train``; a split with ``candidates`` passes their number).
    """
    n = int(train.shape[1]) if n_items is None else int(n_items)
    pop = item_popularity(train)
    out: dict[str, float] = {}
    for k in ks:
        counts = exposure(recs, int(train.shape[1]), k)
        out[f"coverage@{k}"] = float((counts > 0).sum() / n) if n else float("nan")
        out[f"gini@{k}"] = gini(np.r_[counts[counts > 0], np.zeros(n - (counts > 0).sum())])
        out[f"novelty@{k}"] = novelty(recs, pop, k)
        if categories is not None:
            out[f"diversity@{k}"] = intra_list_diversity(recs, categories, k)
    return out
