"""Top-k selection with exclusions, shared by every model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def topk(
    scores: np.ndarray, k: int, *, exclude: sp.csr_matrix | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items per row of ``scores``, best first.

    Parameters
    ----------
    scores : ndarray, shape (n_rows, n_items) or (n_items,)
        Higher is better. Modified in place where ``exclude`` applies (set to ``-inf``).
    k : int
        How many to return (fewer when a row has fewer allowed items).
    exclude : csr_matrix (n_rows, n_items) or bool ndarray of the same shape, optional
        Items never returned (already seen, filtered out).

    Returns
    -------
    items : ndarray of int64, shape (n_rows, k')
    values : ndarray of float32, shape (n_rows, k')
        ``k' = min(k, n_items)``; slots past a row's allowed items hold index ``-1`` and score
        ``-inf``.
    """
    single = scores.ndim == 1
    s = np.atleast_2d(scores)
    if exclude is not None:
        if sp.issparse(exclude):
            ex = sp.csr_matrix(exclude)
            rows = np.repeat(np.arange(ex.shape[0]), np.diff(ex.indptr))
            s[rows, ex.indices] = -np.inf
        else:
            s[np.atleast_2d(exclude)] = -np.inf
    n_items = s.shape[1]
    k = max(0, min(int(k), n_items))
    if k == 0:
        empty = np.zeros((s.shape[0], 0))
        return (empty.astype(np.int64)[0], empty.astype(np.float32)[0]) if single else (
            empty.astype(np.int64), empty.astype(np.float32))
    if k < n_items:
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_items), s.shape).copy()
    vals = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    values = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    items[~np.isfinite(values) & (values < 0)] = -1
    return (items[0], values[0]) if single else (items, values)
