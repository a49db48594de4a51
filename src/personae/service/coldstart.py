"""Cold start: a policy that picks how to score by what is known, and says which path it took.

Four paths for the *user* side, chosen by the number ``n`` of distinct items in the request's
history (positive weights):

- ``"segment_popularity"`` (``n == 0``): the popularity of items within the user's demographic
  segment and the request's context (:class:`personae.models.popularity.Popularity` fit with
  ``user_segments`` and ``time_buckets`` or ``context_key``): ``log p(i | segment, context)``;
- ``"demographics"`` (``n == 0``, a model that scores a user's attributes, such as the
  two-tower model trained with user features, and the user's attributes in
  ``context["user"]``): the model's scores for the attributes alone blended with that prior,
  ``w · z(model scores) + (1 - w) · z(log prior)`` with ``w = demographics_weight``;
- ``"history_blend"`` (``0 < n < full_history``): the history model's fold-in
  (``score_history``) blended with that prior, the history's weight growing with its length::

      w = n / (n + blend_k)
      score = w · z(model scores) + (1 - w) · z(log prior)

  with ``z`` the standardisation over the items that have events (mean 0, standard deviation
  1), so that the two scales are comparable;
- ``"history"`` (``n >= full_history``): the model's scores alone.

And one for the *item* side: items with no events (``new_items``) cannot be ranked by either
(no co-occurrence, no popularity), so they are scored by content — the similarity of their
categories/attributes (or text, through another model) to what the user consumed, or, for a
user with no history, to what their segment consumes — and get an **exploration budget**:
:meth:`ColdStartPolicy.recommend` gives the best-matching new items up to ``explore_slots``
places at the end of each list, flagged as exploration.

>>> policy = ColdStartPolicy(prior=popularity, model=ease, content=AttributeSimilarity()
...                          .fit(catalog.item_categories, catalog.attributes))  # doctest: +SKIP
>>> out = policy.recommend([12, 40], segment="25-34", context={"ts": now}, k=10)  # doctest: +SKIP
>>> out.path, out.items, out.explored                                           # doctest: +SKIP
('history_blend', array([...]), array([False, …, True]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models.topk import topk

if TYPE_CHECKING:
    from personae.models.base import Recommender
    from personae.models.popularity import Popularity
    from personae.profile.context import ContextLift

PATH_NO_HISTORY = "segment_popularity"
PATH_DEMOGRAPHICS = "demographics"
PATH_SHORT_HISTORY = "history_blend"
PATH_HISTORY = "history"
#: The content path of new items (what :attr:`ColdStartRecommendations.sources` says).
PATH_NEW_ITEM = "content_similarity"
PATHS = (PATH_NO_HISTORY, PATH_DEMOGRAPHICS, PATH_SHORT_HISTORY, PATH_HISTORY)

#: ``content(history_items, history_weights, candidates) -> scores``: int64 (n,), float32 (n,),
#: int64 (m,) → float (m,); higher is more similar.
ContentScorer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
#: How many of the segment's most popular items stand in for the history of a user with none
#: when new items are matched by content.
_PRIOR_HISTORY = 20


@dataclass(frozen=True, slots=True)
class ColdStartScores:
    """What :meth:`ColdStartPolicy.score` decided.

    Attributes
    ----------
    path : str
        One of :data:`PATHS`.
    scores : ndarray float32 (n_items,)
        The path's scores of items with events; ``-inf`` for new items.
    n_history : int
        Distinct items in the history.
    history_weight : float
        ``w`` of the blend (0 without history, ``demographics_weight`` on the
        ``demographics`` path, 1 on the ``history`` path).
    segment : str or None
        The user segment whose popularity was used (None: the global one).
    new_item_scores : ndarray float32 (n_items,) or None
        Content similarity of each new item (NaN elsewhere); None without a content scorer
        or without new items.
    """

    path: str
    scores: np.ndarray
    n_history: int
    history_weight: float
    segment: str | None
    new_item_scores: np.ndarray | None


@dataclass(frozen=True, slots=True)
class ColdStartRecommendations:
    """A list made by :meth:`ColdStartPolicy.recommend`, best first.

    ``items`` (int64) and ``scores`` (float32) are in index space; ``explored`` is True for the
    new items given an exploration slot (their ``scores`` are content similarities, not
    comparable with the others); ``path`` is the user-side path.
    """

    path: str
    items: np.ndarray
    scores: np.ndarray
    explored: np.ndarray
    history_weight: float
    segment: str | None

    @property
    def sources(self) -> list[str]:
        """Per item: the user-side path, or :data:`PATH_NEW_ITEM` for explored new items."""
        return [PATH_NEW_ITEM if e else self.path for e in self.explored.tolist()]

    def __len__(self) -> int:
        return int(self.items.shape[0])


class ColdStartPolicy:
    """Chooses segment popularity, a blend, or the history model; explores new items.

    Parameters
    ----------
    prior : Popularity
        Fitted; its segments (``user_segments``) and buckets (``time_buckets`` or
        ``context_key``) give the popularity within a segment and context.
    model : Recommender, optional
        Fitted on the same items, with ``scores_histories`` (itemknn, ease, als…). Without it
        every user gets the ``segment_popularity`` path.
    content : callable or Recommender, optional
        Scores new items for a history: a :data:`ContentScorer`, e.g.
        :class:`AttributeSimilarity`, or a fitted model with ``scores_histories`` (a text or
        attribute model of another engineer), whose ``score_history`` is used. Without it, new
        items are never recommended.
    blend_k : float, default 100.0
        Half-weight history length: at ``n = blend_k`` distinct items the model and the prior
        weigh the same (> 0). The default is the best of 5–200 for new ml-100k users with
        EASE and age-group popularity at every history length from 1 to 50
        (``bench/results/context.md``): the prior keeps helping longer than one would guess.
    full_history : int, default 100
        From this many distinct items on, the model alone (``history`` path; >= 1). Not
        measured beyond 50 items, where the blend still beat the model alone.
    explore_slots : int, default 1
        Places per list reserved for new items (>= 0), at the end of the list, when a new item
        scores at least ``min_similarity``.
    min_similarity : float, default 0.0
        New items with a content score at or below this are not explored.
    new_items : bool array (n_items,), optional
        Items with no events. Default: the items without any training event in ``prior``.
    context_lift : ContextLift, optional
        Fitted on the same items: adds ``context_beta · log_lift(i | context)`` to the log
        prior, for context features beyond the prior's one bucket (device *and* daypart *and*
        weather, …; see :class:`personae.profile.ContextLift`).
    context_beta : float, default 1.0
        Weight of ``context_lift`` (``bench/results/context.md`` chose 1–1.5 for popularity).
    demographics_weight : float, default 0.25
        Weight ``w`` in [0, 1] of the model's scores on the ``demographics`` path (0: never
        taken). The default is the best of 0.1, 0.25, 0.5 and 0.75 for new ml-100k users
        (age, gender, occupation; no history) with the two-tower model and age-group
        popularity: NDCG@10 0.5600 against 0.5520 for the prior alone and 0.5440 for the
        model alone (3 draws of 150 users, ``bench/results/newusers.md``).
    """

    def __init__(
        self,
        prior: Popularity,
        model: Recommender | None = None,
        content: ContentScorer | Recommender | None = None,
        *,
        blend_k: float = 100.0,
        full_history: int = 100,
        explore_slots: int = 1,
        min_similarity: float = 0.0,
        new_items: np.ndarray | None = None,
        context_lift: ContextLift | None = None,
        context_beta: float = 1.0,
        demographics_weight: float = 0.25,
    ) -> None:
        from personae.models.base import Recommender

        prior._check_fitted()
        if not hasattr(prior, "segment_names_"):
            raise InvalidInput("prior must be a fitted personae Popularity model")
        self.prior = prior
        self.n_items = int(prior.n_items_)
        if model is not None:
            model._check_fitted()
            if not model.scores_histories:
                raise InvalidInput(f"model {type(model).__name__} cannot score histories "
                                   "(fold-in); use itemknn, ease or als")
            if model.n_items_ != self.n_items:
                raise InvalidInput(f"model has {model.n_items_} items but prior {self.n_items}:"
                                   " fit both on the same view")
        self.model = model
        if isinstance(content, Recommender):
            if not content.scores_histories or content.n_items_ != self.n_items:
                raise InvalidInput("a content model must score histories over the prior's "
                                   f"{self.n_items} items")
        elif content is not None and not callable(content):
            raise InvalidInput(f"content must be a callable or a Recommender, got "
                               f"{type(content).__name__}")
        self.content = content
        if not isinstance(blend_k, int | float) or not blend_k > 0:
            raise InvalidInput(f"blend_k must be a number > 0, got {blend_k!r}")
        if isinstance(full_history, bool) or not isinstance(full_history, int) \
                or full_history < 1:
            raise InvalidInput(f"full_history must be an int >= 1, got {full_history!r}")
        if isinstance(explore_slots, bool) or not isinstance(explore_slots, int) \
                or explore_slots < 0:
            raise InvalidInput(f"explore_slots must be an int >= 0, got {explore_slots!r}")
        self.blend_k = float(blend_k)
        self.full_history = full_history
        self.explore_slots = explore_slots
        self.min_similarity = float(min_similarity)
        if context_lift is not None and getattr(context_lift, "n_items_", None) != self.n_items:
            raise InvalidInput(f"context_lift must be fitted on the prior's {self.n_items} items")
        self.context_lift = context_lift
        self.context_beta = float(context_beta)
        if isinstance(demographics_weight, bool) \
                or not isinstance(demographics_weight, int | float) \
                or not 0 <= demographics_weight <= 1:
            raise InvalidInput(f"demographics_weight must be a number in [0, 1], got "
                               f"{demographics_weight!r}")
        self.demographics_weight = float(demographics_weight)
        if new_items is None:
            counts = np.diff(sp.csc_matrix(prior.user_items_).indptr)
            self.new_items = counts == 0
        else:
            mask = np.asarray(new_items, dtype=bool)
            if mask.shape != (self.n_items,):
                raise InvalidInput(f"new_items must be a bool array of {self.n_items} items, "
                                   f"got shape {mask.shape}")
            self.new_items = mask

    # ------------------------------------------------------------------ scoring

    def history_weight(self, n_history: int) -> tuple[str, float]:
        """The path and blend weight ``w`` for a history of ``n_history`` distinct items."""
        if n_history <= 0 or self.model is None:
            return PATH_NO_HISTORY, 0.0
        if n_history >= self.full_history:
            return PATH_HISTORY, 1.0
        return PATH_SHORT_HISTORY, n_history / (n_history + self.blend_k)

    def _scores_attributes(self, context: Mapping[str, Any] | None) -> bool:
        """Whether the model scores this request's user attributes (``context["user"]``):
        it does (:func:`personae.service.training.scores_user_attributes`) and the request
        names one of its user fields."""
        from personae.service.training import scores_user_attributes

        user = (context or {}).get("user")
        model = self.model
        return bool(self.demographics_weight > 0 and isinstance(user, Mapping)
                    and model is not None and scores_user_attributes(model)
                    and any(user.get(f) is not None for f in getattr(model, "user_fields_", ())))

    def score(
        self,
        history: Sequence[int] | np.ndarray = (),
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        segment: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ColdStartScores:
        """Scores of every item for one request, and the path taken.

        Parameters
        ----------
        history : int array (n,)
            The user's item indices (any order, repeats add up); may be empty.
        weights : float array (n,), optional
            Their interaction weights (default 1); items whose total is <= 0 do not count.
        segment : str, optional
            The user's segment name in ``prior.segment_names_`` (e.g. an age group); unknown
            or None: the global popularity.
        context : mapping, optional
            The request context (``ts``, device, …), for the prior's bucket and the model;
            the user's attributes under ``"user"`` take the ``demographics`` path without
            history when the model scores them.
        """
        items, w = self._history(history, weights)
        n = int(items.size)
        path, hw = self.history_weight(n)
        seg = segment if segment is not None and str(segment) in self.prior.segment_names_ \
            else None
        prior_scores = self._log_prior(seg, context)
        known = ~self.new_items
        if path == PATH_NO_HISTORY and self._scores_attributes(context):
            # the model scores the (empty) history with the attributes, blended as below
            path, hw = PATH_DEMOGRAPHICS, self.demographics_weight
        if path == PATH_NO_HISTORY:
            scores = prior_scores
        else:
            assert self.model is not None
            model_scores = np.asarray(self.model.score_history(items, w, context),
                                      dtype=np.float64)
            if path == PATH_HISTORY:
                scores = model_scores
            else:
                scores = hw * standardise(model_scores, known) + \
                    (1.0 - hw) * standardise(prior_scores, known)
        scores = np.where(known, scores, -np.inf).astype(np.float32)
        new_scores = None
        if self.content is not None and self.new_items.any():
            if n == 0:  # the segment's favourites stand in for the history
                top = np.argsort(-prior_scores, kind="stable")
                top = top[known[top]][:_PRIOR_HISTORY]
                items, w = top.astype(np.int64), np.exp(prior_scores[top]).astype(np.float32)
            new_scores = np.full(self.n_items, np.nan, dtype=np.float32)
            cand = np.flatnonzero(self.new_items)
            new_scores[cand] = self._content(items, w, cand)
        return ColdStartScores(path, scores, n, hw, seg, new_scores)

    def recommend(
        self,
        history: Sequence[int] | np.ndarray = (),
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        k: int = 10,
        segment: str | None = None,
        context: Mapping[str, Any] | None = None,
        exclude: Sequence[int] | np.ndarray | None = None,
        allowed: np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> ColdStartRecommendations:
        """The top ``k``: the path's best items with events, then up to ``explore_slots``
        new items by content similarity (flagged ``explored``; at most ``k - 1``, so that a
        list always starts with the path's best item).

        ``exclude`` (item indices) and ``allowed`` (bool mask) filter both parts; with
        ``exclude_seen`` the history's items are left out.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInput(f"k must be an int >= 1, got {k!r}")
        out = self.score(history, weights, segment=segment, context=context)
        blocked = np.zeros(self.n_items, dtype=bool)
        if exclude_seen:
            blocked[self._history(history, weights)[0]] = True
        if exclude is not None:
            ex = np.asarray(exclude, dtype=np.int64)
            blocked[ex[(ex >= 0) & (ex < self.n_items)]] = True
        if allowed is not None:
            mask = np.asarray(allowed, dtype=bool)
            if mask.shape != (self.n_items,):
                raise InvalidInput(f"allowed must be a bool array of {self.n_items} items")
            blocked |= ~mask
        new_items, new_vals = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if out.new_item_scores is not None and self.explore_slots:
            ns = out.new_item_scores
            eligible = self.new_items & ~blocked & (ns > self.min_similarity)
            new_items, new_vals = topk(np.where(eligible, ns, -np.inf).astype(np.float32),
                                       min(self.explore_slots, k - 1),
                                       exclude=~eligible)
            keep = new_items >= 0
            new_items, new_vals = new_items[keep], new_vals[keep]
        n_known = k - new_items.size
        items, vals = topk(out.scores, n_known, exclude=blocked | self.new_items)
        keep = (items >= 0) & np.isfinite(vals)
        items, vals = items[keep], vals[keep]
        explored = np.r_[np.zeros(items.size, bool), np.ones(new_items.size, bool)]
        return ColdStartRecommendations(
            out.path, np.r_[items, new_items].astype(np.int64),
            np.r_[vals, new_vals].astype(np.float32), explored, out.history_weight,
            out.segment,
        )

    # ------------------------------------------------------------------ helpers

    def _history(self, history: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(history, dtype=np.int64).reshape(-1)
        w = np.ones(items.size, np.float32) if weights is None else \
            np.asarray(weights, dtype=np.float32).reshape(-1)
        if items.shape != w.shape:
            raise InvalidInput(f"history and weights must have the same length, got "
                               f"{items.size} and {w.size}")
        if items.size and (items.min() < 0 or items.max() >= self.n_items):
            raise InvalidInput(f"history item indices must be in [0, {self.n_items}), got "
                               f"{int(items.min())}..{int(items.max())}")
        totals = np.bincount(items, weights=w, minlength=self.n_items)
        kept = np.flatnonzero(totals > 0)
        return kept.astype(np.int64), totals[kept].astype(np.float32)

    def _log_prior(self, segment: str | None, context: Mapping[str, Any] | None) -> np.ndarray:
        ctx = dict(context or {})
        ctx.pop("user_segment", None)
        if segment is not None:
            ctx["user_segment"] = segment
        empty = sp.csr_matrix((1, self.n_items), dtype=np.float32)
        p = np.asarray(self.prior.score_histories(empty, ctx)[0], dtype=np.float64)
        out = np.log(np.maximum(p, 1e-12))
        if self.context_lift is not None and context:
            out += self.context_beta * self.context_lift.log_lift(context)
        return out

    def _content(self, items: np.ndarray, w: np.ndarray, cand: np.ndarray) -> np.ndarray:
        from personae.models.base import Recommender

        if isinstance(self.content, Recommender):
            return np.asarray(self.content.score_history(items, w), dtype=np.float32)[cand]
        assert self.content is not None
        out = np.asarray(self.content(items, w, cand), dtype=np.float32)
        if out.shape != cand.shape:
            raise InvalidInput(f"the content scorer returned shape {out.shape} for "
                               f"{cand.size} candidates")
        return out


def standardise(x: np.ndarray, over: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` with the moments of ``x[over]`` (std 0 → 1): the scale on which
    scores of different models are blended (here and in the engine's serving path)."""
    sub = x[over]
    if sub.size == 0:
        return x - 0.0
    sd = float(sub.std())
    return (x - float(sub.mean())) / (sd if sd > 0 and math.isfinite(sd) else 1.0)


class AttributeSimilarity:
    """Content similarity from categories and attributes: the fallback :data:`ContentScorer`.

    Each item is a vector of its features (``cat:<category>`` and ``<key>=<value>`` for string
    attributes, or each string of a list), weighted by inverse document frequency
    ``log((1 + n_items) / (1 + df)) + 1`` and L2-normalised. A history is the weighted sum of
    its items' vectors, normalised; an item's score is the cosine with it (0 to 1).

    Parameters
    ----------
    attribute_keys : sequence of str, optional
        Attribute keys to use (default: every key with string values except ids, urls and
        dates).
    category_weight : float, default 1.0
        Multiplies the category features (relative to attribute features).
    """

    def __init__(self, attribute_keys: Sequence[str] | None = None,
                 category_weight: float = 1.0) -> None:
        self.attribute_keys = None if attribute_keys is None else tuple(attribute_keys)
        self.category_weight = category_weight

    def fit(self, categories: Sequence[Sequence[str]],
            attributes: Sequence[Mapping[str, Any]] | None = None) -> Self:
        """Learn the feature space from each item's categories and attributes (index order).

        ``catalog.item_categories`` and ``catalog.attributes`` of a
        :class:`personae.service.Catalog` fit here directly.
        """
        from personae.profile.profile import attribute_values

        n = len(categories)
        if attributes is not None and len(attributes) != n:
            raise InvalidInput(f"categories and attributes must describe the same items, got "
                               f"{n} and {len(attributes)}")
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i in range(n):
            feats = [(f"cat:{c}", float(self.category_weight)) for c in categories[i]]
            if attributes is not None:
                for key, values in attribute_values(attributes[i] or {}):
                    if self.attribute_keys is None or key in self.attribute_keys:
                        feats.extend((f"{key}={v}", 1.0) for v in values)
            for name, weight in feats:
                rows.append(i)
                cols.append(vocab.setdefault(name, len(vocab)))
                vals.append(weight)
        X = sp.csr_matrix((np.asarray(vals, np.float64), (rows, cols)),
                          shape=(n, len(vocab)))
        X.sum_duplicates()
        df = np.diff(sp.csc_matrix(X).indptr)
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        X = sp.csr_matrix(X @ sp.diags(idf))
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        X = sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ X)
        self.features_ = tuple(sorted(vocab, key=vocab.__getitem__))
        self.item_vectors_ = X.astype(np.float32)
        self.n_items_ = n
        return self

    def __call__(self, history_items: np.ndarray, history_weights: np.ndarray,
                 candidates: np.ndarray) -> np.ndarray:
        """Cosine of each candidate with the history's taste vector: float32 (m,)."""
        if not hasattr(self, "n_items_"):
            from personae.models.base import NotFitted

            raise NotFitted("AttributeSimilarity is not fitted yet; call fit() first")
        h = np.asarray(history_items, dtype=np.int64)
        c = np.asarray(candidates, dtype=np.int64)
        if h.size == 0:
            return np.zeros(c.size, dtype=np.float32)
        w = np.asarray(history_weights, dtype=np.float32).reshape(1, -1)
        taste = np.asarray((sp.csr_matrix(w) @ self.item_vectors_[h]).todense()).ravel()
        norm = float(np.linalg.norm(taste))
        if norm == 0:
            return np.zeros(c.size, dtype=np.float32)
        return np.asarray(self.item_vectors_[c] @ (taste / norm), dtype=np.float32).ravel()

    def shared(self, item: int, history_items: Sequence[int]) -> list[str]:
        """The features ``item`` shares with the history (for explanations), by name."""
        if not hasattr(self, "n_items_"):
            from personae.models.base import NotFitted

            raise NotFitted("AttributeSimilarity is not fitted yet; call fit() first")
        mine = set(self.item_vectors_[int(item)].indices.tolist())
        h = np.asarray(list(history_items), dtype=np.int64)
        theirs = set(self.item_vectors_[h].indices.tolist()) if h.size else set()
        return sorted(self.features_[f] for f in mine & theirs)
