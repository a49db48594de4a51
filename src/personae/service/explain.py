"""Explanations from the model's own arithmetic, not canned text.

A score is split into additive *contributions* that sum to it, and the largest are named:

- **item-kNN** and **EASE** are linear in the history: ``score_j = Σ_h w_h · W[h, j]`` with
  ``W`` the similarity (``ItemKNN.similarity_``) or the weights (``EASE.B_``), so history item
  ``h`` contributes ``w_h · W[h, j]`` exactly ("because you watched *Heat* and *Ronin*").
- **ALS** folds a history in by solving ``A x = Σ_h c_h y_h`` with
  ``A = YᵀY + Σ_h (c_h − 1) y_h y_hᵀ + λI`` (``c_h = alpha · w_h``); then
  ``score_j = y_jᵀ x = Σ_h c_h · y_jᵀ A⁻¹ y_h``, which is ``implicit``'s ``explain``: each
  term is one history item's part of the score, exactly, for the given history.
- **popularity** (global, per segment, per context bucket) telescopes:
  ``score = p(j) + [p(j | s) − p(j)] + p(j | s) · [lift_b(j) − 1]``: the global share, what
  the user's segment adds, what the request's context adds.
- **content similarity**: the attributes (genre, director, …) an item shares with the
  history, weighted by the history weights (:func:`explain_content`).
- any other model that can score a history: leave-one-out, ``score(H) − score(H \\ {h})``;
  these do not sum to the score (``method="leave-one-out"``).

A model can supply its own exact split by defining
``contributions(items, weights, targets, context) -> ndarray (n_history, n_targets)``.

Everything here is in index space; :meth:`Explanation.texts` turns reasons into words given a
function from item index to title, which is how the service maps them to ids and titles.

>>> expl = explain(model, history=[3, 17, 42], items=[5, 8])          # doctest: +SKIP
>>> expl[0].reasons[0].item_idx, expl[0].reasons[0].share            # doctest: +SKIP
(17, 0.61)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from personae.errors import InvalidInput

#: What a reason can be about.
REASON_KINDS = ("history", "popularity", "segment", "context", "attribute", "exploration")
#: How an explanation was computed: an exact additive split, leave-one-out differences, shared
#: attributes, or nothing the model could say.
METHODS = ("exact", "leave-one-out", "attributes", "none")


@dataclass(frozen=True, slots=True)
class Reason:
    """One part of a score.

    Attributes
    ----------
    kind : str
        One of :data:`REASON_KINDS`.
    contribution : float
        The part of the score due to this reason, in the model's score units (for
        ``"attribute"``: the summed history weight of the items sharing the attribute; for
        ``"exploration"``: 0).
    share : float
        ``contribution / score`` for score splits (may be negative or above 1 when other parts
        are negative; NaN when the score is 0); for ``"attribute"``: the share of the history's
        weight that shares the attribute.
    item_idx : int or None
        The history item (``"history"``).
    key : str or None
        The attribute (``"attribute"``), ``"segment"``, or the context field or time bucket kind
        (``"context"``).
    value : Any
        The attribute value, segment name or context bucket name.
    """

    kind: str
    contribution: float
    share: float
    item_idx: int | None = None
    key: str | None = None
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "contribution": self.contribution,
                               "share": None if math.isnan(self.share) else self.share}
        if self.item_idx is not None:
            out["item_idx"] = self.item_idx
        if self.key is not None:
            out["key"] = self.key
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one item got its score.

    Attributes
    ----------
    item_idx : int
        The explained item.
    score : float
        The model's score of the item for this history (and context).
    method : str
        One of :data:`METHODS`.
    reasons : tuple of Reason
        The named reasons, the largest contribution first (at most ``top`` history items; an
        exploration reason comes first when the item was shown to explore).
    total : float
        The sum of *every* contribution, named or not. Equals ``score`` (up to rounding) for
        ``method="exact"``.
    exploration : bool
        The item was shown to explore rather than because it scored best.
    """

    item_idx: int
    score: float
    method: str
    reasons: tuple[Reason, ...] = ()
    total: float = float("nan")
    exploration: bool = False

    @property
    def named(self) -> float:
        """Sum of the named reasons' contributions (exploration and attributes excluded)."""
        return float(sum(r.contribution for r in self.reasons
                         if r.kind not in ("exploration", "attribute")))

    def to_dict(self, item_ids: Sequence[str] | None = None,
                titles: Sequence[str | None] | None = None) -> dict[str, Any]:
        """JSON-ready; with ``item_ids``/``titles`` (indexed by item index) history reasons get
        ``item_id``/``title`` too."""
        reasons = []
        for r in self.reasons:
            d = r.to_dict()
            if r.item_idx is not None:
                if item_ids is not None:
                    d["item_id"] = str(item_ids[r.item_idx])
                if titles is not None and titles[r.item_idx]:
                    d["title"] = titles[r.item_idx]
            reasons.append(d)
        out: dict[str, Any] = {
            "item_idx": self.item_idx, "score": self.score, "method": self.method,
            "total": None if math.isnan(self.total) else self.total,
            "exploration": self.exploration, "reasons": reasons,
        }
        if item_ids is not None:
            out["item_id"] = str(item_ids[self.item_idx])
        return out

    def texts(self, name_of: Callable[[int], str] | None = None) -> list[str]:
        """Short sentences, one per reason, each carrying its figure.

        ``name_of`` maps a history item index to a name (default ``"item 17"``).
        """
        name = name_of or (lambda i: f"item {i}")
        out = []
        for r in self.reasons:
            pct = "" if math.isnan(r.share) else f" ({r.share:.0%} of the score)"
            if r.kind == "exploration":
                out.append("shown to explore: the policy is still learning about it")
            elif r.kind == "history":
                out.append(f"because of {name(int(r.item_idx or 0))!r}{pct}")
            elif r.kind == "popularity":
                out.append(f"popular overall{pct}")
            elif r.kind == "segment":
                out.append(f"popular with {r.value}{pct}")
            elif r.kind == "context":
                out.append(f"popular in the context {r.key}={r.value}{pct}")
            elif r.kind == "attribute":
                out.append(f"shares {r.key} {r.value!r} with {r.share:.0%} of your history")
        return out


# ---------------------------------------------------------------------- entry point


def explain(
    model: Any,
    history: Sequence[int] | np.ndarray | tuple[Sequence[int], Sequence[float]] | None,
    items: Sequence[int] | np.ndarray,
    *,
    user: int | None = None,
    context: Mapping[str, Any] | None = None,
    top: int = 3,
    exploration: Collection[int] | None = None,
) -> list[Explanation]:
    """Explain the scores of ``items`` for one history, from the model's arithmetic.

    Parameters
    ----------
    model : Recommender
        A fitted model. Exact splits for ``itemknn``, ``rp3beta``, ``ease``, ``als``,
        ``popularity`` and any model with a ``contributions`` method; leave-one-out for other
        models that score histories; ``method="none"`` otherwise.
    history : item indices (n,), or (item indices, weights), or None
        The user's history as the model scores it (weights default to 1; repeated items add
        up). ``None`` or empty: nothing to attribute (popularity still explains).
    items : int array (m,)
        The items to explain, in index space.
    user : int, optional
        A training user's row: picks the user's segment for popularity.
    context : mapping, optional
        The request context (``user_segment``, the popularity model's ``context_key``, ``ts``).
    top : int, default 3
        At most this many history items named per item (those with a positive contribution).
    exploration : collection of int, optional
        Items shown for exploration (e.g. by a bandit); they are flagged.

    Returns
    -------
    list of Explanation, aligned with ``items``.
    """
    targets = _indices(items, "items", model.n_items_)
    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        raise InvalidInput(f"top must be an int >= 0, got {top!r}")
    h_items, h_weights = _history(history, model.n_items_)
    explored = set() if exploration is None else {int(i) for i in exploration}
    name = getattr(model, "name", "")
    if name == "popularity":
        out = _explain_popularity(model, targets, user, context)
    else:
        contrib, method = _contributions(model, h_items, h_weights, targets, context)
        scores = _scores(model, h_items, h_weights, targets, user, context)
        out = [_from_matrix(int(j), float(scores[n]), method, h_items,
                            None if contrib is None else contrib[:, n], top)
               for n, j in enumerate(targets)]
    if explored:
        out = [_flag(e) if e.item_idx in explored else e for e in out]
    return out


def explain_content(
    item_attributes: Sequence[Mapping[str, Any]],
    history: Sequence[int] | np.ndarray | tuple[Sequence[int], Sequence[float]] | None,
    items: Sequence[int] | np.ndarray,
    *,
    keys: Sequence[str] | None = None,
    top: int = 3,
    exploration: Collection[int] | None = None,
) -> list[Explanation]:
    """Explain content similarity: the attributes each item shares with the history.

    Parameters
    ----------
    item_attributes : sequence of mapping, one per item index
        Each item's attributes; a value may be a scalar or a list (genres, actors). Include the
        categories under a key such as ``"genre"``.
    history, items, top, exploration
        As in :func:`explain`.
    keys : sequence of str, optional
        Only these attributes (default: all).

    Returns
    -------
    list of Explanation with ``method="attributes"``: per shared ``(key, value)``, the summed
    history weight of the history items having it (``contribution``) and its share of the
    history's total weight (``share``); the largest first. ``score`` and ``total`` are the sum
    over every shared value.
    """
    n_items = len(item_attributes)
    targets = _indices(items, "items", n_items)
    h_items, h_weights = _history(history, n_items)
    wanted = None if keys is None else set(keys)
    counts: dict[tuple[str, Any], float] = {}
    for h, w in zip(h_items.tolist(), h_weights.tolist(), strict=True):
        for kv in _pairs(item_attributes[h], wanted):
            counts[kv] = counts.get(kv, 0.0) + float(w)
    total_w = float(h_weights.sum())
    explored = set() if exploration is None else {int(i) for i in exploration}
    out = []
    for j in targets.tolist():
        shared = [(counts[kv], kv) for kv in _pairs(item_attributes[j], wanted) if kv in counts]
        shared.sort(key=lambda t: (-t[0], str(t[1][0]), str(t[1][1])))
        total = float(sum(c for c, _ in shared))
        reasons = tuple(Reason("attribute", c, c / total_w if total_w else float("nan"),
                               key=k, value=v) for c, (k, v) in shared[:top])
        e = Explanation(j, total, "attributes", reasons, total)
        out.append(_flag(e) if j in explored else e)
    return out


# ---------------------------------------------------------------------- the models' arithmetic


def _contributions(model: Any, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                   context: Mapping[str, Any] | None) -> tuple[np.ndarray | None, str]:
    """(n_history, n_targets) contributions and the method; (None, "none") when impossible."""
    if items.size == 0:
        return np.zeros((0, targets.size)), "exact"
    custom = getattr(model, "contributions", None)
    if callable(custom):
        return np.asarray(custom(items, weights, targets, context), dtype=np.float64), "exact"
    name = getattr(model, "name", "")
    if name in ("itemknn", "rp3beta"):  # scores = history weights × item-item matrix
        S = model.similarity_[items][:, targets].toarray().astype(np.float64)
        return weights[:, None] * S, "exact"
    if name == "ease":
        w = np.ones_like(weights) if model.implicit else weights
        B = np.asarray(model.B_[np.ix_(items, targets)], dtype=np.float64)
        return w[:, None] * B, "exact"
    if name == "als":
        return _als_contributions(model, items, weights, targets), "exact"
    if getattr(model, "scores_histories", False):
        return _leave_one_out(model, items, weights, targets, context), "leave-one-out"
    return None, "none"


def _als_contributions(model: Any, items: np.ndarray, weights: np.ndarray,
                       targets: np.ndarray) -> np.ndarray:
    c = weights * float(model.alpha)
    keep = c != 0
    out = np.zeros((items.size, targets.size))
    if not keep.any():
        return out
    Y = model.item_factors_.astype(np.float64)
    Yh = Y[items[keep]]
    A = model._gram_matrix() + Yh.T @ (Yh * (c[keep] - 1.0)[:, None])
    # y_jᵀ A⁻¹ y_h for every (h, j): solve once for the targets' vectors.
    Z = np.linalg.solve(A, Y[targets].T)  # (f, n_targets)
    out[keep] = c[keep][:, None] * (Yh @ Z)
    return out


def _leave_one_out(model: Any, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                   context: Mapping[str, Any] | None) -> np.ndarray:
    full = model.score_history(items, weights, context)[targets].astype(np.float64)
    out = np.empty((items.size, targets.size))
    for n in range(items.size):
        rest = np.arange(items.size) != n
        without = model.score_history(items[rest], weights[rest], context)[targets]
        out[n] = full - without
    return out


def _scores(model: Any, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
            user: int | None, context: Mapping[str, Any] | None) -> np.ndarray:
    if getattr(model, "scores_histories", False):
        return np.asarray(model.score_history(items, weights, context),
                          dtype=np.float64)[targets]
    if user is not None:  # a model that scores only its training users (BPR)
        return np.asarray(model.score_users([user], context)[0], dtype=np.float64)[targets]
    return np.full(targets.size, np.nan)


def _from_matrix(item: int, score: float, method: str, h_items: np.ndarray,
                 contrib: np.ndarray | None, top: int) -> Explanation:
    if contrib is None:
        return Explanation(item, score, method)
    order = np.argsort(-contrib, kind="stable")
    reasons = []
    for n in order[:top]:
        if contrib[n] <= 0:
            break
        reasons.append(Reason("history", float(contrib[n]), _share(float(contrib[n]), score),
                              item_idx=int(h_items[n])))
    total = float(contrib.sum()) if method == "exact" else float("nan")
    return Explanation(item, score, method, tuple(reasons), total)


def _explain_popularity(model: Any, targets: np.ndarray, user: int | None,
                        context: Mapping[str, Any] | None) -> list[Explanation]:
    seg = -1
    if user is not None:
        seg = int(model.user_segment_[int(user)])
    name = (context or {}).get("user_segment")
    if user is None and name is not None and str(name) in model.segment_names_:
        seg = model.segment_names_.index(str(name))
    bucket = model.bucket_of(context)
    bucket_key = model.context_key or model.time_buckets
    g = model.global_.astype(np.float64)
    scores = (model.score_users([user], context)[0] if user is not None
              else model._score_histories(_empty_row(model.n_items_), context)[0])
    out = []
    for j in targets.tolist():
        score = float(scores[j])
        parts = [Reason("popularity", float(g[j]), _share(float(g[j]), score))]
        base = float(g[j])
        if seg >= 0:
            ps = float(model.segment_probs_[seg, j])
            parts.append(Reason("segment", ps - base, _share(ps - base, score), key="segment",
                                value=model.segment_names_[seg]))
            base = ps
        if bucket is not None:
            lift = float(model.bucket_probs_[bucket, j]) / g[j] if g[j] > 0 else 0.0
            part = base * (lift - 1.0)
            parts.append(Reason("context", part, _share(part, score), key=bucket_key,
                                value=model.bucket_names_[bucket]))
        total = float(sum(r.contribution for r in parts))
        parts.sort(key=lambda r: -r.contribution)
        out.append(Explanation(j, score, "exact", tuple(parts), total))
    return out


# ---------------------------------------------------------------------- helpers


def _flag(e: Explanation) -> Explanation:
    return Explanation(e.item_idx, e.score, e.method,
                       (Reason("exploration", 0.0, 0.0),) + e.reasons, e.total, True)


def _share(part: float, score: float) -> float:
    return part / score if score != 0 and math.isfinite(score) else float("nan")


def _empty_row(n_items: int) -> Any:
    import scipy.sparse as sp

    return sp.csr_matrix((1, n_items), dtype=np.float32)


def _indices(values: Any, name: str, n_items: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(f"{name} must be a 1-d array of item indices, got shape {arr.shape} "
                           f"and dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_items:
        raise InvalidInput(f"{name} must be item indices in [0, {n_items}), got "
                           f"{int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.int64)


def _history(history: Any, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct history items (ascending) and their summed weights (float64)."""
    if history is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if isinstance(history, tuple) and len(history) == 2:
        items = _indices(history[0], "history items", n_items)
        weights = np.asarray(history[1], dtype=np.float64).reshape(-1)
        if weights.shape != items.shape:
            raise InvalidInput(f"history items and weights must have the same length, got "
                               f"{items.size} and {weights.size}")
    else:
        items = _indices(history, "history", n_items)
        weights = np.ones(items.size)
    uniq, inverse = np.unique(items, return_inverse=True)
    return uniq, np.bincount(inverse, weights=weights, minlength=uniq.size)


def _pairs(attrs: Mapping[str, Any], wanted: set[str] | None) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in (attrs or {}).items():
        if wanted is not None and key not in wanted:
            continue
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for v in values:
            if v is not None and not isinstance(v, dict):
                out.append((str(key), v))
    return list(dict.fromkeys(out))


__all__ = ["METHODS", "REASON_KINDS", "Explanation", "Reason", "explain", "explain_content"]
