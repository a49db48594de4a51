"""A short natural-language summary of a profile, every sentence built from its figures.

An LLM assistant can be given :attr:`Summary.text` as context about a user. Nothing in it is a
template claim: each sentence is generated from numbers of the profile, and
:attr:`Summary.facts` carries, per sentence, the figures it was made from — the path of each in
``profile.to_dict()``, its exact value and the way it is shown in the text::

    >>> summary = summarize(profile)                          # doctest: +SKIP
    >>> summary.text                                          # doctest: +SKIP
    'Active on 21 days, with about 6.2 events and 4.8 distinct items a week. Interest: 45%
    Comedy, 25% Drama. Most active on Friday (31%) and Saturday (24%); in the evening
    (18-24 h, 60%). …'
    >>> summary.facts[0].figures[0]                           # doctest: +SKIP
    Figure(path='activity.active_days', value=21, shown='21')

Words that judge (``rates generously``) come from a stated threshold on a shown figure
(:data:`RATING_THRESHOLD`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from personae.profile.profile import UserProfile

#: A user's mean rating this far (rating points) above / below the store mean "rates
#: generously" / "rates harshly"; closer, "rates close to the average".
RATING_THRESHOLD = 0.25
#: Categories are listed until their shares add up to this much (at most 3).
CATEGORY_COVER = 0.5
#: A context value is named when it has at least this share of the events carrying its key…
CONTEXT_MIN_SHARE = 0.5
#: …and at least this many events.
CONTEXT_MIN_EVENTS = 3
_HOUR_RANGES = {"night": "0-6 h", "morning": "6-12 h", "afternoon": "12-18 h",
                "evening": "18-24 h"}


@dataclass(frozen=True, slots=True)
class Figure:
    """One number (or name) a sentence shows: where it is in ``profile.to_dict()`` (dotted
    path, list positions as numbers), its exact value there, and how it appears in the text."""

    path: str
    value: Any
    shown: str


@dataclass(frozen=True, slots=True)
class Fact:
    """One sentence and the figures it was generated from."""

    topic: str
    text: str
    figures: tuple[Figure, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    """The summary text (the sentences joined) and its facts, in order."""

    text: str
    facts: tuple[Fact, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "facts": [asdict(f) for f in self.facts]}


class _Sentence:
    """Collects the figures of one sentence while its text is written."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.figures: list[Figure] = []

    def num(self, path: str, value: float, *, percent: bool = False,
            digits: int | None = None) -> str:
        if percent:
            shown = f"{round(100 * value)}%"
        elif digits is not None:
            shown = f"{value:.{digits}f}"
        else:
            shown = _number(value)
        self.figures.append(Figure(path, value, shown))
        return shown

    def name(self, path: str, value: Any) -> str:
        shown = str(value)
        self.figures.append(Figure(path, value, shown))
        return shown

    def fact(self, text: str) -> Fact:
        return Fact(self.topic, text, tuple(self.figures))


def summarize(profile: UserProfile) -> Summary:
    """The profile in a few sentences, each with the figures it came from.

    Sentences, in order, each only when its figures exist: activity, categories, time of
    week and day, recency, ratings, demographics, favourite attributes, context.
    """
    d = profile.to_dict()
    facts: list[Fact] = []
    for make in (_activity, _categories, _time, _recency, _ratings, _demographics,
                 _favourites, _context):
        facts.extend(make(d))
    return Summary(" ".join(f.text for f in facts), tuple(facts))


def _number(x: float) -> str:
    """Integers as they are; other numbers with one decimal under 10, none above."""
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return f"{x:.1f}" if abs(x) < 10 else f"{x:.0f}"


def _activity(d: dict[str, Any]) -> list[Fact]:
    a = d["activity"]
    s = _Sentence("activity")
    if a["n_events"] == 0:
        return [s.fact(f"No activity recorded yet ({s.num('activity.n_events', 0)} events).")]
    days = s.num("activity.active_days", a["active_days"])
    epw = s.num("activity.events_per_week", a["events_per_week"])
    ipw = s.num("activity.items_per_week", a["items_per_week"])
    return [s.fact(f"Active on {days} {_plural(a['active_days'], 'day')}, with about {epw} "
                   f"events and {ipw} distinct items a week.")]


def _categories(d: dict[str, Any]) -> list[Fact]:
    cats = d["categories"]
    if not cats:
        return []
    s = _Sentence("categories")
    parts, cover = [], 0.0
    for k, row in enumerate(cats[:3]):
        share = s.num(f"categories.{k}.share", row["share"], percent=True)
        parts.append(f"{share} {s.name(f'categories.{k}.category', row['category'])}")
        cover += row["share"]
        if cover >= CATEGORY_COVER:
            break
    return [s.fact(f"Interest: {', '.join(parts)}.")]


def _time(d: dict[str, Any]) -> list[Fact]:
    t = d["time"]
    if not t["n_dated"]:
        return []
    s = _Sentence("time")
    days = sorted(t["weekdays"].items(), key=lambda kv: (-kv[1], kv[0]))
    parts, cover = [], 0.0
    for name, share in days[:3]:
        shown = s.num(f"time.weekdays.{name}", share, percent=True)
        parts.append(f"{name.capitalize()} ({shown})")
        cover += share
        if cover >= 0.5:
            break
    bucket, bshare = max(t["hour_buckets"].items(), key=lambda kv: (kv[1], kv[0]))
    bshown = s.num(f"time.hour_buckets.{bucket}", bshare, percent=True)
    zone = "UTC" + _zone(s, d["utc_offset_hours"])
    return [s.fact(f"Most active on {_join(parts)}; in the {bucket} "
                   f"({_HOUR_RANGES[bucket]} {zone}, {bshown}).")]


def _zone(s: _Sentence, offset: float) -> str:
    """``+2``, ``-5.5``: the offset as a figure (empty for UTC itself)."""
    if offset == 0:
        return ""
    shown = f"{offset:+g}"
    s.figures.append(Figure("utc_offset_hours", offset, shown))
    return shown


def _recency(d: dict[str, Any]) -> list[Fact]:
    days = d["recency"]["days_since_last"]
    if days is None:
        return []
    s = _Sentence("recency")
    shown = s.num("recency.days_since_last", days)
    return [s.fact(f"Last active {shown} {_plural(days, 'day')} ago.")]


def _ratings(d: dict[str, Any]) -> list[Fact]:
    r = d["ratings"]
    if not r["n"]:
        return []
    s = _Sentence("ratings")
    mean = s.num("ratings.mean", r["mean"], digits=1)
    std = s.num("ratings.std", r["std"], digits=1)
    n = s.num("ratings.n", r["n"])
    text = f"Rates {mean} on average (spread {std}, {n} {_plural(r['n'], 'rating')})"
    if r["difference"] is not None:
        diff = r["difference"]
        shown = s.num("ratings.difference", abs(diff), digits=1)
        ref = s.num("ratings.reference_mean", r["reference_mean"], digits=1)
        side = "above" if diff >= 0 else "below"
        verdict = ("rates generously" if diff >= RATING_THRESHOLD else
                   "rates harshly" if diff <= -RATING_THRESHOLD else "rates close to the average")
        s.figures[-2] = Figure("ratings.difference", diff, shown)
        text += f", {shown} {side} the store average of {ref}: {verdict}"
    return [s.fact(text + ".")]


def _demographics(d: dict[str, Any]) -> list[Fact]:
    demo = {k: v for k, v in d["demographics"].items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)}
    if not demo:
        return []
    s = _Sentence("demographics")
    parts = []
    for key in sorted(demo):
        value = demo[key]
        shown = s.num(f"demographics.{key}", value) if isinstance(value, int | float) \
            else s.name(f"demographics.{key}", value)
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return [s.fact(f"Profile: {', '.join(parts)}.")]


def _favourites(d: dict[str, Any]) -> list[Fact]:
    out = []
    for key, rows in d["favourite_attributes"].items():
        top = rows[0]
        if top["items"] < 2:
            continue  # one item is not a favourite
        s = _Sentence("favourites")
        value = s.name(f"favourite_attributes.{key}.0.value", top["value"])
        n = s.num(f"favourite_attributes.{key}.0.items", top["items"])
        share = s.num(f"favourite_attributes.{key}.0.share", top["share"], percent=True)
        out.append(s.fact(f"Favourite {key.replace('_', ' ')}: {value} ({n} items, {share} of "
                          f"the interest in {key.replace('_', ' ')})."))
    return out[:3]


def _context(d: dict[str, Any]) -> list[Fact]:
    out = []
    for key, rows in d["context"].items():
        top = rows[0]
        if top["share"] < CONTEXT_MIN_SHARE or top["events"] < CONTEXT_MIN_EVENTS:
            continue
        s = _Sentence("context")
        value = s.name(f"context.{key}.0.value", top["value"])
        share = s.num(f"context.{key}.0.share", top["share"], percent=True)
        out.append(s.fact(f"Mostly {key.replace('_', ' ')} {value} ({share} of events "
                          f"with a {key.replace('_', ' ')})."))
    return out


def _plural(n: float, word: str) -> str:
    return word if n == 1 else word + "s"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
