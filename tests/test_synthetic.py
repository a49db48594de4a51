"""The synthetic data generator: determinism, sizes, validity, and the planted structure.

The structure tests measure on the generated events what the generator planted (category
tastes, demographics, context, popularity, time patterns, affinity) and compare it with chance
or with a generator run where that part is switched off.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from personae import Event, InvalidInput, Item, User
from personae.data import synthetic as syn
from personae.data.synthetic import (
    CONTEXT_FACTORS,
    DAYPARTS,
    DAYS,
    DEVICES,
    EVENT_TYPES,
    WEATHERS,
    SyntheticConfig,
    category_words,
    generate,
)
from personae.store import KNOWN_EVENT_TYPES

SMALL = SyntheticConfig(n_users=400, n_items=300, n_events=30_000, seed=11)


@pytest.fixture(scope="module")
def data() -> syn.SyntheticData:
    return generate(SMALL)


@pytest.fixture(scope="module")
def arrays(data: syn.SyntheticData) -> syn.EventArrays:
    return data.event_arrays()


@pytest.fixture(scope="module")
def views(arrays: syn.EventArrays) -> np.ndarray:
    """Positions of the ``view`` events: one per interaction, at the interaction's time."""
    return np.flatnonzero(arrays.type_idx == EVENT_TYPES.index("view"))


def all_events(data: syn.SyntheticData, chunk_size: int = 50_000) -> list[Event]:
    return [e for chunk in data.iter_events(chunk_size) for e in chunk]


def same_arrays(a: syn.EventArrays, b: syn.EventArrays) -> bool:
    return all(
        np.array_equal(getattr(a, name), getattr(b, name), equal_nan=name == "value")
        for name in syn.EventArrays.__dataclass_fields__
    )


def context_of(a: syn.EventArrays, j: int) -> dict[str, str]:
    return {"device": DEVICES[a.device_idx[j]], "daypart": DAYPARTS[a.daypart_idx[j]],
            "day": DAYS[int(a.weekend[j])], "weather": WEATHERS[a.weather_idx[j]]}


# ---------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, "n_users must be an int >= 1, got 0"),
        ({"n_items": 2.5}, "n_items must be an int >= 1, got 2.5"),
        ({"n_users": True}, "n_users must be an int >= 1, got True"),
        ({"n_users": 10, "n_events": 5}, "n_events must be an int >= n_users, got 5"),
        ({"seed": -1}, "seed must be an int >= 0, got -1"),
        ({"noise": 1.5}, "noise must be a float in [0, 1], got 1.5"),
        ({"new_item_fraction": 1.0}, "new_item_fraction must be a float in [0, 1), got 1.0"),
        ({"taste_concentration": 0}, "taste_concentration must be a float > 0, got 0"),
        ({"context_strength": float("nan")}, "context_strength must be a float >= 0, got nan"),
        ({"domain": "books"}, "domain must be one of 'movies', 'shop', got 'books'"),
        ({"end": "2024-07-01T12:00:00Z"}, "end must be a UTC midnight"),
        ({"end": "soon"}, "end must be epoch seconds or an ISO-8601 time"),
    ],
)
def test_config_errors_say_what_was_expected(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        SyntheticConfig(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_config_accepts_end_as_text_datetime_or_seconds() -> None:
    a = SyntheticConfig(end="2024-07-01")
    b = SyntheticConfig(end=datetime(2024, 7, 1, tzinfo=UTC))
    c = SyntheticConfig(end=1_719_792_000)
    assert a.end == b.end == c.end == 1_719_792_000.0
    assert a == b == c
    assert a.start == a.end - 180 * 86_400


def test_generate_takes_a_config_keywords_or_both() -> None:
    base = SyntheticConfig(n_users=5, n_items=5, n_events=20)
    assert generate(base).config == base
    assert generate(base, seed=3).config.seed == 3
    assert generate(n_users=5, n_items=5, n_events=20).config == base
    with pytest.raises(InvalidInput, match="config must be a SyntheticConfig"):
        generate({"n_users": 5})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_data(data: syn.SyntheticData,
                                        arrays: syn.EventArrays) -> None:
    again = generate(SMALL)
    assert [u.to_dict() for u in again.users] == [u.to_dict() for u in data.users]
    assert [i.to_dict() for i in again.items] == [i.to_dict() for i in data.items]
    assert same_arrays(again.event_arrays(), arrays)
    assert same_arrays(data.event_arrays(), arrays)  # iterating twice gives the same events


def test_different_seed_gives_different_data(data: syn.SyntheticData,
                                             arrays: syn.EventArrays) -> None:
    other = generate(SMALL, seed=12)
    assert [u.to_dict() for u in other.users] != [u.to_dict() for u in data.users]
    assert [i.text for i in other.items] != [i.text for i in data.items]
    b = other.event_arrays()
    assert not np.array_equal(b.item_idx, arrays.item_idx)
    assert not np.array_equal(b.ts, arrays.ts)


def test_chunk_size_does_not_change_the_events() -> None:
    small = generate(n_users=30, n_items=20, n_events=400, seed=2)
    assert [e.to_dict() for e in all_events(small, 7)] == [
        e.to_dict() for e in all_events(small, 1000)
    ]
    assert [len(c) for c in small.iter_events(150)] == [150, 150, 100]
    with pytest.raises(InvalidInput, match="chunk_size must be an int >= 1"):
        next(small.iter_events(0))


def test_many_blocks_are_numbered_and_sized_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syn, "_BLOCK_EVENTS", 500)
    monkeypatch.setattr(syn, "_BLOCK_USERS", 40)
    d = generate(n_users=300, n_items=100, n_events=6_000, seed=4)
    blocks = list(d.iter_event_arrays())
    assert len(blocks) >= 12
    a = syn.EventArrays.concat(blocks)
    np.testing.assert_array_equal(a.event_idx, np.arange(6_000))
    np.testing.assert_array_equal(np.bincount(a.user_idx, minlength=300),
                                  d.truth.user_activity)
    # a block depends on the seed and its index only, not on the blocks before it
    assert same_arrays(d._sampler.block(5), blocks[5])


# ---------------------------------------------------------------------------- sizes, validity


def test_sizes_are_respected(data: syn.SyntheticData, arrays: syn.EventArrays) -> None:
    assert len(data.users) == data.n_users == 400
    assert len(data.items) == data.n_items == 300
    assert len(arrays) == data.n_events == 30_000
    per_user = np.bincount(arrays.user_idx, minlength=400)
    assert per_user.min() >= 1
    np.testing.assert_array_equal(per_user, data.truth.user_activity)
    np.testing.assert_array_equal(arrays.event_idx, np.arange(30_000))
    assert len({u.user_id for u in data.users}) == 400
    assert len({i.item_id for i in data.items}) == 300


def test_records_are_valid(data: syn.SyntheticData, arrays: syn.EventArrays) -> None:
    events = all_events(data)
    assert len(events) == 30_000
    assert all(isinstance(e, Event) for e in events)
    assert [e.event_id for e in events[:3]] == ["syn-11-0", "syn-11-1", "syn-11-2"]
    assert len({e.event_id for e in events}) == 30_000
    assert {e.type for e in events} <= set(KNOWN_EVENT_TYPES)
    assert {e.type for e in events} == set(EVENT_TYPES)  # every step of the funnel occurs
    start, end = data.config.start, data.config.end
    assert all(start <= e.timestamp < end for e in events)
    ratings = [e.value for e in events if e.type == "rating"]
    assert set(ratings) <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(set(ratings)) == 5
    prices = {i.item_id: i.attributes["price"] for i in data.items}
    assert all(e.value == prices[e.item_id] for e in events if e.type == "purchase")
    assert all(e.value is None for e in events if e.type not in ("rating", "purchase"))
    assert {tuple(e.context) for e in events} == {("device", "location", "weather")}
    # nobody acts before signing up, no item is used before it exists
    t = data.truth
    assert (arrays.ts >= t.user_created_at[arrays.user_idx]).all()
    assert (arrays.ts >= t.item_created_at[arrays.item_idx]).all()
    for user in data.users[:20]:
        assert set(user.attributes) == {"age", "age_group", "gender", "occupation",
                                        "country", "city"}
        assert User(**user.to_dict()) == user
    for item in data.items[:20]:
        assert 1 <= len(item.categories) <= 3 and item.title and item.text
        assert Item(**item.to_dict()) == item


def test_cold_start_users_and_items_exist(data: syn.SyntheticData,
                                          arrays: syn.EventArrays) -> None:
    t, start = data.truth, data.config.start
    new_users = t.user_created_at >= start
    new_items = t.item_created_at >= start
    assert new_users.sum() == 40 and new_items.sum() == 30
    per_user = np.bincount(arrays.user_idx, minlength=data.n_users)
    assert per_user[new_users].mean() < per_user[~new_users].mean()
    per_item = np.bincount(arrays.item_idx, minlength=data.n_items)
    assert per_item[new_items].mean() < per_item[~new_items].mean()
    assert sum(not i.available for i in data.items) == 6


def test_funnel_steps_follow_a_view(arrays: syn.EventArrays) -> None:
    counts = dict(zip(EVENT_TYPES, np.bincount(arrays.type_idx, minlength=len(EVENT_TYPES)),
                      strict=True))
    assert counts["view"] > counts["click"] > counts["add_to_cart"] >= counts["purchase"] > 0
    pair = arrays.user_idx.astype(np.int64) * 1_000_000 + arrays.item_idx
    first_view = {}
    for p, ts in zip(pair[arrays.type_idx == 0], arrays.ts[arrays.type_idx == 0], strict=True):
        first_view.setdefault(p, ts)
    for name in ("click", "purchase", "rating", "skip"):
        m = arrays.type_idx == EVENT_TYPES.index(name)
        assert all(first_view[p] <= ts for p, ts in zip(pair[m], arrays.ts[m], strict=True))


# ---------------------------------------------------------------------------- planted structure


def test_users_consume_their_preferred_categories(data: syn.SyntheticData,
                                                  arrays: syn.EventArrays,
                                                  views: np.ndarray) -> None:
    t = data.truth
    u, i = arrays.user_idx[views], arrays.item_idx[views]
    m = t.item_category_matrix
    top3 = np.argsort(-t.user_taste, axis=1)[:, :3]
    consumed = m[i][np.arange(i.size)[:, None], top3[u]].max(axis=1).mean()
    chance = np.mean([m[:, top3[x]].max(axis=1).mean() for x in u])  # a random item
    assert consumed > 2 * chance
    assert consumed > 0.6


def test_tastes_follow_demographics(data: syn.SyntheticData, arrays: syn.EventArrays,
                                    views: np.ndarray) -> None:
    t = data.truth
    # in the truth: each taste is closer to its own prior than to another user's
    own = (t.user_taste * t.user_prior).sum(axis=1)
    others = (t.user_taste * np.roll(t.user_prior, 1, axis=0)).sum(axis=1)
    assert own.mean() > 1.5 * others.mean()
    # in the events: age group x gender, learnt on half the users, predicts the other half's
    # categories better than the overall category shares do (a cold-start recommender's case)
    u, cat = arrays.user_idx[views], t.item_primary[arrays.item_idx[views]]
    group = t.user_age_group.astype(np.int64) * 3 + t.user_gender
    train = (np.arange(data.n_users) % 2 == 0)[u]
    overall = np.bincount(cat[train], minlength=t.n_categories) + 1.0
    overall /= overall.sum()
    counts = np.zeros((group.max() + 1, t.n_categories))
    np.add.at(counts, (group[u[train]], cat[train]), 1.0)
    by_group = (counts + 50 * overall) / (counts.sum(axis=1, keepdims=True) + 50)
    test_u, test_c = u[~train], cat[~train]

    def per_user_loglik(p: np.ndarray) -> float:
        n = np.bincount(test_u, minlength=data.n_users)
        ll = np.bincount(test_u, np.log(p), minlength=data.n_users)
        return float((ll[n > 0] / n[n > 0]).mean())

    assert per_user_loglik(by_group[group[test_u], test_c]) > per_user_loglik(
        overall[test_c]) + 0.02


def _context_contrast(data: syn.SyntheticData, a: syn.EventArrays, views: np.ndarray,
                      factor: str, value: str) -> float:
    """Within users: how much more the planted effect of ``factor=value`` shows in the
    categories consumed in that context than in the others (0 when context does nothing)."""
    effect = generate(n_users=1, n_items=1, n_events=1,
                      domain=data.config.domain).truth.context_effects[factor][value]
    m = data.truth.item_category_matrix[a.item_idx[views]]
    score = (m @ effect) / m.sum(axis=1)
    column = {"device": a.device_idx, "daypart": a.daypart_idx,
              "day": a.weekend.astype(np.int8), "weather": a.weather_idx}[factor][views]
    inside = column == CONTEXT_FACTORS[factor].index(value)
    u, n = a.user_idx[views], data.n_users
    n1, n0 = np.bincount(u[inside], minlength=n), np.bincount(u[~inside], minlength=n)
    s1 = np.bincount(u[inside], score[inside], minlength=n)
    s0 = np.bincount(u[~inside], score[~inside], minlength=n)
    ok = (n1 >= 3) & (n0 >= 3)
    return float((s1[ok] / n1[ok] - s0[ok] / n0[ok]).mean())


PLANTED = [("device", "tv"), ("device", "mobile"), ("daypart", "night"),
           ("daypart", "morning"), ("day", "weekend")]


@pytest.mark.parametrize(("factor", "value"), PLANTED)
def test_context_shifts_categories_as_planted(data: syn.SyntheticData, arrays: syn.EventArrays,
                                              views: np.ndarray, factor: str,
                                              value: str) -> None:
    assert _context_contrast(data, arrays, views, factor, value) > 0.08


def test_context_effects_vanish_at_zero_strength() -> None:
    d = generate(SMALL, context_strength=0.0)
    a = d.event_arrays()
    v = np.flatnonzero(a.type_idx == 0)
    for factor, value in PLANTED:
        assert abs(_context_contrast(d, a, v, factor, value)) < 0.04


def test_shop_context_matches_its_story() -> None:
    d = generate(SMALL, domain="shop")
    a = d.event_arrays()
    v = np.flatnonzero(a.type_idx == 0)
    for factor, value in [("weather", "rainy"), ("weather", "sunny"), ("day", "weekend"),
                          ("device", "desktop")]:
        assert _context_contrast(d, a, v, factor, value) > 0.08, (factor, value)


def test_knowing_the_context_predicts_items_better(data: syn.SyntheticData,
                                                   arrays: syn.EventArrays,
                                                   views: np.ndarray) -> None:
    t = data.truth
    with_ctx, without = [], []
    for j in views[:1500]:
        u, item, ts = arrays.user_idx[j], arrays.item_idx[j], arrays.ts[j]
        with_ctx.append(np.log(t.item_probabilities(u, context_of(arrays, j), at=ts)[item]))
        without.append(np.log(t.item_probabilities(u, None, at=ts)[item]))
    assert np.mean(with_ctx) > np.mean(without) + 0.1


@pytest.mark.parametrize(("rounds", "n", "tolerance"), [(50, 300_000, 0.02), (1, 20_000, 0.06)])
def test_sampler_draws_the_documented_distribution(data: syn.SyntheticData,
                                                   monkeypatch: pytest.MonkeyPatch, rounds: int,
                                                   n: int, tolerance: float) -> None:
    """The vectorised draw (and, with one round, its exact fallback for items that do not
    exist yet) against :meth:`SyntheticTruth.item_probabilities`."""
    t, sampler = data.truth, data._sampler
    monkeypatch.setattr(sampler, "max_rounds", rounds)
    rng = np.random.default_rng(0)
    context = {"device": "tv", "daypart": "night", "day": "weekend", "weather": "rainy"}
    combo = sampler.combo(2, 0, 1, 2)
    middle = (data.config.start + data.config.end) / 2
    for user, at in ((3, data.config.end), (17, middle)):
        items = sampler.draw_items(np.full(n, user), np.full(n, combo), np.full(n, at), rng)
        empirical = np.bincount(items, minlength=data.n_items) / n
        exact = t.item_probabilities(user, context, at=at)
        assert exact.sum() == pytest.approx(1.0)
        assert 0.5 * np.abs(empirical - exact).sum() < tolerance
        assert empirical[t.item_created_at > at].sum() == 0.0


def test_truth_probabilities_are_distributions(data: syn.SyntheticData) -> None:
    t = data.truth
    p = t.category_probabilities(0, {"device": "mobile", "weather": "sunny"})
    assert p.shape == (t.n_categories,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    q = t.item_probabilities(0)
    assert q.shape == (data.n_items,) and q.sum() == pytest.approx(1.0) and (q > 0).all()
    assert t.affinity(0).shape == (data.n_items,)
    with pytest.raises(InvalidInput, match="unknown context factor 'mood'"):
        t.category_probabilities(0, {"mood": "happy"})
    with pytest.raises(InvalidInput, match="unknown device 'fridge'; expected one of mobile"):
        t.category_probabilities(0, {"device": "fridge"})


def test_popularity_is_skewed(data: syn.SyntheticData, arrays: syn.EventArrays,
                              views: np.ndarray) -> None:
    counts = np.sort(np.bincount(arrays.item_idx[views], minlength=data.n_items))
    n = counts.size
    gini = 1 + 1 / n - 2 * np.cumsum(counts).sum() / (counts.sum() * n)
    assert gini > 0.5
    assert counts[::-1][: n // 10].sum() > 0.4 * counts.sum()
    # and follows the planted popularity
    assert np.corrcoef(np.log1p(np.bincount(arrays.item_idx[views], minlength=n)),
                       np.log(data.truth.item_popularity))[0, 1] > 0.5


def test_activity_is_heavy_tailed(data: syn.SyntheticData) -> None:
    activity = np.sort(data.truth.user_activity)[::-1]
    assert activity[: activity.size // 10].sum() > 0.3 * activity.sum()
    assert activity[0] > 10 * np.median(activity)


def test_users_keep_their_hours_weekends_and_device(data: syn.SyntheticData,
                                                    arrays: syn.EventArrays,
                                                    views: np.ndarray) -> None:
    t = data.truth
    u = arrays.user_idx[views]
    hour = arrays.ts[views] % 86_400 / 3_600
    gap = np.abs(hour - t.user_peak_hour[u])
    assert np.minimum(gap, 24 - gap).mean() < 4.0  # 6 hours if hours were uniform
    n = np.bincount(u, minlength=data.n_users)
    weekend = np.bincount(u, arrays.weekend[views], minlength=data.n_users)
    ok = n >= 20
    assert np.corrcoef(weekend[ok] / n[ok], t.user_weekend_share[ok])[0, 1] > 0.7
    assert (arrays.device_idx[views] == t.user_device[u]).mean() > 0.6
    home = (arrays.location_idx[views] == t.user_city[u]).mean()
    assert 0.85 < home < 0.99
    # weather is the city's weather that day
    day = ((arrays.ts[views] - data.config.start) // 86_400).astype(np.int64)
    np.testing.assert_array_equal(arrays.weather_idx[views],
                                  t.weather[arrays.location_idx[views], day])


def test_ratings_and_feedback_follow_affinity(data: syn.SyntheticData,
                                              arrays: syn.EventArrays) -> None:
    t = data.truth
    affinity = {}

    def z(mask: np.ndarray) -> np.ndarray:
        out = []
        for u, i in zip(arrays.user_idx[mask], arrays.item_idx[mask], strict=True):
            if u not in affinity:
                affinity[u] = t.affinity(u)
            out.append(affinity[u][i])
        return np.array(out)

    rated = arrays.type_idx == EVENT_TYPES.index("rating")
    assert np.corrcoef(z(rated), arrays.value[rated])[0, 1] > 0.5
    mean_z = {name: z(arrays.type_idx == EVENT_TYPES.index(name)).mean()
              for name in ("purchase", "click", "view", "skip", "dislike")}
    assert mean_z["purchase"] > mean_z["click"] > mean_z["view"] > mean_z["skip"]
    assert mean_z["skip"] > mean_z["dislike"]


def test_users_prefer_their_styles(data: syn.SyntheticData, arrays: syn.EventArrays,
                                   views: np.ndarray) -> None:
    t = data.truth
    score = t.user_factors @ t.style_factors.T  # (users, styles)
    u, i = arrays.user_idx[views], arrays.item_idx[views]
    consumed = score[u, t.item_style[i]].mean()
    catalogue = score[u][:, t.item_style].mean()
    assert consumed > catalogue + 0.3
    np.testing.assert_allclose(t.item_factors, t.style_factors[t.item_style])


# ---------------------------------------------------------------------------- texts


@pytest.mark.parametrize("domain", ["movies", "shop"])
def test_texts_use_the_words_of_their_categories(domain: str) -> None:
    words = category_words(domain)
    names = list(words)
    for k, a in enumerate(names):  # the lists do not share words
        for b in names[k + 1:]:
            assert not words[a] & words[b], (a, b)
    d = generate(n_users=5, n_items=600, n_events=5, domain=domain)
    vocab: dict[str, int] = {}
    rows = []
    for item in d.items:
        tokens = set(syn._tokens(f"{item.title} {item.text}"))
        assert tokens & words[item.categories[0]], item  # every item speaks of its category
        for c in names:
            if c not in item.categories:
                assert not tokens & words[c], (item, c)  # and of no other
        rows.append([vocab.setdefault(w, len(vocab)) for w in tokens])
    # bag-of-words similarity is higher between items of the same primary category
    x = np.zeros((len(rows), len(vocab)))
    for r, cols in enumerate(rows):
        x[r, cols] = 1.0
    x *= np.log(len(rows) / x.sum(axis=0))  # idf
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    primary = d.truth.item_primary
    same = primary[:, None] == primary[None, :]
    np.fill_diagonal(same, False)
    disjoint = d.truth.item_category_matrix @ d.truth.item_category_matrix.T == 0
    assert sim[same].mean() > 3 * sim[disjoint].mean()


def test_item_attributes_by_domain() -> None:
    movies = generate(n_users=5, n_items=50, n_events=5).items
    assert all(set(i.attributes) == {"director", "year", "runtime_min", "price"}
               for i in movies)
    assert all(1930 < i.attributes["year"] <= 2024 for i in movies)
    shop = generate(n_users=5, n_items=50, n_events=5, domain="shop").items
    assert all(set(i.attributes) == {"brand", "price"} and i.attributes["price"] > 0
               for i in shop)
    assert {c for i in shop for c in i.categories} <= set(category_words("shop"))


# ---------------------------------------------------------------------------- output


def test_to_store_writes_everything(store) -> None:  # type: ignore[no-untyped-def]
    d = generate(n_users=40, n_items=30, n_events=600, seed=5)
    result = d.to_store(store, chunk_size=250)
    assert result.users.inserted == 40 and result.items.inserted == 30
    assert result.events.inserted == 600 and result.events.duplicates == 0
    assert store.counts() == {"users": 40, "items": 30, "events": 600}
    a = d.event_arrays()
    expected = dict(zip(EVENT_TYPES, np.bincount(a.type_idx, minlength=len(EVENT_TYPES)),
                        strict=True))
    assert store.stats().events_per_type == {k: v for k, v in expected.items() if v}
    events = all_events(d)
    assert store.user_events("u0") == [e for e in events if e.user_id == "u0"]
    assert store.get_item("i7") == d.items[7]
    assert store.get_user("u3") == d.users[3]
    again = d.to_store(store)  # event ids are deterministic: nothing is stored twice
    assert again.events.inserted == 0 and again.events.duplicates == 600
    assert store.counts()["events"] == 600


@pytest.mark.parametrize("compress", [True, False])
def test_write_round_trips_through_json(tmp_path: Path, compress: bool) -> None:
    d = generate(n_users=40, n_items=30, n_events=600, seed=5, domain="shop")
    paths = d.write(tmp_path / "out", compress=compress, progress=compress)
    suffix = ".jsonl.gz" if compress else ".jsonl"
    assert paths == {n: tmp_path / "out" / f"{n}{suffix}" for n in ("users", "items", "events")}

    def read(path: Path) -> list[dict]:
        opener = gzip.open if compress else open
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    assert read(paths["users"]) == [u.to_dict() for u in d.users]
    assert read(paths["items"]) == [i.to_dict() for i in d.items]
    rows = read(paths["events"])
    assert rows == [e.to_dict() for e in all_events(d)]
    assert [Event(**r) for r in rows] == all_events(d)


def test_events_do_not_share_context_dicts() -> None:
    events = all_events(generate(n_users=3, n_items=3, n_events=50, seed=1))
    events[0].context["device"] = "changed"
    assert all(e.context["device"] != "changed" for e in events[1:])
