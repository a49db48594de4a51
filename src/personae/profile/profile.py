"""A user's profile from the store: activity, tastes, time patterns, ratings, demographics.

>>> profile = build_profile(store, "u1")                  # doctest: +SKIP
>>> profile.to_dict()["categories"][:2]                   # doctest: +SKIP
[{'category': 'Comedy', 'share': 0.45, 'weight': 9.1}, {'category': 'Drama', 'share': 0.25, …}]

:class:`UserProfile` holds *sufficient statistics* (counts, sums, decayed weights), so that it
can be kept current in two ways that give the same figures:

- **recompute**: :func:`build_profile` reads the user's whole history (one query for the events,
  one for their items) and folds every event in;
- **incremental**: :meth:`UserProfile.update` folds in only the new events.

``bench/bench_context.py`` measures both (see ``bench/results/context.md``).

What counts
-----------
An event *counts* when its type's weight (:meth:`personae.Store.event_weights`; custom types
1.0) is not 0: ``impression`` and ``reward`` events record what the system did, not what the
user did. Counting events make the activity figures and the time and context patterns.
Tastes (categories, favourite attributes) use each counting event's type weight, signed
(a ``dislike`` subtracts), time-decayed with ``half_life_days`` relative to the user's last
dated event, and split equally over the item's categories. Ratings are the values of ``rating``
events.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from personae.errors import InvalidInput
from personae.profile.context import WEEKDAYS, context_features

if TYPE_CHECKING:
    from personae.store import Event, Item, Store

PROFILE_FORMAT = "personae.profile/1"
_DAY = 86400.0
_WEEK_DAYS = 7.0
#: Attribute keys never counted as favourites: identifiers, links and dates are unique per item.
_SKIP_SUFFIXES = ("url", "_id", "date")
_MAX_ATTRIBUTE_CHARS = 80
_TOP_ATTRIBUTE_VALUES = 5


@dataclass(frozen=True, slots=True)
class ProfileReference:
    """Store-wide figures a user is compared with: the mean and spread of all ratings."""

    rating_mean: float | None = None
    rating_std: float | None = None
    n_ratings: int = 0


@dataclass
class UserProfile:
    """What the store says about one user, as sufficient statistics (JSON-able).

    Build one with :func:`build_profile`; keep it current with :meth:`update`; read the
    figures with :meth:`to_dict` / :meth:`to_json`. Times are UTC epoch seconds.

    Attributes
    ----------
    user_id : str
    demographics : dict
        The user's attributes in the store, as given (age, gender, occupation, …).
    half_life_days : float
        Decay of tastes: an event this many days before the user's last dated event counts
        half.
    anchor_ts : float or None
        The user's last dated event: the time the decayed weights are expressed at.
    n_events : int
        Counting events (type weight ≠ 0).
    events_by_type : dict str -> int
        Every event of the user, counting or not, per type.
    first_ts, last_ts : float or None
        First and last dated counting event.
    active_days : list of int
        Distinct local days (days since 1970-01-01) with a counting event, ascending.
    item_ids : list of str
        Distinct items with a positive event, ascending.
    hour_counts : list of int (24)
        Dated counting events per local hour.
    weekday_counts : list of int (7)
        Dated counting events per weekday, Monday first.
    category_weights : dict str -> float
        Decayed, type-weighted, signed interest per category.
    attribute_weights : dict str -> dict str -> float
        Same, per item attribute key and value (string values only).
    attribute_items : dict str -> dict str -> int
        Distinct positively consumed items per attribute key and value.
    context_counts : dict str -> dict str -> int
        Counting events per context key and value (device, location, …).
    n_ratings : int
    rating_sum, rating_sumsq : float
    reference : ProfileReference
    as_of : float or None
        When the profile was last updated (recency is measured then).
    utc_offset_hours : float
        The user's local time is UTC + this, for hours, weekdays and days (default 0: UTC).
    """

    user_id: str
    demographics: dict[str, Any] = field(default_factory=dict)
    half_life_days: float = 90.0
    anchor_ts: float | None = None
    n_events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    active_days: list[int] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    hour_counts: list[int] = field(default_factory=lambda: [0] * 24)
    weekday_counts: list[int] = field(default_factory=lambda: [0] * 7)
    category_weights: dict[str, float] = field(default_factory=dict)
    attribute_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    attribute_items: dict[str, dict[str, int]] = field(default_factory=dict)
    context_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    n_ratings: int = 0
    rating_sum: float = 0.0
    rating_sumsq: float = 0.0
    reference: ProfileReference = field(default_factory=ProfileReference)
    as_of: float | None = None
    utc_offset_hours: float = 0.0

    # ------------------------------------------------------------------ keeping current

    def update(self, events: Iterable[Event], items: Mapping[str, Item],
               weights: Mapping[str, float], *, now: float | None = None) -> UserProfile:
        """Fold new events in (in place) and return ``self``.

        Parameters
        ----------
        events : iterable of Event
            The user's events not yet in the profile, any order.
        items : mapping item_id -> Item
            At least the items of ``events`` (an item not found contributes no categories or
            attributes).
        weights : mapping type -> float
            Event-type weights (:meth:`personae.Store.event_weights`); a missing type is 1.0.
        now : float, optional
            The time recency is measured at (default: the current time).

        Events without a time count fully for tastes when added and decay from then on with
        the others; every dated event gives the same figures whether added at once or one by
        one.
        """
        batch = list(events)
        for ev in batch:
            if ev.user_id != self.user_id:
                raise InvalidInput(f"event {ev.event_id!r} is of user {ev.user_id!r}, not of "
                                   f"this profile's user {self.user_id!r}")
        dated = [ev.timestamp for ev in batch
                 if ev.timestamp is not None and float(weights.get(ev.type, 1.0)) != 0]
        if dated:
            new_anchor = max(dated) if self.anchor_ts is None else max(self.anchor_ts, *dated)
            if self.anchor_ts is not None and new_anchor > self.anchor_ts:
                self._rescale(0.5 ** ((new_anchor - self.anchor_ts) / _DAY
                                      / self.half_life_days))
            self.anchor_ts = new_anchor
        days = set(self.active_days)
        seen = set(self.item_ids)
        for ev in batch:
            self._add(ev, items.get(ev.item_id), float(weights.get(ev.type, 1.0)), days, seen)
        self.active_days = sorted(days)
        self.item_ids = sorted(seen)
        self.as_of = float(now) if now is not None else time.time()
        return self

    def _rescale(self, factor: float) -> None:
        for c in self.category_weights:
            self.category_weights[c] *= factor
        for per_key in self.attribute_weights.values():
            for v in per_key:
                per_key[v] *= factor

    def _add(self, ev: Event, item: Item | None, w: float, days: set[int],
             seen: set[str]) -> None:
        self.events_by_type[ev.type] = self.events_by_type.get(ev.type, 0) + 1
        if ev.type == "rating" and ev.value is not None:
            self.n_ratings += 1
            self.rating_sum += float(ev.value)
            self.rating_sumsq += float(ev.value) ** 2
        if w == 0:
            return
        self.n_events += 1
        ts = ev.timestamp
        decay = 1.0
        if ts is not None:
            self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
            self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
            days.add(math.floor((ts + 3600.0 * self.utc_offset_hours) / _DAY))
            feats = context_features(ts, utc_offset_hours=self.utc_offset_hours)
            self.hour_counts[feats["hour"]] += 1
            self.weekday_counts[WEEKDAYS.index(feats["weekday"])] += 1
            assert self.anchor_ts is not None
            decay = 0.5 ** ((self.anchor_ts - ts) / _DAY / self.half_life_days)
        for key, value in (ev.context or {}).items():
            label = _context_label(value)
            if label is not None:
                per = self.context_counts.setdefault(str(key), {})
                per[label] = per.get(label, 0) + 1
        if item is None:
            return
        signed = w * decay
        if item.categories:
            share = signed / len(item.categories)
            for c in item.categories:
                self.category_weights[c] = self.category_weights.get(c, 0.0) + share
        first_time = w > 0 and item.item_id not in seen
        if w > 0:
            seen.add(item.item_id)
        for key, values in attribute_values(item.attributes):
            per_w = self.attribute_weights.setdefault(key, {})
            per_n = self.attribute_items.setdefault(key, {})
            for v in values:
                per_w[v] = per_w.get(v, 0.0) + signed / len(values)
                if first_time:
                    per_n[v] = per_n.get(v, 0) + 1

    # ------------------------------------------------------------------ figures

    def to_dict(self, *, state: bool = False) -> dict[str, Any]:
        """The profile's figures, JSON-ready.

        With ``state=True`` the sufficient statistics are included under ``"state"``, and
        :meth:`from_dict` rebuilds the profile from the result.
        """
        out: dict[str, Any] = {
            "format": PROFILE_FORMAT,
            "user_id": self.user_id,
            "as_of": self.as_of,
            "utc_offset_hours": self.utc_offset_hours,
            "demographics": dict(self.demographics),
            "activity": self.activity(),
            "categories": self.categories(),
            "time": self.time_pattern(),
            "recency": self.recency(),
            "ratings": self.ratings(),
            "favourite_attributes": self.favourite_attributes(),
            "context": self.context_shares(),
        }
        if state:
            raw = asdict(self)
            raw["reference"] = asdict(self.reference)
            out["state"] = raw
        return out

    def to_json(self, *, state: bool = False, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(state=state), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserProfile:
        """The profile saved by ``to_dict(state=True)``."""
        if data.get("format") != PROFILE_FORMAT or "state" not in data:
            raise InvalidInput(f"not a saved profile: expected format {PROFILE_FORMAT!r} with a "
                               "'state' (written by to_dict(state=True))")
        raw = dict(data["state"])
        raw["reference"] = ProfileReference(**raw.get("reference", {}))
        return cls(**raw)

    def activity(self) -> dict[str, Any]:
        """Counts and rates. The rates are over the user's active period, from the first to the
        last counting event, taken as at least one week (``period_days``)."""
        span = (self.last_ts - self.first_ts) / _DAY if self.first_ts is not None and \
            self.last_ts is not None else 0.0
        weeks = max(span, _WEEK_DAYS) / _WEEK_DAYS
        return {
            "n_events": self.n_events,
            "n_items": len(self.item_ids),
            "events_by_type": dict(sorted(self.events_by_type.items())),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "active_days": len(self.active_days),
            "period_days": span,
            "events_per_week": self.n_events / weeks,
            "items_per_week": len(self.item_ids) / weeks,
        }

    def categories(self) -> list[dict[str, Any]]:
        """Categories with positive net interest, by share (descending, then name); shares of
        the positive total sum to 1."""
        positive = {c: w for c, w in self.category_weights.items() if w > 1e-12}
        total = sum(positive.values())
        rows = [{"category": c, "share": w / total, "weight": w} for c, w in positive.items()]
        return sorted(rows, key=lambda r: (-r["share"], r["category"]))

    def time_pattern(self) -> dict[str, Any]:
        """Shares of dated counting events per hour (24), per weekday, per part of the day
        (``hour_bucket``) and on weekends; all ``None`` without dated events."""
        n = sum(self.hour_counts)
        if n == 0:
            return {"n_dated": 0, "hours": None, "weekdays": None, "hour_buckets": None,
                    "weekend_share": None}
        buckets = {b: sum(self.hour_counts[6 * k:6 * k + 6]) / n
                   for k, b in enumerate(("night", "morning", "afternoon", "evening"))}
        return {
            "n_dated": n,
            "hours": [c / n for c in self.hour_counts],
            "weekdays": {d: c / n for d, c in zip(WEEKDAYS, self.weekday_counts, strict=True)},
            "hour_buckets": buckets,
            "weekend_share": (self.weekday_counts[5] + self.weekday_counts[6]) / n,
        }

    def recency(self) -> dict[str, Any]:
        """The last counting event and how many days before ``as_of`` it was."""
        days = None
        if self.last_ts is not None and self.as_of is not None:
            days = max(0.0, (self.as_of - self.last_ts) / _DAY)
        return {"last_ts": self.last_ts, "days_since_last": days}

    def ratings(self) -> dict[str, Any]:
        """Mean and spread (population standard deviation) of the user's ratings, and the
        difference from the store-wide mean."""
        n = self.n_ratings
        mean = self.rating_sum / n if n else None
        std = math.sqrt(max(0.0, self.rating_sumsq / n - mean ** 2)) if mean is not None \
            else None
        ref = self.reference.rating_mean
        return {"n": n, "mean": mean, "std": std, "reference_mean": ref,
                "reference_std": self.reference.rating_std,
                "difference": None if mean is None or ref is None else mean - ref}

    def favourite_attributes(self) -> dict[str, list[dict[str, Any]]]:
        """Per attribute key, the values of positively consumed items with the most net
        interest (at most 5), with their share of the key's positive interest and the number
        of distinct items."""
        out: dict[str, list[dict[str, Any]]] = {}
        for key in sorted(self.attribute_weights):
            per = {v: w for v, w in self.attribute_weights[key].items() if w > 1e-12}
            total = sum(per.values())
            if not per:
                continue
            ranked = sorted(per.items(), key=lambda vw: (-vw[1], vw[0]))
            rows: list[dict[str, Any]] = [
                {"value": v, "share": w / total, "weight": w,
                 "items": self.attribute_items.get(key, {}).get(v, 0)} for v, w in ranked]
            out[key] = rows[:_TOP_ATTRIBUTE_VALUES]
        return out

    def context_shares(self) -> dict[str, list[dict[str, Any]]]:
        """Per context key of the user's events, each value's share of the counting events that
        carry the key, descending."""
        out: dict[str, list[dict[str, Any]]] = {}
        for key in sorted(self.context_counts):
            per = self.context_counts[key]
            n = sum(per.values())
            rows = [{"value": v, "share": c / n, "events": c} for v, c in per.items()]
            out[key] = sorted(rows, key=lambda r: (-r["events"], r["value"]))
        return out


# ---------------------------------------------------------------------- building


def build_profile(
    store: Store,
    user_id: str,
    *,
    now: float | None = None,
    half_life_days: float = 90.0,
    reference: ProfileReference | None = None,
    limit: int | None = None,
    utc_offset_hours: float = 0.0,
) -> UserProfile:
    """Compute a user's profile from the store (a full recompute).

    Parameters
    ----------
    store : Store
    user_id : str
        :class:`~personae.errors.NotFound` when the store has no such user.
    now : float, optional
        UTC epoch seconds at which recency is measured (default: the current time). Tastes
        decay relative to the user's last event, so ``now`` changes nothing else.
    half_life_days : float, default 90.0
        Taste decay (> 0).
    reference : ProfileReference, optional
        Store-wide figures to compare with; by default computed here with
        :func:`profile_reference` (one aggregate query: pass it when building many profiles).
    limit : int, optional
        Use only the newest ``limit`` events (default: all).
    utc_offset_hours : float, default 0.0
        The user's time zone, for the hour and weekday patterns (in [-24, 24]).

    Costs three queries (user, events, their items) plus the reference.
    """
    if not isinstance(half_life_days, int | float) or not half_life_days > 0:
        raise InvalidInput(f"half_life_days must be a number > 0, got {half_life_days!r}")
    user = store.get_user(user_id)
    events = store.user_events(user_id, limit=limit)
    items = store.get_items({ev.item_id for ev in events})
    ref = reference if reference is not None else profile_reference(store)
    if not isinstance(utc_offset_hours, int | float) or not -24 <= utc_offset_hours <= 24:
        raise InvalidInput(f"utc_offset_hours must be a number in [-24, 24], got "
                           f"{utc_offset_hours!r}")
    profile = UserProfile(user_id=user_id, demographics=dict(user.attributes),
                          half_life_days=float(half_life_days), reference=ref,
                          utc_offset_hours=float(utc_offset_hours))
    return profile.update(events, items, store.event_weights(), now=now)


def profile_reference(store: Store) -> ProfileReference:
    """Mean and standard deviation of every ``rating`` event's value in the store."""
    from sqlalchemy import func, select

    from personae.store import schema as S

    with store.engine.connect() as conn:
        row = conn.execute(
            select(func.count(S.events.c.value), func.avg(S.events.c.value),
                   func.avg(S.events.c.value * S.events.c.value))
            .join(S.event_types, S.event_types.c.type_idx == S.events.c.type_idx)
            .where(S.event_types.c.name == "rating", S.events.c.value.is_not(None))
        ).one()
    n = int(row[0] or 0)
    if n == 0:
        return ProfileReference()
    mean, sq = float(row[1]), float(row[2])
    return ProfileReference(rating_mean=mean, rating_std=math.sqrt(max(0.0, sq - mean * mean)),
                            n_ratings=n)


def _context_label(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float) and len(str(value)) <= _MAX_ATTRIBUTE_CHARS:
        return str(value)
    return None


def attribute_values(attributes: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """``[(key, values)]``: the attributes worth counting as favourites (or as content
    features): string values, or lists of strings, at most 80 characters each; numbers
    (price, year), nested objects, and keys named ``id`` or ending in ``url``, ``_id`` or
    ``date`` (unique per item) are left out."""
    out = []
    for key, value in attributes.items():
        k = str(key).lower()
        if k == "id" or k.endswith(_SKIP_SUFFIXES):
            continue
        if isinstance(value, str):
            values: Sequence[Any] = [value]
        elif isinstance(value, list | tuple):
            values = value
        else:
            continue  # numbers (price, year) and nested objects are not favourites
        clean = [v.strip() for v in values if isinstance(v, str) and v.strip()
                 and len(v) <= _MAX_ATTRIBUTE_CHARS]
        if clean:
            out.append((str(key), list(dict.fromkeys(clean))))
    return out
