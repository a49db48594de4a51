"""Popularity: the conformance suite, decay, segments with shrinkage, context buckets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personae import Event, Store, User
from personae.data.features import (
    bin_label,
    event_segments_from_store,
    time_buckets,
    user_segments_from_store,
)
from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.models import Recommender
from personae.models.popularity import Popularity

from .conformance import ModelConformance

DAY = 86400.0
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, a Tuesday


class TestPopularity(ModelConformance):
    personalised = False
    invalid_params = [("half_life_days", 0.0), ("half_life_days", "week"), ("now", np.nan),
                      ("weighting", "clicks"), ("shrinkage", -1.0), ("time_buckets", "month"),
                      ("context_key", 3), ("utc_offset_hours", 30)]

    def make_model(self, **params: Any) -> Popularity:
        return Popularity(**params)


class TestPopularityDecayedByDaypart(TestPopularity):
    def make_model(self, **params: Any) -> Popularity:
        return Popularity(**{"half_life_days": 1.0, "time_buckets": "daypart", **params})

    def test_fit_on_a_plain_sparse_matrix(self) -> None:
        with pytest.raises(InvalidInput, match="event times"):
            self.make_model().fit(self.make_data().matrix)


def _view() -> Interactions:
    # item 0: 3 old events; item 1: 2 recent; item 2: 1 recent
    users = [0, 1, 2, 0, 1, 2]
    items = [0, 0, 0, 1, 1, 2]
    ts = [T0 - 10 * DAY] * 3 + [T0] * 3
    return Interactions.from_arrays(users, items, timestamps=ts, n_users=4, n_items=3)


def test_global_counts_and_order() -> None:
    model = Popularity().fit(_view())
    np.testing.assert_allclose(model.global_, [3 / 6, 2 / 6, 1 / 6], rtol=1e-6)
    assert model.recommend(3, k=3).items.tolist() == [0, 1, 2]


def test_half_life_decay() -> None:
    model = Popularity(half_life_days=2.0).fit(_view())
    w = np.array([3 * 0.5 ** 5, 2.0, 1.0])
    np.testing.assert_allclose(model.global_, w / w.sum(), rtol=1e-6)
    assert model.recommend(3, k=3).items.tolist() == [1, 2, 0]
    # a given `now` 10 days later halves everything alike: same shares
    later = Popularity(half_life_days=2.0, now=T0 + 10 * DAY).fit(_view())
    np.testing.assert_allclose(later.global_, model.global_, rtol=1e-5)


def test_weight_weighting() -> None:
    view = Interactions.from_arrays([0, 1, 2], [0, 0, 1], weights=[1.0, 1.0, 5.0], n_items=2)
    assert Popularity().fit(view).recommend(history=[], k=2).items.tolist() == [0, 1]
    assert Popularity(weighting="weight").fit(view).recommend(history=[], k=2).items.tolist() \
        == [1, 0]


def test_user_segments_shrink_toward_global() -> None:
    view = _view()
    segments = np.array([0, 0, 1, -1])  # users 0, 1 in "young"; user 2 "old"; user 3 none
    model = Popularity(shrinkage=0.0).fit(view, user_segments=segments,
                                          segment_names=["young", "old"])
    np.testing.assert_allclose(model.segment_probs_[0], [2 / 4, 2 / 4, 0.0])
    np.testing.assert_allclose(model.segment_probs_[1], [1 / 2, 0.0, 1 / 2])
    np.testing.assert_allclose(model.score_users([3])[0], model.global_)
    np.testing.assert_allclose(model.score_users([2])[0], model.segment_probs_[1])
    # a new user named into a segment through the context
    old = model.score_histories(view.matrix[:1] * 0, context={"user_segment": "old"})
    np.testing.assert_allclose(old[0], model.segment_probs_[1])
    # huge shrinkage: every segment is the global ranking
    big = Popularity(shrinkage=1e9).fit(view, user_segments=segments)
    np.testing.assert_allclose(big.segment_probs_, np.tile(big.global_, (2, 1)), atol=1e-6)
    with pytest.raises(InvalidInput, match="user_segments"):
        Popularity().fit(view, user_segments=np.array([0, 1]))


def test_context_key_buckets() -> None:
    view = _view()
    devices = np.array([0, 0, 0, 1, 1, 1])  # old events on "tv", recent on "mobile"
    model = Popularity(context_key="device", shrinkage=0.0).fit(
        view, event_segments=devices, event_segment_names=["tv", "mobile"])
    assert model.recommend(3, k=1, context={"device": "tv"}).items.tolist() == [0]
    assert model.recommend(3, k=2, context={"device": "mobile"}).items.tolist() == [1, 2]
    # an unknown device, or none: the global ranking
    assert model.recommend(3, k=3, context={"device": "fridge"}).items.tolist() == [0, 1, 2]
    with pytest.raises(InvalidInput, match="event_segments"):
        Popularity(context_key="device").fit(view)


def test_daypart_buckets_from_request_time() -> None:
    # item 0 is watched in the morning, item 1 in the evening
    morning, evening = T0 - 22 * 3600 + 8 * 3600, T0 - 22 * 3600 + 20 * 3600
    view = Interactions.from_arrays([0, 1, 2, 0], [0, 0, 1, 1],
                                    timestamps=[morning, morning, evening, evening])
    model = Popularity(time_buckets="daypart", shrinkage=0.0).fit(view)
    assert model.recommend(history=[], k=1, context={"ts": evening + 7 * DAY}).items[0] == 1
    assert model.recommend(history=[], k=1, context={"ts": morning}).items[0] == 0
    assert model.recommend(history=[], k=1).items[0] == 0  # no time: global (0 has 2 + tie)


def test_time_buckets_helper() -> None:
    codes, names = time_buckets([T0, T0 + 4 * DAY, np.nan], "daypart_weekpart")
    assert [names[c] for c in codes[:2]] == ["weekday-evening", "weekend-evening"]
    assert codes[2] == -1
    codes, _ = time_buckets([T0], "hour", utc_offset_hours=2)
    assert codes[0] == 0  # 22:13 UTC is 00:13 at UTC+2


def test_bin_label() -> None:
    bins = [18, 25, 35]
    assert [bin_label(v, bins) for v in (10, 18, 24, 34, 35, 80, None, "x")] == \
        ["<18", "18-24", "18-24", "25-34", "35+", "35+", None, None]


def test_segments_from_a_store(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        store.upsert_users([User("a", attributes={"age": 22}), User("b", attributes={"age": 40}),
                            User("c")])
        store.add_events([
            Event("a", "x", "view", timestamp=T0, context={"device": "mobile"}),
            Event("b", "y", "view", timestamp=T0, context={"device": "tv"}),
            Event("c", "y", "view", timestamp=T0),
        ])
        view = Interactions.from_store(store)
        seg, names = user_segments_from_store(store, view, "age", bins=[18, 25, 35])
        assert [names[s] if s >= 0 else None for s in seg[[view.user_index(u) for u in "abc"]]] \
            == ["18-24", "35+", None]
        dev, dnames = event_segments_from_store(store, view, "device")
        assert dnames == ("mobile", "tv")
        assert dev.tolist() == [0, 1, -1]
        model = Popularity(context_key="device").fit(
            view, user_segments=seg, segment_names=names, event_segments=dev,
            event_segment_names=dnames)
        loaded = Recommender.load(model.save(tmp_path / "pop"))
        assert loaded.bucket_names_ == dnames
        ctx = {"device": "tv"}
        np.testing.assert_array_equal(loaded.score_users([0, 1, 2], ctx),
                                      model.score_users([0, 1, 2], ctx))
    finally:
        store.close()
