"""``implicit`` (benfred/implicit) CPU models: ALS, BPR, item-kNN (cosine, BM25).

implicit takes the (users × items) csr directly, so indices need no mapping. ALS and BPR use
implicit's own batched ``recommend`` (its C++ top-k, filtering the excluded items);
item-kNN scores as implicit does, ``X[users] @ similarity``, vectorised (implicit's batched
kNN ``recommend`` is a Python loop over users).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import SEED, PeerModel, default_threads


class _ImplicitMF(PeerModel):
    library = "implicit"
    modules = ("threadpoolctl", "implicit.cpu.als", "implicit.cpu.bpr")

    def _model(self) -> Any:  # the implicit estimator, built from self._params
        raise NotImplementedError

    def _fit(self, X: sp.csr_matrix) -> None:
        from threadpoolctl import threadpool_limits

        self.model_ = self._model()
        # implicit's own threads do the work; a multi-threaded BLAS underneath only contends
        # (implicit warns about it), so it is limited to one thread while fitting.
        with threadpool_limits(1, "blas"):
            self.model_.fit(X, show_progress=False)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.model_.user_factors[users] @ self.model_.item_factors.T

    def recommend_batch(self, users, k=10, *, exclude=None, exclude_seen=True,
                        batch_size=1024):
        """implicit's own batched top-k; the items to leave out are its ``user_items`` rows.

        With ``filter_already_liked_items`` implicit removes exactly the items stored in the
        rows it is given, and ALS/BPR (``recalculate_user=False``) use them for nothing else.
        """
        self._check_fitted()
        u = np.asarray(users, dtype=np.int64).reshape(-1)
        k = min(int(k), self.n_items_)
        rows = sp.csr_matrix((u.size, self.n_items_), dtype=np.float32)
        if exclude_seen:
            rows = rows + self.user_items_[u]
        if exclude is not None:
            rows = rows + sp.csr_matrix(exclude, dtype=np.float32)[u]
        rows = sp.csr_matrix(rows)
        rows.sort_indices()
        ids, scores = self.model_.recommend(u, rows, N=k, filter_already_liked_items=True)
        ids = np.asarray(ids, dtype=np.int64).reshape(u.size, -1)
        scores = np.asarray(scores, dtype=np.float32).reshape(u.size, -1)
        # implicit pads rows with fewer candidates with id -1 and a very low score
        scores[ids < 0] = -np.inf
        ids[~np.isfinite(scores)] = -1
        return ids, scores


class ALS(_ImplicitMF):
    """implicit ``AlternatingLeastSquares`` (conjugate gradient), confidence 1 + alpha·x."""

    name = "implicit.als"
    defaults = {"factors": 100, "regularization": 0.01, "alpha": 1.0, "iterations": 15}
    # implicit >= 0.5 weighs an observed pair alpha·x and an unobserved one 1, and does not
    # scale the penalty by counts: useful values of regularization are in the tens
    grid = {"factors": [64, 128], "regularization": [10.0, 20.0, 40.0],
            "alpha": [1.0, 2.0, 4.0]}

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, random_state: int = SEED,
                 num_threads: int | None = None) -> None:
        super().__init__(factors=factors, regularization=regularization, alpha=alpha,
                         iterations=iterations, random_state=random_state,
                         num_threads=num_threads)

    def _model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        p = self._params
        return AlternatingLeastSquares(
            factors=p["factors"], regularization=p["regularization"], alpha=p["alpha"],
            iterations=p["iterations"], random_state=p["random_state"],
            num_threads=p["num_threads"] or default_threads(),
        )


class BPR(_ImplicitMF):
    """implicit ``BayesianPersonalizedRanking`` (Hogwild SGD; item bias as an extra factor)."""

    name = "implicit.bpr"
    defaults = {"factors": 100, "learning_rate": 0.01, "regularization": 0.01,
                "iterations": 100}
    grid = {"factors": [64, 128], "learning_rate": [0.01, 0.05],
            "regularization": [0.001, 0.01]}

    def __init__(self, factors: int = 100, learning_rate: float = 0.01,
                 regularization: float = 0.01, iterations: int = 100,
                 random_state: int = SEED, num_threads: int | None = None) -> None:
        super().__init__(factors=factors, learning_rate=learning_rate,
                         regularization=regularization, iterations=iterations,
                         random_state=random_state, num_threads=num_threads)

    def _model(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        p = self._params
        return BayesianPersonalizedRanking(
            factors=p["factors"], learning_rate=p["learning_rate"],
            regularization=p["regularization"], iterations=p["iterations"],
            random_state=p["random_state"],
            num_threads=p["num_threads"] or default_threads(),
        )


class _ImplicitKNN(PeerModel):
    library = "implicit"
    modules = ("implicit.nearest_neighbours",)

    def _model(self) -> Any:
        raise NotImplementedError

    def _fit(self, X: sp.csr_matrix) -> None:
        self.model_ = self._model()
        with warnings.catch_warnings():  # its own normalize() hands itself a coo matrix
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model_.fit(X, show_progress=False)
        S = self.model_.similarity
        if S.shape != (X.shape[1], X.shape[1]):
            raise AssertionError(f"implicit similarity has shape {S.shape}, expected items²")
        self.similarity_ = sp.csr_matrix(S, dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        # what implicit's NearestNeighboursScorer computes per user: history @ similarity
        return (self.user_items_[users] @ self.similarity_).toarray()


class CosineKNN(_ImplicitKNN):
    """implicit ``CosineRecommender``: item-item cosine, K neighbours per item."""

    name = "implicit.cosine"
    defaults = {"K": 20}
    grid = {"K": [20, 50, 100, 200]}

    def __init__(self, K: int = 20, num_threads: int | None = None) -> None:
        super().__init__(K=K, num_threads=num_threads)

    def _model(self) -> Any:
        from implicit.nearest_neighbours import CosineRecommender

        p = self._params
        return CosineRecommender(K=p["K"], num_threads=p["num_threads"] or default_threads())


class BM25KNN(_ImplicitKNN):
    """implicit ``BM25Recommender``: item-item similarity on BM25-weighted interactions."""

    name = "implicit.bm25"
    defaults = {"K": 20, "K1": 1.2, "B": 0.75}
    grid = {"K": [50, 100, 200], "K1": [1.2], "B": [0.25, 0.75]}

    def __init__(self, K: int = 20, K1: float = 1.2, B: float = 0.75,
                 num_threads: int | None = None) -> None:
        super().__init__(K=K, K1=K1, B=B, num_threads=num_threads)

    def _model(self) -> Any:
        from implicit.nearest_neighbours import BM25Recommender

        p = self._params
        return BM25Recommender(K=p["K"], K1=p["K1"], B=p["B"],
                               num_threads=p["num_threads"] or default_threads())
