"""Segment features in index space: a user's segment (from an attribute), an event's bucket
(from its context or its time).

Every function returns ``(codes, names)``: ``codes`` an int64 array with one entry per user or
event (``-1`` where unknown), ``names`` the tuple of segment names that the codes index. These
feed :class:`personae.models.popularity.Popularity` and any model that learns per segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from personae.errors import InvalidInput

if TYPE_CHECKING:
    from personae.data.interactions import Interactions
    from personae.store import Store

#: Time buckets computed from a timestamp (UTC seconds, shifted by ``utc_offset_hours``).
TIME_BUCKETS = ("daypart", "weekpart", "hour", "daypart_weekpart")
DAYPARTS = ("night", "morning", "afternoon", "evening")  # 0-6, 6-12, 12-18, 18-24 h


def encode(values: Iterable[Any], names: Sequence[str] | None = None
           ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes of ``values`` (``None`` → -1). ``names`` fixes the vocabulary (others → -1);
    by default it is the sorted distinct values, as strings."""
    vals = [None if v is None else str(v) for v in values]
    vocab = tuple(names) if names is not None else tuple(sorted({v for v in vals if v is not None}))
    pos = {n: k for k, n in enumerate(vocab)}
    codes = np.fromiter((pos.get(v, -1) if v is not None else -1 for v in vals), dtype=np.int64,
                        count=len(vals))
    return codes, vocab


def bin_label(value: Any, bins: Sequence[float]) -> str | None:
    """The label of numeric ``value`` among ascending edges ``bins``: ``"<18"``, ``"18-24"``,
    …, ``"56+"`` (edges are inclusive lower bounds; labels show integer upper bounds - 1)."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if np.isnan(x):
        return None
    edges = [float(b) for b in bins]
    k = int(np.searchsorted(edges, x, side="right"))
    if k == 0:
        return f"<{_fmt(edges[0])}"
    if k == len(edges):
        return f"{_fmt(edges[-1])}+"
    return f"{_fmt(edges[k - 1])}-{_fmt(edges[k] - 1)}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def time_buckets(ts: np.ndarray | Sequence[float], kind: str = "daypart", *,
                 utc_offset_hours: float = 0.0) -> tuple[np.ndarray, tuple[str, ...]]:
    """Bucket of each timestamp (UTC epoch seconds; NaN → -1).

    ``kind``: ``"daypart"`` (night 0-6 h, morning 6-12, afternoon 12-18, evening 18-24),
    ``"weekpart"`` (weekday / weekend), ``"hour"`` (``"00"``…``"23"``) or
    ``"daypart_weekpart"`` (``"weekday-morning"``, …).
    """
    if kind not in TIME_BUCKETS:
        raise InvalidInput(f"time bucket kind must be one of {TIME_BUCKETS}. Got {kind!r} instead.")
    t = np.asarray(ts, dtype=np.float64) + 3600.0 * float(utc_offset_hours)
    known = ~np.isnan(t)
    seconds = np.where(known, t, 0.0)
    hour = (np.floor(seconds / 3600.0) % 24).astype(np.int64)
    # 1970-01-01 was a Thursday: day 0 → weekday 3 (Monday = 0)
    weekday = (np.floor(seconds / 86400.0).astype(np.int64) + 3) % 7
    weekend = (weekday >= 5).astype(np.int64)
    daypart = hour // 6
    names: tuple[str, ...]
    if kind == "daypart":
        codes, names = daypart, DAYPARTS
    elif kind == "weekpart":
        codes, names = weekend, ("weekday", "weekend")
    elif kind == "hour":
        codes, names = hour, tuple(f"{h:02d}" for h in range(24))
    else:
        codes = weekend * 4 + daypart
        names = tuple(f"{w}-{d}" for w in ("weekday", "weekend") for d in DAYPARTS)
    return np.where(known, codes, -1), names


def user_segments_from_store(
    store: Store, view: Interactions, attribute: str, *, bins: Sequence[float] | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each view user's segment from the user attribute ``attribute`` (e.g. ``"age"``).

    With ``bins``, numeric values are grouped into ranges (:func:`bin_label`), e.g.
    ``bins=[18, 25, 35, 45, 50, 56]`` for age groups. Users without the attribute get -1.
    """
    labels: list[Any] = [None] * view.n_users
    for user in store.iter_users():
        try:
            u = view.user_index(user.user_id)
        except KeyError:
            continue
        value = user.attributes.get(attribute)
        labels[u] = bin_label(value, bins) if bins is not None else value
    return encode(labels)


def event_segments_from_contexts(
    contexts: Sequence[Mapping[str, Any]], key: str,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each event's bucket from its context field ``key`` (e.g. ``"device"``); -1 if absent."""
    return encode(ctx.get(key) for ctx in contexts)


def event_segments_from_store(
    store: Store, view: Interactions, key: str,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """:func:`event_segments_from_contexts` over ``store.event_contexts()``, aligned with the
    view's events (the view must hold every event of the store: built without ``types=``)."""
    contexts = store.event_contexts()
    if len(contexts) != view.n_events:
        raise InvalidInput(
            f"the store has {len(contexts)} events but the view {view.n_events}: build the view "
            "with Interactions.from_store(store) and no 'types' filter to align event contexts"
        )
    return event_segments_from_contexts(contexts, key)
