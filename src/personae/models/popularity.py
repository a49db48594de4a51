"""Most popular items: global, time-decayed, per user segment and per context bucket.

Popularity is the baseline every model must beat and the answer for a user about whom nothing
is known. It learns item *shares* (probabilities summing to 1):

- ``p(i)``: the share of item ``i`` among all (decayed) events;
- ``p(i | s)`` per user segment ``s`` (an age group, a country…), shrunk toward ``p(i)`` so that a
  small segment falls back to the global ranking:
  ``p(i | s) = (c_si + shrinkage · p(i)) / (c_s + shrinkage)``;
- ``p(i | b)`` per context bucket ``b`` (a device, a daypart…), shrunk the same way.

With both a segment and a bucket, the score is ``p(i | s) · p(i | b) / p(i)``: the two are
taken as independent given the item.

Segments are given in index space (see :mod:`personae.data.features` to build them from a
store); time buckets can instead be computed by the model from event times
(``time_buckets="daypart"``) and, at request time, from ``context["ts"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from personae.data.features import TIME_BUCKETS, time_buckets
from personae.errors import InvalidInput
from personae.models._params import check_number
from personae.models.base import Recommender

_WEIGHTINGS = ("count", "weight")
_DAY = 86400.0


class Popularity(Recommender):
    """Most-popular recommender.

    Parameters
    ----------
    half_life_days : float, optional
        Time decay: an event ``half_life_days`` older than ``now`` counts half. Needs event
        times (fit on an :class:`~personae.data.interactions.Interactions`); undated events are
        not decayed. ``None`` (default): no decay.
    now : float, optional
        Reference time for the decay, UTC epoch seconds. Default: the last event's time.
    weighting : {"count", "weight"}, default "count"
        ``count``: every positive event counts 1. ``weight``: it counts its type weight (a
        purchase more than a view). Fit on a bare matrix, each non-zero cell is one event.
    shrinkage : float, default 50.0
        Pseudo-events (≥ 0) pulling a segment's or bucket's shares toward the global ones.
    context_key : str, optional
        The request-context field whose value picks a bucket learned from ``event_segments``
        (e.g. ``"device"``).
    time_buckets : {"daypart", "weekpart", "hour", "daypart_weekpart"}, optional
        Learn one bucket per time bucket of the event times, picked at request time from
        ``context["ts"]`` (UTC epoch seconds). Exclusive with ``context_key``.
    utc_offset_hours : float, default 0.0
        Local time offset used to compute time buckets.

    Notes
    -----
    Scoring a history (``score_histories``) ignores its items: a new user gets the ranking of
    the segment named by ``context["user_segment"]`` (or the global one) in the request's bucket.

    Attributes
    ----------
    global_ : ndarray (n_items,), float32
        ``p(i)``.
    segment_probs_ : ndarray (n_segments, n_items), float32
    user_segment_ : ndarray (n_users,), int64 (-1: no segment)
    segment_names_ : tuple of str
    bucket_probs_ : ndarray (n_buckets, n_items), float32
    bucket_names_ : tuple of str
    now_ : float or None
    """

    name: ClassVar[str] = "popularity"
    scores_histories: ClassVar[bool] = True
    uses_context: ClassVar[bool] = True

    global_: np.ndarray
    segment_probs_: np.ndarray
    user_segment_: np.ndarray
    segment_names_: tuple[str, ...]
    bucket_probs_: np.ndarray
    bucket_names_: tuple[str, ...]
    now_: float | None

    def __init__(
        self,
        half_life_days: float | None = None,
        now: float | None = None,
        weighting: str = "count",
        shrinkage: float = 50.0,
        context_key: str | None = None,
        time_buckets: str | None = None,
        utc_offset_hours: float = 0.0,
    ) -> None:
        self.half_life_days = half_life_days
        self.now = now
        self.weighting = weighting
        self.shrinkage = shrinkage
        self.context_key = context_key
        self.time_buckets = time_buckets
        self.utc_offset_hours = utc_offset_hours

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        data: Any,
        *,
        user_segments: np.ndarray | Sequence[int] | None = None,
        segment_names: Sequence[str] | None = None,
        event_segments: np.ndarray | Sequence[int] | None = None,
        event_segment_names: Sequence[str] | None = None,
    ) -> Self:
        """Learn the shares.

        Parameters
        ----------
        data : Interactions or scipy.sparse matrix (n_users, n_items)
        user_segments : int array (n_users,), optional
            Each user's segment code (-1: none), indexing ``segment_names``.
        segment_names : sequence of str, optional
            Names of the user segments (default ``"0"``, ``"1"``, …).
        event_segments : int array (n_events,), optional
            Each event's bucket code (-1: none), aligned with the view's events; used with
            ``context_key``.
        event_segment_names : sequence of str, optional
            Names of the buckets, the values ``context[context_key]`` takes.
        """
        self._inputs = (user_segments, segment_names, event_segments, event_segment_names)
        try:
            return super().fit(data)
        finally:
            del self._inputs

    def _validate_params(self) -> None:
        if self.half_life_days is not None:
            _check_number(self.half_life_days, "half_life_days", "a float > 0 or None",
                          lambda v: v > 0)
        if self.now is not None:
            _check_number(self.now, "now", "a time in epoch seconds or None", np.isfinite)
        if self.weighting not in _WEIGHTINGS:
            raise InvalidInput(
                f"The 'weighting' parameter of Popularity must be one of {_WEIGHTINGS}. "
                f"Got {self.weighting!r} instead."
            )
        _check_number(self.shrinkage, "shrinkage", "a float >= 0", lambda v: v >= 0)
        if self.context_key is not None and not isinstance(self.context_key, str):
            raise InvalidInput(
                f"The 'context_key' parameter of Popularity must be a str or None. "
                f"Got {self.context_key!r} instead."
            )
        if self.time_buckets is not None and self.time_buckets not in TIME_BUCKETS:
            raise InvalidInput(
                f"The 'time_buckets' parameter of Popularity must be one of {TIME_BUCKETS} or "
                f"None. Got {self.time_buckets!r} instead."
            )
        if self.time_buckets is not None and self.context_key is not None:
            raise InvalidInput(
                "The 'time_buckets' and 'context_key' parameters of Popularity are exclusive: "
                "buckets come either from event times or from a context field."
            )
        _check_number(self.utc_offset_hours, "utc_offset_hours", "a float in [-24, 24]",
                      lambda v: -24 <= v <= 24)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        user_segments, segment_names, event_segments, event_names = getattr(
            self, "_inputs", (None, None, None, None))
        n_users, n_items = X.shape
        if view is not None:
            users = view.event_users.astype(np.int64)
            items = view.event_items.astype(np.int64)
            weights = view.event_weights.astype(np.float64)
            ts = view.event_ts.astype(np.float64)
        else:
            coo = X.tocoo()
            users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
            weights = coo.data.astype(np.float64)
            ts = np.full(users.shape[0], np.nan)
        n_events = users.shape[0]
        unit = np.ones(n_events) if self.weighting == "count" else weights.copy()
        unit[weights <= 0] = 0.0  # negative feedback does not make an item popular

        self.now_ = None
        if self.half_life_days is not None:
            if np.isnan(ts).all():
                raise InvalidInput(
                    "Popularity with 'half_life_days' needs event times: fit on an "
                    "Interactions view with timestamps (a bare matrix has none)"
                )
            self.now_ = float(self.now) if self.now is not None else float(np.nanmax(ts))
            age = np.clip((self.now_ - ts) / _DAY, 0.0, None)
            unit *= np.where(np.isnan(age), 1.0, 0.5 ** (np.nan_to_num(age) /
                                                         float(self.half_life_days)))

        counts = np.bincount(items, weights=unit, minlength=n_items)
        total = counts.sum()
        p = counts / total if total > 0 else counts
        self.global_ = p.astype(np.float32)

        # user segments
        if user_segments is not None:
            seg = _codes(user_segments, n_users, "user_segments", "n_users")
            names = _names(segment_names, seg, "segment_names")
            self.user_segment_ = seg
            self.segment_names_ = names
            self.segment_probs_ = self._shrunk(seg[users], items, unit, len(names), n_items, p)
        elif segment_names is not None:
            raise InvalidInput("segment_names given without user_segments")
        else:
            self.user_segment_ = np.full(n_users, -1, dtype=np.int64)
            self.segment_names_ = ()
            self.segment_probs_ = np.zeros((0, n_items), dtype=np.float32)

        # context buckets
        if self.time_buckets is not None:
            if event_segments is not None:
                raise InvalidInput("event_segments cannot be given with 'time_buckets': the "
                                   "buckets are computed from event times")
            if np.isnan(ts).all():
                raise InvalidInput("Popularity with 'time_buckets' needs event times: fit on "
                                   "an Interactions view with timestamps")
            bucket, bnames = time_buckets(ts, self.time_buckets,
                                          utc_offset_hours=float(self.utc_offset_hours))
        elif event_segments is not None:
            if self.context_key is None:
                raise InvalidInput("event_segments need the 'context_key' parameter: the "
                                   "request-context field that picks a bucket")
            bucket = _codes(event_segments, n_events, "event_segments", "n_events")
            bnames = _names(event_names, bucket, "event_segment_names")
        elif self.context_key is not None:
            raise InvalidInput(
                f"Popularity(context_key={self.context_key!r}) needs event_segments at fit: "
                "see personae.data.features.event_segments_from_store"
            )
        else:
            bucket, bnames = None, ()
        if bucket is None:
            self.bucket_names_ = ()
            self.bucket_probs_ = np.zeros((0, n_items), dtype=np.float32)
        else:
            self.bucket_names_ = tuple(bnames)
            self.bucket_probs_ = self._shrunk(bucket, items, unit, len(bnames), n_items, p)

    def _shrunk(self, groups: np.ndarray, items: np.ndarray, unit: np.ndarray, n_groups: int,
                n_items: int, p: np.ndarray) -> np.ndarray:
        keep = groups >= 0
        C = sp.coo_matrix((unit[keep], (groups[keep], items[keep])),
                          shape=(n_groups, n_items)).toarray()
        size = C.sum(axis=1, keepdims=True)
        s = float(self.shrinkage)
        denom = size + s
        out = np.where(denom > 0, (C + s * p[None, :]) / np.where(denom > 0, denom, 1.0),
                       p[None, :])
        return out.astype(np.float32)

    # ------------------------------------------------------------------ scoring

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self._combine(self.user_segment_[users], context)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        seg = -1
        name = (context or {}).get("user_segment")
        if name is not None and str(name) in self.segment_names_:
            seg = self.segment_names_.index(str(name))
        return self._combine(np.full(histories.shape[0], seg, dtype=np.int64), context)

    def _combine(self, segments: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        base = np.broadcast_to(self.global_, (segments.shape[0], self.n_items_)).copy()
        has = segments >= 0
        if has.any():
            base[has] = self.segment_probs_[segments[has]]
        b = self.bucket_of(context)
        if b is not None:
            g = self.global_
            lift = np.divide(self.bucket_probs_[b], g, out=np.zeros_like(g), where=g > 0)
            base *= lift[None, :]
        return base.astype(np.float32, copy=False)

    def bucket_of(self, context: Mapping[str, Any] | None) -> int | None:
        """The bucket a request context picks (``None``: none, the global shares apply)."""
        if not context or not self.bucket_names_:
            return None
        if self.time_buckets is not None:
            ts = context.get("ts")
            if ts is None:
                return None
            from personae.store.records import to_timestamp

            t = to_timestamp(ts, "context['ts']")
            codes, _ = time_buckets(np.array([t], dtype=np.float64), self.time_buckets,
                                    utc_offset_hours=float(self.utc_offset_hours))
            return int(codes[0]) if codes[0] >= 0 else None
        value = context.get(self.context_key) if self.context_key else None
        if value is None or str(value) not in self.bucket_names_:
            return None
        return self.bucket_names_.index(str(value))

    # ------------------------------------------------------------------ persistence

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"global": self.global_, "segment_probs": self.segment_probs_,
                "user_segment": self.user_segment_, "bucket_probs": self.bucket_probs_}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.global_ = arrays["global"]
        self.segment_probs_ = arrays["segment_probs"]
        self.user_segment_ = arrays["user_segment"]
        self.bucket_probs_ = arrays["bucket_probs"]

    def _get_meta(self) -> dict[str, Any]:
        return {"segment_names": list(self.segment_names_),
                "bucket_names": list(self.bucket_names_), "now": self.now_}

    def _set_meta(self, meta: Mapping[str, Any]) -> None:
        self.segment_names_ = tuple(meta.get("segment_names", ()))
        self.bucket_names_ = tuple(meta.get("bucket_names", ()))
        self.now_ = meta.get("now")


def _check_number(value: Any, name: str, expected: str, ok: Any) -> None:
    check_number("Popularity", name, value, expected, ok)


def _codes(values: Any, n: int, name: str, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(
            f"{name} must be an int array with one code per {what[2:-1]} ({what} = {n}); got "
            f"shape {arr.shape} and dtype {arr.dtype}"
        )
    return arr.astype(np.int64)


def _names(names: Sequence[str] | None, codes: np.ndarray, name: str) -> tuple[str, ...]:
    n = int(codes.max()) + 1 if codes.size else 0
    if names is None:
        return tuple(str(k) for k in range(n))
    out = tuple(str(s) for s in names)
    if len(out) < n:
        raise InvalidInput(f"{name} has {len(out)} names but the codes go up to {n - 1}")
    return out
