"""Profiles against a small store computed by hand, on SQLite and PostgreSQL; summaries whose
every number is traceable to a figure; incremental updates equal recomputes; the CLI."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from typer.testing import CliRunner

from personae import Event, Item, Store, User
from personae.cli.main import app
from personae.errors import InvalidInput, NotFound
from personae.profile import (
    ProfileReference,
    UserProfile,
    build_profile,
    profile_reference,
    summarize,
)

DAY = 86400.0
T0 = 1719604800.0  # 2024-06-28 20:00 UTC, a Friday
HL = 8.0  # half-life in days: an event 8 days before the last counts half
NOW = T0 + 10 * DAY


def _events() -> list[Event]:
    return [
        Event("u1", "m1", "view", timestamp=T0, context={"device": "mobile"}),  # Fri 20 h
        Event("u1", "m1", "rating", 5, timestamp=T0 + 600, context={"device": "mobile"}),
        Event("u1", "m2", "like", timestamp=T0 + DAY, context={"device": "tv"}),  # Sat 20 h
        Event("u1", "m3", "dislike", timestamp=T0 + DAY + 3600,  # Sat 21 h
              context={"device": "mobile"}),
        Event("u1", "m4", "rating", 3, timestamp=T0 + 8 * DAY),  # Sat 6 Jul 20 h
        Event("u1", "m2", "impression", timestamp=T0 + 8 * DAY + 60),  # not the user's doing
        Event("u2", "m1", "rating", 1, timestamp=T0),
    ]


def _populate(store: Store) -> None:
    store.upsert_users([User("u1", {"age": 31, "gender": "F", "occupation": "writer"}),
                        User("u2")])
    store.upsert_items([
        Item("m1", "One", categories=["Comedy", "Drama"],
             attributes={"director": "Ann Lee", "year": 1999, "imdb_url": "http://x/1"}),
        Item("m2", "Two", categories=["Comedy"], attributes={"director": "Ann Lee"}),
        Item("m3", "Three", categories=["Horror"], attributes={"director": "Bo Chan"}),
        Item("m4", "Four", categories=["Drama"]),
    ])
    store.add_events(_events())


def _decay(ts: float) -> float:
    anchor = T0 + 8 * DAY  # the last counting event (the impression does not count)
    return 0.5 ** ((anchor - ts) / DAY / HL)


def test_profile_figures_by_hand(store: Store) -> None:
    _populate(store)
    d = build_profile(store, "u1", now=NOW, half_life_days=HL).to_dict()
    a = d["activity"]
    # five counting events (the impression has weight 0), on three distinct days
    assert a["n_events"] == 5
    assert a["events_by_type"] == {"dislike": 1, "impression": 1, "like": 1, "rating": 2,
                                   "view": 1}
    assert a["n_items"] == 3  # m1, m2, m4 positively; m3 only disliked
    assert a["active_days"] == 3
    assert a["period_days"] == pytest.approx(8.0)
    assert a["events_per_week"] == pytest.approx(5 / (8 / 7))
    assert a["items_per_week"] == pytest.approx(3 / (8 / 7))
    # categories: type weight x decay, split over the item's categories; Horror is net negative
    comedy = 1 * _decay(T0) / 2 + 3 * _decay(T0 + 600) / 2 + 4 * _decay(T0 + DAY)
    drama = 1 * _decay(T0) / 2 + 3 * _decay(T0 + 600) / 2 + 3 * 1.0
    cats = {r["category"]: r["share"] for r in d["categories"]}
    assert set(cats) == {"Comedy", "Drama"}
    assert cats["Comedy"] == pytest.approx(comedy / (comedy + drama))
    assert cats["Drama"] == pytest.approx(drama / (comedy + drama))
    assert [r["category"] for r in d["categories"]] == (
        ["Comedy", "Drama"] if comedy > drama else ["Drama", "Comedy"])
    # time: four events at 20 h and one at 21 h; two on Friday, three on Saturday
    t = d["time"]
    assert t["hours"][20] == pytest.approx(0.8) and t["hours"][21] == pytest.approx(0.2)
    assert t["weekdays"]["friday"] == pytest.approx(0.4)
    assert t["weekdays"]["saturday"] == pytest.approx(0.6)
    assert t["weekend_share"] == pytest.approx(0.6)
    assert t["hour_buckets"]["evening"] == pytest.approx(1.0)
    assert d["recency"]["days_since_last"] == pytest.approx(2.0)
    # ratings 5 and 3 (mean 4, spread 1); the store's 5, 3, 1 (mean 3)
    r = d["ratings"]
    assert (r["n"], r["mean"], r["std"]) == (2, pytest.approx(4.0), pytest.approx(1.0))
    assert r["reference_mean"] == pytest.approx(3.0)
    assert r["reference_std"] == pytest.approx(math.sqrt(8 / 3))
    assert r["difference"] == pytest.approx(1.0)
    assert d["demographics"] == {"age": 31, "gender": "F", "occupation": "writer"}
    # favourite director: Ann Lee on two items; Bo Chan only disliked; urls and years skipped
    fav = d["favourite_attributes"]
    assert set(fav) == {"director"}
    assert [(x["value"], x["items"]) for x in fav["director"]] == [("Ann Lee", 2)]
    assert fav["director"][0]["weight"] == pytest.approx(
        1 * _decay(T0) + 3 * _decay(T0 + 600) + 4 * _decay(T0 + DAY))
    # context: device on four counting events, three of them mobile
    assert d["context"]["device"] == [
        {"value": "mobile", "share": 0.75, "events": 3},
        {"value": "tv", "share": 0.25, "events": 1}]
    json.loads(json.dumps(d))  # JSON-able as it is


def test_unknown_user_and_empty_profile(store: Store) -> None:
    _populate(store)
    with pytest.raises(NotFound):
        build_profile(store, "nobody")
    store.upsert_users([User("u3", {"age": 20})])
    p = build_profile(store, "u3", now=NOW)
    d = p.to_dict()
    assert d["activity"]["n_events"] == 0 and d["categories"] == []
    assert d["ratings"]["mean"] is None and d["recency"]["days_since_last"] is None
    text = summarize(p).text
    assert text.startswith("No activity recorded yet (0 events).")
    assert "age 20" in text
    with pytest.raises(InvalidInput, match="half_life_days"):
        build_profile(store, "u1", half_life_days=0)


def test_incremental_update_equals_recompute(store: Store) -> None:
    _populate(store)
    full = build_profile(store, "u1", now=NOW, half_life_days=HL)
    events = store.user_events("u1")
    items = store.get_items({e.item_id for e in events})
    weights = store.event_weights()
    ref = profile_reference(store)
    inc = UserProfile("u1", demographics=dict(store.get_user("u1").attributes),
                      half_life_days=HL, reference=ref)
    # newest first, in three batches: order must not matter for dated events
    for batch in (events[4:], events[2:4], events[:2]):
        inc.update(batch, items, weights, now=NOW)
    assert _close(full.to_dict(), inc.to_dict())
    with pytest.raises(InvalidInput, match="u2"):
        inc.update([Event("u2", "m1", "view", timestamp=T0)], items, weights)


def test_state_round_trip(store: Store) -> None:
    _populate(store)
    p = build_profile(store, "u1", now=NOW, half_life_days=HL)
    saved = json.loads(p.to_json(state=True))
    again = UserProfile.from_dict(saved)
    assert again == p
    assert again.to_dict() == p.to_dict()
    with pytest.raises(InvalidInput, match="saved profile"):
        UserProfile.from_dict(p.to_dict())  # figures only: no state


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert len(a) == len(b)
        return all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12)
        return True
    assert a == b
    return True


# ---------------------------------------------------------------------- summary


_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")


def _resolve(d: Any, path: str) -> Any:
    for part in path.split("."):
        d = d[int(part)] if isinstance(d, list) else d[part]
    return d


def _check_traceable(profile: UserProfile) -> list[str]:
    """Every figure is the profile's value at its path and is shown as in the text; every
    number in a sentence is one of its figures. Returns the sentences."""
    d = profile.to_dict()
    summary = summarize(profile)
    assert summary.text == " ".join(f.text for f in summary.facts)
    for fact in summary.facts:
        shown = []
        for fig in fact.figures:
            assert _resolve(d, fig.path) == fig.value, (fact.text, fig)
            assert fig.shown in fact.text, (fact.text, fig)
            if isinstance(fig.value, int | float) and not isinstance(fig.value, bool):
                x = float(fig.shown.rstrip("%"))
                v = 100 * fig.value if fig.shown.endswith("%") else fig.value
                if fig.path == "ratings.difference":
                    v = abs(v)
                assert abs(x - v) <= 0.5 + 1e-9, (fact.text, fig)  # shown = value, rounded
            shown.append(fig.shown)
        text = fact.text
        for s in sorted(shown, key=len, reverse=True):  # names may hold digits ("18-24 h")
            text = text.replace(s, " ", 1)
        leftover = [n for n in _NUMBER.findall(text)  # the hour ranges of the day parts
                    if n not in ("18", "24", "0", "6", "12")]
        assert not leftover, (fact.text, leftover)
    return [f.text for f in summary.facts]


def test_summary_is_traceable(store: Store) -> None:
    _populate(store)
    p = build_profile(store, "u1", now=NOW, half_life_days=HL)
    sentences = _check_traceable(p)
    topics = [f.topic for f in summarize(p).facts]
    assert topics == ["activity", "categories", "time", "recency", "ratings", "demographics",
                      "favourites", "context"]
    text = " ".join(sentences)
    assert "Active on 3 days, with about 4.4 events and 2.6 distinct items a week." in text
    assert "Saturday (60%)" in text and "in the evening (18-24 h UTC, 100%)" in text
    assert "Last active 2 days ago." in text
    assert "Rates 4.0 on average (spread 1.0, 2 ratings), 1.0 above the store average of " \
        "3.0: rates generously." in text
    assert "Favourite director: Ann Lee (2 items, 100% of the interest in director)." in text
    assert "Mostly device mobile (75% of events with a device)." in text
    assert "Horror" not in text


def test_local_time(store: Store) -> None:
    _populate(store)
    # at UTC-5 the 20-21 h UTC events are afternoon ones (15-16 h), on the same days
    p = build_profile(store, "u1", now=NOW, half_life_days=HL, utc_offset_hours=-5)
    t = p.to_dict()["time"]
    assert t["hour_buckets"]["afternoon"] == pytest.approx(1.0)
    assert t["hours"][15] == pytest.approx(0.8) and t["weekend_share"] == pytest.approx(0.6)
    assert "in the afternoon (12-18 h UTC-5, 100%)" in summarize(p).text
    _check_traceable(p)
    # at UTC+4 the Saturday 20-21 h events fall on Sunday 0-1 h: three local days still
    p = build_profile(store, "u1", now=NOW, half_life_days=HL, utc_offset_hours=4)
    d = p.to_dict()
    assert d["time"]["weekdays"]["sunday"] == pytest.approx(0.6)
    assert d["activity"]["active_days"] == 3
    with pytest.raises(InvalidInput, match="utc_offset_hours"):
        build_profile(store, "u1", utc_offset_hours=30)


def test_summary_verdict_follows_the_figure() -> None:
    base = dict(user_id="x", n_ratings=4, rating_sum=8.0, rating_sumsq=18.0)
    harsh = UserProfile(**base, reference=ProfileReference(3.0, 1.0, 100))  # mean 2: -1.0
    close = UserProfile(**base, reference=ProfileReference(2.1, 1.0, 100))
    assert "1.0 below the store average of 3.0: rates harshly" in summarize(harsh).text
    assert "rates close to the average" in summarize(close).text
    _check_traceable(harsh)


# ---------------------------------------------------------------------- CLI


def test_cli_profile_text_and_json(store_url: str) -> None:
    with Store(store_url) as s:
        _populate(s)
    runner = CliRunner()
    res = runner.invoke(app, ["profile", "u1", "--store", store_url, "--now", str(NOW),
                              "--half-life-days", str(HL)])
    assert res.exit_code == 0, res.output
    assert "Rates 4.0 on average" in res.output and "Last active 2 days ago." in res.output
    res = runner.invoke(app, ["profile", "u1", "--store", store_url, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["profile"]["activity"]["n_events"] == 5
    assert data["summary"]["facts"][0]["topic"] == "activity"
    res = runner.invoke(app, ["profile", "nobody", "--store", store_url])
    assert res.exit_code == 1 and "nobody" in res.output
