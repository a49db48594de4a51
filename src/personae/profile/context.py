"""Context: the key/values of an event or request, plus features derived from its time.

:func:`context_features` turns a timestamp and a context mapping (device, location, weather, …)
into one flat dict of features::

    >>> context_features(1719604800.0, {"device": "mobile"})   # 2024-06-28 20:00 UTC, a Friday
    {'hour': 20, 'hour_bucket': 'evening', 'weekday': 'friday', 'weekend': False, \
'season': 'summer', 'device': 'mobile'}

:class:`ContextLift` learns how much each item's share of events rises or falls in each
context value (``p(i | f = v) / p(i)``, shrunk toward 1 for rare values) and turns a request
context into one log-lift per item; :meth:`ContextLift.rerank` adds it to a model's scores.
That is how a ranking is made context-aware in ``bench/bench_context.py``: the same model's
scores, with and without the lift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from personae.data.features import DAYPARTS
from personae.errors import InvalidInput

#: Features derived from a timestamp, in the order :func:`context_features` returns them.
TIME_FEATURES = ("hour", "hour_bucket", "weekday", "weekend", "season")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Meteorological seasons of the northern hemisphere by month (1-12): Dec–Feb winter, ….
_NORTH_SEASON = ("winter", "winter", "spring", "spring", "spring", "summer", "summer",
                 "summer", "autumn", "autumn", "autumn", "winter")
_OPPOSITE = {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}
_DAY = 86400.0


def context_features(
    ts: Any = None,
    context: Mapping[str, Any] | None = None,
    *,
    utc_offset_hours: float = 0.0,
    hemisphere: str = "north",
) -> dict[str, Any]:
    """Features of one moment: derived from its time, merged with its key/values.

    Parameters
    ----------
    ts : float, datetime or ISO-8601 str, optional
        The moment (UTC epoch seconds). ``None``: ``context["ts"]`` (or ``context["timestamp"]``)
        if present, else no time features.
    context : mapping, optional
        Key/values of the event or request (device, location, weather, …). They are copied
        into the result and **win** over a derived feature of the same name (a client that sends
        ``"weekend": true`` on a public holiday knows better than the calendar). ``ts`` and
        ``timestamp`` keys are consumed, not copied.
    utc_offset_hours : float, default 0.0
        Local time = UTC + this, for the hour and the day (in [-24, 24]).
    hemisphere : {"north", "south"}, default "north"
        Seasons are meteorological (Dec–Feb winter in the north, summer in the south).

    Returns
    -------
    dict
        ``hour`` (int 0–23), ``hour_bucket`` (``night`` 0–5 h, ``morning`` 6–11, ``afternoon``
        12–17, ``evening`` 18–23: :data:`personae.data.features.DAYPARTS`), ``weekday``
        (``"monday"``…), ``weekend`` (bool: Saturday or Sunday), ``season``; then the context's
        other keys.
    """
    if hemisphere not in ("north", "south"):
        raise InvalidInput(f"hemisphere must be 'north' or 'south', got {hemisphere!r}")
    if not isinstance(utc_offset_hours, int | float) or not -24 <= utc_offset_hours <= 24:
        raise InvalidInput(f"utc_offset_hours must be a number in [-24, 24], got "
                           f"{utc_offset_hours!r}")
    ctx: dict[str, Any] = {}
    if context is not None:
        if not isinstance(context, Mapping):
            raise InvalidInput(f"context must be a mapping of key/values, got "
                               f"{type(context).__name__}")
        ctx = dict(context)
    for key in ("ts", "timestamp"):
        value = ctx.pop(key, None)
        if ts is None and value is not None:
            ts = value
    out: dict[str, Any] = {}
    if ts is not None:
        from personae.store.records import to_timestamp

        t = to_timestamp(ts, "ts")
        assert t is not None
        out.update(_time_features(t + 3600.0 * float(utc_offset_hours), hemisphere))
    for key, value in ctx.items():
        if not isinstance(key, str):
            raise InvalidInput(f"context keys must be strings, got {key!r}")
        out[key] = value
    return out


def _time_features(local: float, hemisphere: str) -> dict[str, Any]:
    day = math.floor(local / _DAY)
    hour = int(math.floor(local / 3600.0)) % 24
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    month = _month_of_day(day)
    season = _NORTH_SEASON[month - 1]
    if hemisphere == "south":
        season = _OPPOSITE[season]
    return {"hour": hour, "hour_bucket": DAYPARTS[hour // 6], "weekday": WEEKDAYS[weekday],
            "weekend": weekday >= 5, "season": season}


def _month_of_day(day: int) -> int:
    """Month (1–12) of the UTC day number ``day`` (days since 1970-01-01)."""
    return int(np.datetime64(day, "D").astype("datetime64[M]").astype(np.int64) % 12) + 1


def time_feature_columns(ts: np.ndarray | Sequence[float], *, utc_offset_hours: float = 0.0,
                         hemisphere: str = "north") -> dict[str, np.ndarray]:
    """:func:`context_features`' time features for many timestamps at once.

    Returns a dict of object arrays (n,), one per name in :data:`TIME_FEATURES`, with ``None``
    where a time is NaN. Equal, element by element, to calling :func:`context_features`.
    """
    t = np.asarray(ts, dtype=np.float64) + 3600.0 * float(utc_offset_hours)
    known = ~np.isnan(t)
    day = np.floor(np.where(known, t, 0.0) / _DAY).astype(np.int64)
    hour = (np.floor(np.where(known, t, 0.0) / 3600.0).astype(np.int64)) % 24
    weekday = (day + 3) % 7
    month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    seasons = np.array(_NORTH_SEASON if hemisphere == "north" else
                       tuple(_OPPOSITE[s] for s in _NORTH_SEASON), dtype=object)
    cols = {
        "hour": hour.astype(object),
        "hour_bucket": np.array(DAYPARTS, dtype=object)[hour // 6],
        "weekday": np.array(WEEKDAYS, dtype=object)[weekday],
        "weekend": (weekday >= 5).astype(object),
        "season": seasons[month],
    }
    for col in cols.values():
        col[~known] = None
    return cols


class ContextLift:
    """Per-item lifts of context values, learned from events: how context shifts choice.

    For each context feature ``f`` (e.g. ``"hour_bucket"``, ``"weekend"``, ``"device"``) and
    value ``v``::

        p(i | f = v) = (c_vi + shrinkage · p(i)) / (c_v + shrinkage)
        log_lift(i | context) = Σ_f log(p(i | f = context[f]) / p(i))

    with ``c_vi`` the events on item ``i`` in value ``v`` and ``p(i)`` the item's overall share
    (one pseudo-event spread uniformly keeps it > 0). Features are taken as independent given
    the item (naive Bayes), so a context with several known features adds their log-lifts; a
    feature that is absent from the request, or a value never seen, adds 0.

    With ``item_groups`` (e.g. an item × category matrix) the lifts are learned per *group*
    from the events spread equally over each item's groups, and an item's log-lift is the mean
    of its groups' (0 for an item in no group): far fewer numbers to estimate, so less noise
    when context acts on categories rather than on single items; and new items get a lift.

    Parameters
    ----------
    features : sequence of str, default ("hour_bucket", "weekend")
        Feature names, as :func:`context_features` returns them.
    shrinkage : float, default 50.0
        Pseudo-events (>= 0) pulling each value's shares toward the overall ones.
    utc_offset_hours : float, default 0.0
        Local time offset for the derived features.

    Attributes
    ----------
    values_ : dict feature -> tuple of str
        The values seen per feature (as strings).
    log_lift_ : dict feature -> ndarray (n_values, n_items) float32
    n_items_ : int
    """

    def __init__(self, features: Sequence[str] = ("hour_bucket", "weekend"),
                 shrinkage: float = 50.0, utc_offset_hours: float = 0.0) -> None:
        self.features = tuple(features)
        self.shrinkage = shrinkage
        self.utc_offset_hours = utc_offset_hours

    def fit(self, items: np.ndarray | Sequence[int], n_items: int, *,
            ts: np.ndarray | Sequence[float] | None = None,
            contexts: Sequence[Mapping[str, Any]] | None = None,
            weights: np.ndarray | Sequence[float] | None = None,
            item_groups: sp.spmatrix | np.ndarray | None = None) -> Self:
        """Learn the lifts from events.

        Parameters
        ----------
        items : int array (n_events,)
            Item index of each event, in ``[0, n_items)``.
        n_items : int
        ts : float array (n_events,), optional
            Event times (UTC epoch seconds, NaN: unknown), for the derived time features.
        contexts : sequence of mappings (n_events,), optional
            Each event's key/values (device, …).
        weights : float array (n_events,), optional
            How much each event counts (default 1); events with weight <= 0 are ignored.
        item_groups : (n_items, n_groups) matrix, optional
            Non-zero where an item belongs to a group (a category): learn per group.
        """
        if not self.features:
            raise InvalidInput("ContextLift needs at least one feature name in 'features'")
        if not isinstance(self.shrinkage, int | float) or not self.shrinkage >= 0:
            raise InvalidInput(f"The 'shrinkage' parameter of ContextLift must be a float >= 0. "
                               f"Got {self.shrinkage!r} instead.")
        it = np.asarray(items, dtype=np.int64).reshape(-1)
        n = it.size
        if n and (it.min() < 0 or it.max() >= n_items):
            raise InvalidInput(f"items must be in [0, {n_items}), got {it.min()}..{it.max()}")
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,):
            raise InvalidInput(f"weights must have one entry per event ({n}), got {w.shape}")
        w = np.where(w > 0, w, 0.0)
        cols = self._columns(n, ts, contexts)
        G = self._groups(item_groups, n_items)  # (n_items, n_units), rows sum to 1 or 0
        n_units = G.shape[1]
        per_item = np.bincount(it, weights=w, minlength=n_items)
        counts = np.asarray(per_item @ G).ravel() + 1.0 / n_units
        p = counts / counts.sum()
        s = float(self.shrinkage)
        self.values_: dict[str, tuple[str, ...]] = {}
        self.log_lift_: dict[str, np.ndarray] = {}
        for f in self.features:
            col = cols[f]
            known = np.array([v is not None for v in col], dtype=bool)
            labels = np.array([_label(v) for v in col[known]], dtype=object)
            names, codes = np.unique(labels.astype(str), return_inverse=True) if labels.size \
                else (np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64))
            C = sp.csr_matrix((w[known], (codes, it[known])), shape=(len(names), n_items))
            C = np.asarray((C @ G).todense()) if sp.issparse(G) else np.asarray(C @ G)
            size = C.sum(axis=1, keepdims=True)
            shares = (C + s * p[None, :]) / np.maximum(size + s, 1e-12)
            # a value with no events and no shrinkage has shares 0: no lift
            lift = np.where(shares > 0, np.log(np.maximum(shares, 1e-300) / p[None, :]), 0.0)
            if item_groups is not None:  # an item's lift: the mean of its groups'
                lift = np.asarray((G @ sp.csr_matrix(lift.T)).todense()).T
            self.values_[f] = tuple(str(v) for v in names)
            self.log_lift_[f] = lift.astype(np.float32)
        self.n_items_ = int(n_items)
        return self

    @staticmethod
    def _groups(item_groups: Any, n_items: int) -> sp.csr_matrix:
        if item_groups is None:
            return sp.identity(n_items, dtype=np.float64, format="csr")
        G = sp.csr_matrix(item_groups, dtype=np.float64)
        if G.shape[0] != n_items or G.shape[1] == 0:
            raise InvalidInput(f"item_groups must be (n_items={n_items}, n_groups >= 1), got "
                               f"shape {G.shape}")
        G.data[:] = 1.0
        G.sum_duplicates()
        size = np.asarray(G.sum(axis=1)).ravel()
        return sp.csr_matrix(sp.diags(1.0 / np.where(size > 0, size, 1.0)) @ G)

    def _columns(self, n: int, ts: Any, contexts: Any) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        time_cols = None
        if ts is not None:
            t = np.asarray(ts, dtype=np.float64)
            if t.shape != (n,):
                raise InvalidInput(f"ts must have one entry per event ({n}), got {t.shape}")
            time_cols = time_feature_columns(t, utc_offset_hours=float(self.utc_offset_hours))
        if contexts is not None and len(contexts) != n:
            raise InvalidInput(f"contexts must have one entry per event ({n}), got "
                               f"{len(contexts)}")
        for f in self.features:
            col = np.full(n, None, dtype=object)
            if time_cols is not None and f in time_cols:
                col = time_cols[f].copy()
            if contexts is not None:
                given = [c.get(f) if c else None for c in contexts]
                for k, v in enumerate(given):
                    if v is not None:
                        col[k] = v
            if time_cols is None and contexts is None:
                raise InvalidInput("ContextLift.fit needs event times (ts) or contexts")
            cols[f] = col
        return cols

    def log_lift(self, context: Mapping[str, Any] | None) -> np.ndarray:
        """Σ of the log-lifts of the context's known features: float32 (n_items,).

        ``context`` is a request context; when it holds ``ts`` the time features are derived
        from it (:func:`context_features`). An empty or ``None`` context gives zeros.
        """
        self._check_fitted()
        out = np.zeros(self.n_items_, dtype=np.float32)
        if not context:
            return out
        feats = context_features(None, context, utc_offset_hours=float(self.utc_offset_hours))
        for f in self.features:
            value = feats.get(f)
            if value is None:
                continue
            label = str(_label(value))
            if label in self.values_[f]:
                out += self.log_lift_[f][self.values_[f].index(label)]
        return out

    def rerank(self, scores: np.ndarray, context: Mapping[str, Any] | None,
               beta: float = 1.0) -> np.ndarray:
        """``scores + beta · log_lift(context)``: float32, same shape as ``scores``.

        ``scores`` should be log-probability-like (``log p`` of a popularity model) or
        standardised per user; ``beta = 0`` returns them unchanged.
        """
        s = np.asarray(scores, dtype=np.float32)
        if s.shape[-1] != getattr(self, "n_items_", s.shape[-1]):
            raise InvalidInput(f"scores must have {self.n_items_} items in the last axis, got "
                               f"{s.shape[-1]}")
        if beta == 0:
            return s.copy()
        return s + np.float32(beta) * self.log_lift(context)

    def explain(self, item: int, context: Mapping[str, Any] | None) -> dict[str, float]:
        """Each known feature's ``feature=value`` → its lift factor for ``item`` (> 1: the
        context favours it). The log of their product is :meth:`log_lift`'s entry."""
        self._check_fitted()
        feats = context_features(None, context or {},
                                 utc_offset_hours=float(self.utc_offset_hours))
        out = {}
        for f in self.features:
            value = feats.get(f)
            label = None if value is None else str(_label(value))
            if label is not None and label in self.values_[f]:
                row = self.values_[f].index(label)
                out[f"{f}={label}"] = float(np.exp(self.log_lift_[f][row, int(item)]))
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            from personae.models.base import NotFitted

            raise NotFitted("ContextLift is not fitted yet; call fit() first")


def _label(value: Any) -> Any:
    """Booleans as lower-case JSON words so that ``True`` and ``"true"`` match."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return value
