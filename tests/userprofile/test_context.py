"""Context features of known timestamps, and context lifts of planted data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from personae.errors import InvalidInput
from personae.models import NotFitted
from personae.profile import ContextLift, context_features, time_feature_columns

FRI_EVENING = 1719604800.0  # 2024-06-28 20:00 UTC


@pytest.mark.parametrize(("ts", "expected"), [
    (FRI_EVENING, {"hour": 20, "hour_bucket": "evening", "weekday": "friday", "weekend": False,
                   "season": "summer"}),
    (0.0, {"hour": 0, "hour_bucket": "night", "weekday": "thursday", "weekend": False,
           "season": "winter"}),
    ("2024-12-29T10:30:00Z", {"hour": 10, "hour_bucket": "morning", "weekday": "sunday",
                              "weekend": True, "season": "winter"}),
    (datetime(2023, 4, 15, 13, 59, tzinfo=UTC), {"hour": 13, "hour_bucket": "afternoon",
                                                 "weekday": "saturday", "weekend": True,
                                                 "season": "spring"}),
    ("2021-09-01T05:59:59+00:00", {"hour": 5, "hour_bucket": "night", "weekday": "wednesday",
                                   "weekend": False, "season": "autumn"}),
])
def test_known_timestamps(ts: object, expected: dict[str, object]) -> None:
    assert context_features(ts) == expected


def test_offset_hemisphere_and_merge() -> None:
    # 20:00 UTC is 15:00 at UTC-5, and 02:00 on Saturday at UTC+6
    assert context_features(FRI_EVENING, utc_offset_hours=-5)["hour_bucket"] == "afternoon"
    sat = context_features(FRI_EVENING, utc_offset_hours=6)
    assert (sat["hour"], sat["weekday"], sat["weekend"]) == (2, "saturday", True)
    assert context_features(FRI_EVENING, hemisphere="south")["season"] == "winter"
    # request key/values are merged, and win over derived features; ts may come in the context
    merged = context_features(None, {"ts": FRI_EVENING, "device": "tv", "weekend": True})
    assert merged == {"hour": 20, "hour_bucket": "evening", "weekday": "friday",
                      "weekend": True, "season": "summer", "device": "tv"}
    assert context_features(None, {"device": "tv"}) == {"device": "tv"}
    assert context_features() == {}
    with pytest.raises(InvalidInput, match="hemisphere"):
        context_features(0.0, hemisphere="east")
    with pytest.raises(InvalidInput, match="context must be a mapping"):
        context_features(0.0, ["device"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="ts"):
        context_features("yesterday")


def test_columns_equal_one_by_one() -> None:
    rng = np.random.default_rng(0)
    ts = rng.uniform(0, 2.5e9, 200)
    ts[::17] = np.nan
    cols = time_feature_columns(ts, utc_offset_hours=3.5)
    for k, t in enumerate(ts):
        one = {} if np.isnan(t) else context_features(float(t), utc_offset_hours=3.5)
        got = {name: cols[name][k] for name in cols if cols[name][k] is not None}
        assert got == one


def test_lift_by_hand() -> None:
    # item 0: 3 evening events; item 1: 1 evening and 2 morning; item 2: none
    evening, morning = FRI_EVENING, FRI_EVENING - 12 * 3600
    items = [0, 0, 0, 1, 1, 1]
    ts = [evening] * 4 + [morning] * 2
    lift = ContextLift(features=("hour_bucket",), shrinkage=0.0).fit(items, 3, ts=ts)
    counts = np.array([3.0, 3.0, 0.0]) + 1 / 3  # one pseudo-event spread over the items
    p = counts / counts.sum()
    got = lift.log_lift({"ts": evening})
    np.testing.assert_allclose(got[:2], np.log(np.array([3 / 4, 1 / 4]) / p[:2]), rtol=1e-5)
    assert got[2] == 0.0  # never seen in the evening, no shrinkage: no lift rather than -inf
    np.testing.assert_allclose(lift.log_lift({"ts": morning})[1], np.log(1.0 / p[1]),
                               rtol=1e-5)
    assert lift.explain(0, {"ts": evening}) == {
        "hour_bucket=evening": pytest.approx(0.75 / p[0], rel=1e-5)}
    # no context, or a context without the feature: zeros; rerank with beta = 0 is the identity
    assert not lift.log_lift(None).any() and not lift.log_lift({"device": "tv"}).any()
    scores = np.array([1.0, 1.3, 0.0], np.float32)
    np.testing.assert_array_equal(lift.rerank(scores, {"ts": evening}, beta=0.0), scores)
    assert lift.rerank(scores, {"ts": evening}).argmax() == 0  # the evening item moves up
    assert lift.rerank(scores, {"ts": morning}).argmax() == 1


def test_lift_from_context_keys_and_shrinkage() -> None:
    items = [0] * 10 + [1] * 10
    contexts = [{"device": "tv"}] * 10 + [{"device": "mobile"}] * 10
    sharp = ContextLift(features=("device", "weekend"), shrinkage=0.0).fit(
        items, 2, contexts=contexts, ts=[FRI_EVENING] * 20)
    soft = ContextLift(features=("device",), shrinkage=1000.0).fit(items, 2, contexts=contexts)
    tv_sharp, tv_soft = sharp.log_lift({"device": "tv"}), soft.log_lift({"device": "tv"})
    assert tv_sharp[0] > tv_soft[0] > 0 > tv_soft[1]
    assert sharp.values_["weekend"] == ("false",)
    # every event on a Friday: weekday lift is ~1 for both items
    np.testing.assert_allclose(sharp.log_lift({"weekend": False}), 0.0, atol=1e-6)
    with pytest.raises(NotFitted):
        ContextLift().log_lift({"device": "tv"})
    with pytest.raises(InvalidInput, match="ts"):
        ContextLift().fit([0], 1)
    with pytest.raises(InvalidInput, match="items must be in"):
        ContextLift().fit([3], 2, ts=[0.0])


def test_lift_per_category_by_hand() -> None:
    # items 0 and 1 are in category A, item 2 in B, item 3 in A and B; A is an evening thing
    evening, morning = FRI_EVENING, FRI_EVENING - 12 * 3600
    items = [0, 0, 0, 1, 2, 2]
    ts = [evening] * 4 + [morning] * 2
    groups = np.array([[1, 0], [1, 0], [0, 1], [1, 1]])
    lift = ContextLift(features=("hour_bucket",), shrinkage=0.0).fit(
        items, 4, ts=ts, item_groups=groups)
    counts = np.array([4.0, 2.0]) + 1 / 2  # A: 4 events, B: 2; one pseudo-event
    p = counts / counts.sum()
    a, b = np.log(1.0 / p[0]), 0.0  # all evening events are A; B has none (no lift)
    got = lift.log_lift({"ts": evening})
    np.testing.assert_allclose(got, [a, a, b, (a + b) / 2], rtol=1e-5)
    # item 1 (one event) gets the same lift as item 0 (three): the category's
    with pytest.raises(InvalidInput, match="item_groups"):
        ContextLift().fit([0], 4, ts=[0.0], item_groups=np.ones((3, 2)))
