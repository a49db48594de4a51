"""Approximate nearest-neighbour retrieval over item vectors (maximum inner product), with an
exact fallback and a recall check against exact search.

A two-tower model scores ``user_vector · item_vector`` (:meth:`TwoTower.user_vectors`,
:meth:`TwoTower.item_vectors`); over a large catalogue the top items come from an ANN index
instead of scoring every item.

Backends (``backend=``): ``"faiss"`` (an HNSW graph over inner products, from ``faiss-cpu``),
``"hnswlib"``, ``"exact"`` (a matrix product and a top-k: always available, exact), or
``"auto"`` (faiss, else hnswlib, else exact).

>>> index = ItemIndex(model.item_vectors()).build()                      # doctest: +SKIP
>>> items, scores = index.search(model.user_vectors(H), k=10)            # doctest: +SKIP
>>> index.recall(queries, k=10)                                          # doctest: +SKIP
0.99
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from personae.errors import InvalidInput
from personae.models.topk import topk

BACKENDS = ("auto", "faiss", "hnswlib", "exact")


def available_backends() -> list[str]:
    """Backends importable here, best first (``"exact"`` always)."""
    out = [b for b in ("faiss", "hnswlib") if importlib.util.find_spec(b) is not None]
    return [*out, "exact"]


class ItemIndex:
    """A maximum-inner-product index over item vectors.

    Parameters
    ----------
    vectors : float array (n_items, d)
        One vector per item (row = item index).
    backend : {"auto", "faiss", "hnswlib", "exact"}, default "auto"
    m : int, default 32
        HNSW graph degree.
    ef_construction : int, default 200
        HNSW build-time beam width.
    ef_search : int, default 128
        HNSW search beam width (raised to ``k`` when smaller); higher is slower and more exact.

    Notes
    -----
    HNSW libraries search by inner product directly (faiss ``METRIC_INNER_PRODUCT``, hnswlib
    ``space="ip"``), so scores are the model's scores.
    """

    def __init__(self, vectors: np.ndarray, *, backend: str = "auto", m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128) -> None:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[0] == 0:
            raise InvalidInput(f"vectors must be a non-empty (n_items, d) matrix, got shape "
                               f"{v.shape}")
        if backend not in BACKENDS:
            raise InvalidInput(f"The 'backend' parameter of ItemIndex must be one of "
                               f"{BACKENDS}. Got {backend!r} instead.")
        for name, value in (("m", m), ("ef_construction", ef_construction),
                            ("ef_search", ef_search)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInput(f"The {name!r} parameter of ItemIndex must be an int >= 1. "
                                   f"Got {value!r} instead.")
        if backend == "auto":
            backend = available_backends()[0]
        elif backend != "exact" and importlib.util.find_spec(backend) is None:
            extra = "faiss-cpu" if backend == "faiss" else "hnswlib"
            raise ImportError(f"the {backend!r} ANN backend needs {extra}: "
                              "pip install 'personae[neural]'")
        self.vectors = v
        self.backend = backend
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self._index: Any = None

    @property
    def n_items(self) -> int:
        return int(self.vectors.shape[0])

    def build(self) -> ItemIndex:
        """Build the index (a no-op for ``"exact"``); returns self."""
        v = self.vectors
        if self.backend == "faiss":
            import faiss

            index = faiss.IndexHNSWFlat(v.shape[1], self.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.add(v)
            self._index = index
        elif self.backend == "hnswlib":
            import hnswlib  # type: ignore[import-untyped,unused-ignore]

            index = hnswlib.Index(space="ip", dim=v.shape[1])
            index.init_index(max_elements=v.shape[0], M=self.m,
                             ef_construction=self.ef_construction, random_seed=0)
            index.add_items(v, np.arange(v.shape[0]))
            self._index = index
        return self

    def search(self, queries: np.ndarray, k: int = 10, *, exact: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` items by inner product for each query.

        Parameters
        ----------
        queries : float array (n, d)
        k : int
        exact : bool, default False
            Search exhaustively whatever the backend (the reference for :meth:`recall`).

        Returns
        -------
        (items int64 (n, k), scores float32 (n, k)), best first; -1 / -inf where fewer exist.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.vectors.shape[1]:
            raise InvalidInput(f"queries must be (n, {self.vectors.shape[1]}), got shape "
                               f"{q.shape}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInput(f"k must be an int >= 1, got {k!r}")
        kk = min(k, self.n_items)
        if exact or self.backend == "exact":
            items, scores = topk(q @ self.vectors.T, kk)
        elif self._index is None:
            raise InvalidInput("the index is not built yet; call build() first")
        elif self.backend == "faiss":
            self._index.hnsw.efSearch = max(self.ef_search, kk)
            scores, items = self._index.search(q, kk)
            items = items.astype(np.int64)
        else:
            self._index.set_ef(max(self.ef_search, kk))
            labels, dist = self._index.knn_query(q, k=kk)
            items, scores = labels.astype(np.int64), (1.0 - dist).astype(np.float32)
        out_i = np.full((q.shape[0], k), -1, dtype=np.int64)
        out_s = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        out_i[:, :kk] = items
        out_s[:, :kk] = scores
        out_s[out_i < 0] = -np.inf
        return out_i, out_s

    def recall(self, queries: np.ndarray, k: int = 10) -> float:
        """Mean share of the exact top ``k`` that the index returns (1.0 for ``"exact"``)."""
        approx, _ = self.search(queries, k)
        truth, _ = self.search(queries, k, exact=True)
        hits = [len(set(a[a >= 0].tolist()) & set(t[t >= 0].tolist())) / max(1, (t >= 0).sum())
                for a, t in zip(approx, truth, strict=True)]
        return float(np.mean(hits)) if hits else float("nan")
