"""The one shape every peer adapter has, whatever library sits behind it.

An adapter wraps one model of a peer library (``implicit``, ``cornac``, ``lightfm``) in index
space: users are the rows and items the columns of the training matrix, exactly as in
personae's models, so both run side by side on the same splits. It does not import personae:
peer numbers must not depend on personae's code.

    model = create("implicit.als", factors=64).fit(train)   # train: csr (n_users, n_items)
    scores = model.score(users)                               # (len(users), n_items) float32
    items, values = model.recommend_batch(users, k=10)        # (len(users), k), seen excluded

Hyper-parameters are ``__init__`` keyword arguments, stored as given; each adapter also names
its library defaults (``defaults``) and a small ``grid`` to tune on a validation split. Timing
and memory are measured by the caller.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

SEED = 2026


def default_threads() -> int:
    """Cores this process may use (respects CPU affinity and cgroup-limited affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class PeerModel(ABC):
    """Base class of the peer adapters.

    Subclasses set ``name`` (registry key), ``library``, ``grid`` and implement :meth:`_fit`
    and :meth:`_score`; they may override :meth:`recommend_batch` when the library has a
    faster native batched top-k.
    """

    name: ClassVar[str] = ""
    library: ClassVar[str] = ""
    #: A small grid of hyper-parameters to tune on the validation split (name → values).
    grid: ClassVar[dict[str, list[Any]]] = {}
    #: Modules the adapter imports; :meth:`import_library` loads them ahead of timed fits.
    modules: ClassVar[tuple[str, ...]] = ()

    n_users_: int
    n_items_: int
    user_items_: sp.csr_matrix

    def __init__(self, **params: Any) -> None:
        self._params = dict(params)

    @classmethod
    def import_library(cls) -> None:
        """Import the peer library now, so that a timed ``fit`` does not pay for it."""
        import importlib

        for module in cls.modules:
            importlib.import_module(module)

    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters as given (library defaults are filled in by each adapter)."""
        return dict(self._params)

    def get_params(self) -> dict[str, Any]:
        return self.params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting

    def fit(self, train: sp.spmatrix) -> Self:
        """Learn from ``train``: (n_users, n_items), positive weights, zeros = no interaction."""
        X = sp.csr_matrix(train, dtype=np.float32)
        X.sum_duplicates()
        X.sort_indices()
        if X.shape[0] == 0 or X.shape[1] == 0 or X.nnz == 0:
            raise ValueError(f"{self.name}: cannot fit on an empty matrix of shape {X.shape}")
        if X.data.min() < 0:
            raise ValueError(f"{self.name}: interaction weights must be >= 0")
        self.n_users_, self.n_items_ = X.shape
        self.user_items_ = X
        self._fit(X)
        return self

    @abstractmethod
    def _fit(self, X: sp.csr_matrix) -> None: ...

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_items_"):
            raise RuntimeError(f"{self.name} is not fitted yet; call fit() first")

    # ------------------------------------------------------------------ scoring

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for these training users: (len(users), n_items), float32.

        Higher is better. Items never seen in training still get a (finite) score.
        """
        self._check_fitted()
        u = np.asarray(users, dtype=np.int64).reshape(-1)
        if u.size and (u.min() < 0 or u.max() >= self.n_users_):
            raise IndexError(f"{self.name}: user indices must be in [0, {self.n_users_})")
        out = np.asarray(self._score(u), dtype=np.float32)
        if out.shape != (u.size, self.n_items_):
            raise AssertionError(
                f"{self.name}: scores of shape {out.shape}, expected {(u.size, self.n_items_)}"
            )
        return out

    # personae's name for the same thing, so an evaluation runner written for personae's
    # models can take an adapter unchanged.
    score_users = score

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray: ...

    def recommend_batch(
        self,
        users: np.ndarray,
        k: int = 10,
        *,
        exclude: sp.spmatrix | None = None,
        exclude_seen: bool = True,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` for many users: (items int64, scores float32), each (len(users), k).

        ``exclude_seen`` leaves out each user's training items; ``exclude`` (csr, rows by user
        index, n_users × n_items) adds more. Slots beyond a user's candidates hold -1 / -inf.
        Same signature and result as personae's ``Recommender.recommend_batch``.
        """
        self._check_fitted()
        u = np.asarray(users, dtype=np.int64).reshape(-1)
        k = min(int(k), self.n_items_)
        out_i = np.full((u.size, k), -1, dtype=np.int64)
        out_s = np.full((u.size, k), -np.inf, dtype=np.float32)
        ex_all = sp.csr_matrix(exclude) if exclude is not None else None
        for start in range(0, u.size, batch_size):
            batch = u[start:start + batch_size]
            scores = self.score(batch)
            if exclude_seen:
                _mask(scores, self.user_items_[batch])
            if ex_all is not None:
                _mask(scores, ex_all[batch])
            items, vals = topk(scores, k)
            out_i[start:start + batch.size] = items
            out_s[start:start + batch.size] = vals
        out_i[~np.isfinite(out_s)] = -1
        return out_i, out_s


def _mask(scores: np.ndarray, rows: sp.csr_matrix) -> None:
    """Set ``scores[r, j] = -inf`` wherever ``rows[r, j]`` is stored (in place)."""
    rows = sp.csr_matrix(rows)
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    scores[r, rows.indices] = -np.inf


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns per row, best first; ties broken by the lower item index."""
    n, m = scores.shape
    k = min(k, m)
    if k == 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(m), (n, 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return items, np.take_along_axis(vals, order, axis=1).astype(np.float32)
