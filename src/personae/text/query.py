"""Natural-language requests: a query combined with the user's history, profile and context.

``"something light and funny for a family evening"`` is embedded by the item encoder and
compared with every item's text (cosine). Separately, the user's history (or a short
self-description such as ``"I like slow science fiction and old westerns"``) scores every item
through a content model, or any model's scores are passed in; a context model's scores may be
added. Each part is standardised over the candidate items (z-scores, so that cosines and model
scores of any scale mix) and summed with weights::

    score_i = w_q · z(query)_i + w_h · z(history)_i + w_c · z(context)_i

Two users asking the same thing thus get different answers, each fitting their history. Every
result says which part matched: a part *matches* when its z-score is at least ``match_z``
(default 1.0: one standard deviation above the catalogue's mean); ``"both"`` when the query and
the history do; otherwise the part that contributed most.

Filters (``allowed``, ``exclude``, seen items) apply as in :meth:`Recommender.recommend`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from personae.errors import InvalidInput
from personae.models.topk import topk
from personae.text.encoders import TextEncoder, get_encoder

if TYPE_CHECKING:
    from personae.models.content import Content

#: Which part of a request an item matched.
MATCHES = ("query", "history", "both", "context", "none")


@dataclass(frozen=True)
class QueryMatch:
    """One ranked item of a request (index space)."""

    item: int
    score: float
    query_score: float | None  # cosine of the query and the item's text
    history_score: float | None  # the history/profile model's score
    context_score: float | None
    matched: str  # one of MATCHES


@dataclass(frozen=True, eq=False)
class QueryResults:
    """Ranked items of a request, best first; arrays aligned, ``nan`` where a part is absent."""

    items: np.ndarray  # int64 (k,)
    scores: np.ndarray  # float32 (k,), the combined score
    query_scores: np.ndarray  # float32 (k,)
    history_scores: np.ndarray  # float32 (k,)
    context_scores: np.ndarray  # float32 (k,)
    matched: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def __iter__(self) -> Iterator[QueryMatch]:
        for n in range(len(self)):
            yield QueryMatch(int(self.items[n]), float(self.scores[n]),
                             _opt(self.query_scores[n]), _opt(self.history_scores[n]),
                             _opt(self.context_scores[n]), self.matched[n])


class QueryRanker:
    """Ranks items for a natural-language request, a history, a self-description and context.

    Parameters
    ----------
    model : Content
        A fitted content model: its raw item vectors answer the query, and it scores the
        history and the self-description (:meth:`Content.score_vectors`).
    encoder : str or TextEncoder, optional
        Embeds queries and descriptions; default the model's ``encoder`` (it must be the one
        the item vectors came from).
    query_weight, history_weight, context_weight : float, defaults 1.0, 0.5, 0.25
        Weights (≥ 0) of the standardised parts: the request leads, the history and the
        context personalise it (with equal weights, a query that few items match loses to
        the user's usual taste).
    description_weight : float, default 1.0
        Weight of a self-description's vector against the (unit) history centroid.
    match_z : float, default 1.0
        z-score from which a part counts as matched.
    """

    def __init__(self, model: Content, encoder: str | TextEncoder | None = None, *,
                 query_weight: float = 1.0, history_weight: float = 0.5,
                 context_weight: float = 0.25, description_weight: float = 1.0,
                 match_z: float = 1.0) -> None:
        model._check_fitted()
        for name, value in (("query_weight", query_weight), ("history_weight", history_weight),
                            ("context_weight", context_weight),
                            ("description_weight", description_weight)):
            if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
                raise InvalidInput(f"{name} must be a float >= 0, got {value!r}")
        self.model = model
        self.encoder = get_encoder(encoder if encoder is not None else model.encoder)
        if self.encoder.dim != model.raw_vectors_.shape[1]:
            raise InvalidInput(f"the encoder {self.encoder.name!r} gives {self.encoder.dim}-d "
                               f"vectors but the model's items have "
                               f"{model.raw_vectors_.shape[1]}; use the model's encoder "
                               f"({model.encoder!r})")
        self.query_weight = float(query_weight)
        self.history_weight = float(history_weight)
        self.context_weight = float(context_weight)
        self.description_weight = float(description_weight)
        self.match_z = float(match_z)

    # ------------------------------------------------------------------ parts

    def embed(self, text: str, field: str = "query") -> np.ndarray:
        """Unit vector of ``text`` (float32 (dim,)); :class:`InvalidInput` when blank."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"{field} must be a non-empty string, got {text!r}")
        return self.encoder.encode([text])[0]

    def query_scores(self, query: str) -> np.ndarray:
        """Cosine of the query and every item's text, float32 (n_items,)."""
        return np.asarray(self.model.raw_vectors_ @ self.embed(query), dtype=np.float32)

    def history_scores(self, items: Sequence[int] | np.ndarray | None = None,
                       weights: Sequence[float] | np.ndarray | None = None,
                       description: str | None = None) -> np.ndarray | None:
        """The content model's scores for a history and/or a self-description (None: neither).

        A description is cold start from text: its embedding joins the history's unit
        centroid with weight ``description_weight`` (alone when there is no history).
        """
        has_items = items is not None and len(items) > 0
        if not has_items and description is None:
            return None
        if description is None:
            return self.model.score_history(np.asarray(items, dtype=np.int64), weights)
        profile = np.zeros(self.model.raw_vectors_.shape[1], dtype=np.float32)
        if has_items:
            idx = np.asarray(items, dtype=np.int64)
            w = (np.ones(idx.size, np.float32) if weights is None
                 else np.asarray(weights, dtype=np.float32))
            if idx.shape != w.shape:
                raise InvalidInput("history items and weights must have the same length")
            if idx.min() < 0 or idx.max() >= self.model.n_items_:
                raise InvalidInput(f"history item indices must be in [0, "
                                   f"{self.model.n_items_})")
            c = w @ self.model.raw_vectors_[idx]
            norm = float(np.linalg.norm(c))
            profile += c / norm if norm > 0 else c
        profile += self.description_weight * self.embed(description, "description")
        return self.model.score_vectors(profile[None, :])[0]

    # ------------------------------------------------------------------ ranking

    def rank(
        self,
        query: str | None = None,
        *,
        items: Sequence[int] | np.ndarray | None = None,
        weights: Sequence[float] | np.ndarray | None = None,
        description: str | None = None,
        history_scores: np.ndarray | None = None,
        context_scores: np.ndarray | None = None,
        k: int = 10,
        exclude: Sequence[int] | np.ndarray | None = None,
        allowed: np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> QueryResults:
        """The top ``k`` items for a request.

        Parameters
        ----------
        query : str, optional
            What the user asks for, in their words.
        items, weights : optional
            The user's history (item indices, weights), scored by the content model.
        description : str, optional
            A self-description, for users with little or no history.
        history_scores : float array (n_items,), optional
            Scores from another model (collaborative, a blend) used as the history part
            instead of the content model's.
        context_scores : float array (n_items,), optional
            Scores of a context-aware model for the request's context.
        k : int, default 10
        exclude, allowed :
            As in :meth:`Recommender.recommend`.
        exclude_seen : bool, default True
            Leave out the history's items.
        """
        n = self.model.n_items_
        if not isinstance(k, int) or k < 1:
            raise InvalidInput(f"k must be an int >= 1, got {k!r}")
        q = None if query is None else self.query_scores(query)
        h = (self.history_scores(items, weights, description) if history_scores is None
             else _check_scores(history_scores, n, "history_scores"))
        c = None if context_scores is None else _check_scores(context_scores, n,
                                                              "context_scores")
        if q is None and h is None and c is None:
            raise InvalidInput("a request needs a query, a history, a description or "
                               "context scores")
        mask = np.zeros(n, dtype=bool)
        if exclude_seen and items is not None and len(items):
            mask[np.asarray(items, dtype=np.int64)] = True
        if exclude is not None:
            ex = np.asarray(exclude, dtype=np.int64)
            mask[ex[(ex >= 0) & (ex < n)]] = True
        if allowed is not None:
            mask |= ~np.asarray(allowed, dtype=bool)
        pool = ~mask
        parts = [(q, self.query_weight), (h, self.history_weight), (c, self.context_weight)]
        zs = [None if s is None else _zscore(s, pool) for s, _ in parts]
        total = np.zeros(n, dtype=np.float32)
        for z, (_, w) in zip(zs, parts, strict=True):
            if z is not None:
                total += np.float32(w) * z
        top, values = topk(total, k, exclude=mask)
        keep = top >= 0
        top, values = top[keep], values[keep]
        matched = tuple(self._matched(int(i), zs, parts) for i in top)

        def pick(s: np.ndarray | None) -> np.ndarray:
            return (np.full(top.size, np.nan, np.float32) if s is None
                    else s[top].astype(np.float32))

        return QueryResults(top.astype(np.int64), values.astype(np.float32), pick(q), pick(h),
                            pick(c), matched)

    def _matched(self, i: int, zs: list[np.ndarray | None],
                 parts: list[tuple[np.ndarray | None, float]]) -> str:
        zq, zh, zc = (None if z is None else float(z[i]) for z in zs)
        q_ok = zq is not None and zq >= self.match_z and self.query_weight > 0
        h_ok = zh is not None and zh >= self.match_z and self.history_weight > 0
        if q_ok and h_ok:
            return "both"
        if q_ok:
            return "query"
        if h_ok:
            return "history"
        contrib = {name: (z if z is not None else -np.inf) * w
                   for name, z, (_, w) in zip(("query", "history", "context"), (zq, zh, zc),
                                              parts, strict=True)}
        best = max(contrib, key=lambda name: contrib[name])
        return best if np.isfinite(contrib[best]) else "none"


def _zscore(s: np.ndarray, pool: np.ndarray) -> np.ndarray:
    ref = s[pool] if pool.any() else s
    sd = float(ref.std())
    return ((s - float(ref.mean())) / (sd if sd > 0 else 1.0)).astype(np.float32)


def _check_scores(s: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(s, dtype=np.float32)
    if arr.shape != (n,):
        raise InvalidInput(f"{name} must have one score per item ({n},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidInput(f"{name} must be finite")
    return arr


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
