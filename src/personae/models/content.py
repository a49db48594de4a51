"""Content-based recommendations: items scored by how close their text is to the user's history.

Each item has a text embedding (:mod:`personae.text`); a user is the weighted centroid of the
embeddings of the items in their history, and an item's score mixes

- **centroid**: cosine between the item and the user's centroid, where each history item
  weighs its interaction weight, or ``rating - rating_offset`` when ratings are known (so
  disliked items pull away), times ``0.5 ** (age / half_life_days)`` when events are dated;
- **max-sim**: the largest cosine between the item and one liked history item (a user with
  two tastes is not averaged into neither), weighted by ``max_sim``.

An item needs no event to be scored, only text: new items are recommended from the start
(item cold start), and any history can be scored without refitting (fold-in, new users).
With an ``adapter`` (:mod:`personae.text.finetune`), the centroid goes through the adapter's
query projection and items through its item projection: the space is tuned on the app's own
(history → next item) pairs.

The embeddings come either from :meth:`Content.fit`'s ``item_embeddings`` (an array aligned
with the training matrix's columns) or from an embedding cache folder (``embeddings_dir``,
filled by :class:`personae.text.cache.EmbeddingCache`), looked up by the view's item ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models._params import check_number, fail
from personae.models.base import Recommender

_DAY = 86400.0


class Content(Recommender):
    """Text-embedding recommender (centroid and max-sim of the history).

    Parameters
    ----------
    encoder : str, default "minilm"
        The text encoder the item embeddings come from (a name of
        :data:`personae.text.encoders.ENCODERS`): picks the cache file under
        ``embeddings_dir`` and embeds queries in the same space.
    embeddings_dir : str, optional
        An :class:`~personae.text.cache.EmbeddingCache` folder to read item vectors from, by
        item id. Not needed when ``fit`` is given ``item_embeddings``. Items missing from the
        cache get zero vectors (score 0).
    adapter : str, optional
        Folder of a fine-tuned adapter (:func:`personae.text.finetune.train_adapter`), applied
        over the encoder's vectors; its arrays are copied into this model's artifact.
    max_sim : float, default 0.0
        Weight in [0, 1] of the max-sim score; ``1 - max_sim`` goes to the centroid score.
    half_life_days : float, optional
        Time decay of history items (> 0): an event that much older than ``now`` weighs half.
        Needs dated events (fit on an Interactions); ``None``: no decay. For fold-in
        histories, the caller passes already-decayed weights (:func:`decay_weights`).
    rating_offset : float, optional
        With ratings known (``Interactions.ratings()``), a rated pair weighs
        ``rating - rating_offset`` (e.g. 3.0 on a 1–5 scale: 1–2 stars push away), an unrated
        pair 1.0. ``None`` (default): the interaction weights.
    now : float, optional
        Reference time of the decay, UTC epoch seconds. Default: the last event's time.

    Attributes
    ----------
    item_vectors_ : ndarray of float32, shape (n_items, dim)
        Unit-length item vectors in scoring space (after the adapter's item projection).
    raw_vectors_ : ndarray of float32, shape (n_items, dim)
        The encoder's vectors (what natural-language queries are compared with).
    query_map_ : ndarray of float32, shape (dim, dim), or None
        The adapter's query projection (``h + h @ query_map_``); None without an adapter.
    weights_ : csr_matrix, float32, shape (n_users, n_items)
        The training users' history weights after rating weighting and decay.
    """

    name: ClassVar[str] = "content"
    scores_histories: ClassVar[bool] = True

    item_vectors_: np.ndarray
    raw_vectors_: np.ndarray
    query_map_: np.ndarray | None
    weights_: sp.csr_matrix

    def __init__(
        self,
        encoder: str = "minilm",
        embeddings_dir: str | None = None,
        adapter: str | None = None,
        max_sim: float = 0.0,
        half_life_days: float | None = None,
        rating_offset: float | None = None,
        now: float | None = None,
    ) -> None:
        self.encoder = encoder
        self.embeddings_dir = embeddings_dir
        self.adapter = adapter
        self.max_sim = max_sim
        self.half_life_days = half_life_days
        self.rating_offset = rating_offset
        self.now = now

    # ------------------------------------------------------------------ fitting

    def _validate_params(self) -> None:
        from personae.text.encoders import ENCODERS

        if self.encoder not in ENCODERS:
            raise fail("Content", "encoder", f"one of {tuple(sorted(ENCODERS))}", self.encoder)
        for name in ("embeddings_dir", "adapter"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise fail("Content", name, "None or a folder path (str)", value)
        check_number("Content", "max_sim", self.max_sim, "a float in [0, 1]",
                     lambda v: 0.0 <= v <= 1.0)
        if self.half_life_days is not None:
            check_number("Content", "half_life_days", self.half_life_days, "None or a float > 0",
                         lambda v: v > 0)
        if self.rating_offset is not None:
            check_number("Content", "rating_offset", self.rating_offset, "None or a float")
        if self.now is not None:
            check_number("Content", "now", self.now, "None or epoch seconds")

    def fit(self, data: Any, item_embeddings: np.ndarray | None = None) -> Self:
        """Learn the users' history weights; take the items' text vectors.

        Parameters
        ----------
        data : Interactions or scipy.sparse matrix, shape (n_users, n_items)
            The interactions.
        item_embeddings : ndarray, shape (n_items, dim), optional
            Text vectors aligned with the columns of ``data``. Default: looked up by item id
            in ``embeddings_dir``.
        """
        self._given = item_embeddings
        try:
            return super().fit(data)
        finally:
            del self._given

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        E = self._raw_embeddings(X.shape[1], view)
        self.raw_vectors_ = _unit(E)
        self.query_map_ = None
        items = self.raw_vectors_
        if self.adapter is not None:
            from personae.text.finetune import Adapter

            ad = Adapter.load(self.adapter)
            if ad.dim != E.shape[1]:
                raise InvalidInput(f"the adapter at {self.adapter} works on {ad.dim}-d vectors "
                                   f"but the item embeddings have {E.shape[1]}")
            if ad.encoder != self.encoder:
                raise InvalidInput(f"the adapter at {self.adapter} was trained on encoder "
                                   f"{ad.encoder!r}, not {self.encoder!r}")
            items = ad.transform_items(self.raw_vectors_)
            self.query_map_ = ad.query_map
            self.adapter_version_ = ad.version
        self.item_vectors_ = items.astype(np.float32)
        self.weights_ = self._history_weights(X, view)

    def _raw_embeddings(self, n_items: int, view: Any) -> np.ndarray:
        given = getattr(self, "_given", None)
        if given is not None:
            E = np.asarray(given, dtype=np.float32)
            if E.ndim != 2 or E.shape[0] != n_items:
                raise InvalidInput(f"item_embeddings must have shape (n_items={n_items}, dim), "
                                   f"got {E.shape}")
            if not np.isfinite(E).all():
                raise InvalidInput("item_embeddings must be finite")
            return E
        if self.embeddings_dir is None:
            raise InvalidInput(
                "Content needs item text vectors: pass fit(data, item_embeddings=...) or set "
                "embeddings_dir to an embedding cache (personae text embed)"
            )
        from personae.text.cache import EmbeddingCache

        ids = (list(map(str, view.item_ids)) if view is not None
               else [str(i) for i in range(n_items)])
        E, found = EmbeddingCache(self.embeddings_dir, self.encoder).lookup(ids)
        if not found.any():
            raise InvalidInput(
                f"the embedding cache {self.embeddings_dir} has no {self.encoder!r} vector for "
                f"any of the {n_items} items; run `personae text embed --encoder {self.encoder}`"
            )
        self.n_items_without_text_ = int((~found).sum())
        return E

    def _history_weights(self, X: sp.csr_matrix, view: Any) -> sp.csr_matrix:
        W = X.copy()
        if view is None:
            return W
        if self.rating_offset is not None:
            R = sp.csr_matrix(view.ratings(), dtype=np.float32)
            R.sort_indices()
            rated = _lookup_pairs(R, W)
            W.data = np.where(rated >= 0, R.data[np.maximum(rated, 0)]
                              - np.float32(self.rating_offset), 1.0).astype(np.float32)
        if self.half_life_days is not None:
            ts = _pair_last_time(view, W)
            dated = ~np.isnan(ts)
            if dated.any():
                now = float(self.now) if self.now is not None else float(np.nanmax(ts))
                W.data = W.data * np.where(dated, decay_weights(np.where(dated, ts, now), now,
                                                                float(self.half_life_days)),
                                           1.0).astype(np.float32)
        return W

    # ------------------------------------------------------------------ scoring

    def profile_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """Each history's weighted centroid of raw item vectors, before the adapter.

        Returns float32 (n, dim), not normalised (zero for an empty history).
        """
        self._check_fitted()
        H = sp.csr_matrix(histories, dtype=np.float32)
        return np.asarray(H @ self.raw_vectors_, dtype=np.float32)

    def score_vectors(self, profiles: np.ndarray) -> np.ndarray:
        """Centroid scores of every item for profile vectors (raw space), shape (n, n_items).

        A profile is a history centroid (:meth:`profile_vectors`), a self-description's
        embedding, or a mix of both; the adapter's query projection is applied here.
        """
        self._check_fitted()
        P = np.atleast_2d(np.asarray(profiles, dtype=np.float32))
        if P.shape[1] != self.raw_vectors_.shape[1]:
            raise InvalidInput(f"profile vectors must have {self.raw_vectors_.shape[1]} columns, "
                               f"got {P.shape[1]}")
        if self.query_map_ is not None:
            P = P + P @ self.query_map_
        return np.asarray(_unit(P) @ self.item_vectors_.T, dtype=np.float32)

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self._score_histories(self.weights_[users], context)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        H = sp.csr_matrix(histories, dtype=np.float32)
        a = float(self.max_sim)
        out = np.zeros((H.shape[0], self.n_items_), dtype=np.float32)
        if a < 1.0:
            out += (1.0 - a) * self.score_vectors(self.profile_vectors(H))
        if a > 0.0:
            V = self.item_vectors_
            for r in range(H.shape[0]):
                lo, hi = H.indptr[r], H.indptr[r + 1]
                liked = H.indices[lo:hi][H.data[lo:hi] > 0]
                if liked.size:
                    out[r] += a * (V[liked] @ V.T).max(axis=0)
        return out

    # ------------------------------------------------------------------ persistence

    def _get_state(self) -> dict[str, np.ndarray]:
        W = self.weights_
        state = {"item_vectors": self.item_vectors_, "W_data": W.data, "W_indices": W.indices,
                 "W_indptr": W.indptr}
        if self.query_map_ is not None:
            state["raw_vectors"] = self.raw_vectors_
            state["query_map"] = self.query_map_
        return state

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_vectors_ = np.asarray(arrays["item_vectors"], dtype=np.float32)
        self.raw_vectors_ = np.asarray(arrays.get("raw_vectors", self.item_vectors_),
                                       dtype=np.float32)
        qm = arrays.get("query_map")
        self.query_map_ = None if qm is None else np.asarray(qm, dtype=np.float32)
        self.weights_ = sp.csr_matrix(
            (arrays["W_data"], arrays["W_indices"], arrays["W_indptr"]),
            shape=(self.n_users_, self.n_items_))

    def _get_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"dim": int(self.raw_vectors_.shape[1])}
        if hasattr(self, "adapter_version_"):
            meta["adapter_version"] = self.adapter_version_
        if hasattr(self, "n_items_without_text_"):
            meta["n_items_without_text"] = self.n_items_without_text_
        return meta

    def _set_meta(self, meta: Mapping[str, Any]) -> None:
        if "adapter_version" in meta:
            self.adapter_version_ = meta["adapter_version"]
        if "n_items_without_text" in meta:
            self.n_items_without_text_ = int(meta["n_items_without_text"])


def decay_weights(ts: np.ndarray, now: float, half_life_days: float) -> np.ndarray:
    """``0.5 ** ((now - ts) / half_life)``, with ``ts``/``now`` in epoch seconds (float64 (n,)).

    Events after ``now`` count 1. For the serving path's fold-in histories.
    """
    age = np.maximum(float(now) - np.asarray(ts, dtype=np.float64), 0.0) / _DAY
    return np.power(0.5, age / float(half_life_days))


def _unit(M: np.ndarray) -> np.ndarray:
    M = np.asarray(M, dtype=np.float32)
    norms = np.linalg.norm(M, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (M / norms).astype(np.float32)


def _keys(M: sp.csr_matrix) -> np.ndarray:
    rows = np.repeat(np.arange(M.shape[0], dtype=np.int64), np.diff(M.indptr))
    return rows * M.shape[1] + M.indices.astype(np.int64)


def _lookup_pairs(R: sp.csr_matrix, W: sp.csr_matrix) -> np.ndarray:
    """Position in ``R.data`` of each stored entry of ``W`` (-1 when ``R`` lacks it)."""
    rk, wk = _keys(R), _keys(W)
    pos = np.searchsorted(rk, wk)
    pos = np.minimum(pos, max(rk.size - 1, 0))
    ok = (rk.size > 0) & (rk[pos] == wk) if rk.size else np.zeros(wk.size, bool)
    return np.where(ok, pos, -1)


def _pair_last_time(view: Any, W: sp.csr_matrix) -> np.ndarray:
    """Time of the last dated event of each stored pair of ``W`` (NaN: undated)."""
    ts = view.event_ts
    dated = ~np.isnan(ts)
    T = sp.csr_matrix((np.ones(int(dated.sum()), np.float32),
                       (view.event_users[dated], view.event_items[dated])), shape=W.shape)
    T.sum_duplicates()
    T.sort_indices()
    last = np.full(T.nnz, -np.inf)
    keys = view.event_users[dated].astype(np.int64) * W.shape[1] + view.event_items[dated]
    at = np.searchsorted(_keys(T), keys)
    np.maximum.at(last, at, ts[dated])
    T.data = last
    pos = _lookup_pairs(T, W)
    return np.where(pos >= 0, T.data[np.maximum(pos, 0)] if T.nnz else np.nan, np.nan)
