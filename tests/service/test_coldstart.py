"""The cold-start policy: each path on planted data, the blend arithmetic, new-item exploration.

Planted: users 0-19 ("young") consume items 0-4 (category A), users 20-39 ("old") items 5-9
(category B); items 2 and 7 are consumed only on weekends; items 10 (A) and 11 (B) are new.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.models.ease import EASE
from personae.models.popularity import Popularity
from personae.profile import ContextLift
from personae.service.coldstart import (
    PATH_HISTORY,
    PATH_NEW_ITEM,
    PATH_NO_HISTORY,
    PATH_SHORT_HISTORY,
    AttributeSimilarity,
    ColdStartPolicy,
)

N_ITEMS = 12
WEEKDAY = 1719561600.0  # 2024-06-28 08:00 UTC, a Friday
WEEKEND = WEEKDAY + 86400.0  # Saturday
CATEGORIES = [["A"]] * 5 + [["B"]] * 5 + [["A"], ["B"]]
ATTRIBUTES = [{"director": "ann"}] * 5 + [{"director": "bo"}] * 5 + \
    [{"director": "ann"}, {"director": "cy"}]


def _view() -> Interactions:
    rng = np.random.default_rng(0)
    users, items, ts = [], [], []
    for u in range(40):
        base = 0 if u < 20 else 5
        # a popularity gradient inside each group: item base+0 most popular
        for offset in range(5):
            if rng.random() < 1.0 - 0.15 * offset:
                users.append(u)
                items.append(base + offset)
                ts.append(WEEKEND if offset == 2 else WEEKDAY)
    return Interactions.from_arrays(users, items, timestamps=ts, n_users=40, n_items=N_ITEMS)


@pytest.fixture(scope="module")
def parts() -> tuple[Interactions, Popularity, EASE, AttributeSimilarity]:
    view = _view()
    segments = np.array([0] * 20 + [1] * 20)
    prior = Popularity(shrinkage=5.0, time_buckets="weekpart").fit(
        view, user_segments=segments, segment_names=["young", "old"])
    model = EASE(l2=10.0).fit(view)
    content = AttributeSimilarity().fit(CATEGORIES, ATTRIBUTES)
    return view, prior, model, content


def _policy(parts: tuple, **kw: object) -> ColdStartPolicy:
    _, prior, model, content = parts
    return ColdStartPolicy(prior, model, content, **{"blend_k": 5.0, "full_history": 4, **kw})


def test_no_history_is_segment_popularity_in_context(parts: tuple) -> None:
    policy = _policy(parts)
    assert policy.new_items.tolist() == [False] * 10 + [True, True]
    young = policy.score(segment="young", context={"ts": WEEKDAY})
    assert (young.path, young.history_weight, young.n_history) == (PATH_NO_HISTORY, 0.0, 0)
    expected = np.log(parts[1].score_histories(sp.csr_matrix((1, N_ITEMS)),
                                               {"ts": WEEKDAY, "user_segment": "young"})[0][:10])
    np.testing.assert_allclose(young.scores[:10], expected, rtol=1e-5)
    assert np.isneginf(young.scores[10:]).all()  # new items only through exploration
    # on a weekday, each segment's own items except the weekend-only one
    recs = policy.recommend(segment="young", context={"ts": WEEKDAY}, k=5)
    assert set(recs.items[:4].tolist()) == {0, 1, 3, 4}
    old = policy.recommend(segment="old", context={"ts": WEEKDAY}, k=5)
    assert set(old.items[:4].tolist()) == {5, 6, 8, 9}
    # the weekend lifts the weekend-only items to the top of their segment
    assert policy.recommend(segment="young", context={"ts": WEEKEND}, k=1).items[0] == 2
    assert policy.recommend(segment="old", context={"ts": WEEKEND}, k=1).items[0] == 7
    # without a context, the segment's items in popularity order
    assert set(policy.recommend(segment="young", k=6).items[:5].tolist()) == {0, 1, 2, 3, 4}
    # an unknown segment falls back to the global popularity
    assert policy.score(segment="martian").segment is None


def test_short_history_blends_with_a_growing_weight(parts: tuple) -> None:
    _, prior, model, _ = parts
    policy = _policy(parts)
    out = policy.score([5], segment="young", context={"ts": WEEKDAY})
    assert out.path == PATH_SHORT_HISTORY
    assert out.history_weight == pytest.approx(1 / (1 + 5))
    def z(x: np.ndarray) -> np.ndarray:  # over the ten items with events
        return (x - x.mean()) / x.std()

    m = model.score_history([5])[:10].astype(np.float64)
    p = np.log(prior.score_histories(sp.csr_matrix((1, N_ITEMS)),
                                     {"ts": WEEKDAY, "user_segment": "young"})[0][:10]
               .astype(np.float64))
    w = 1 / 6
    np.testing.assert_allclose(out.scores[:10], w * z(m) + (1 - w) * z(p), rtol=1e-4,
                               atol=1e-5)
    weights = [policy.score(list(range(5, 5 + n)), segment="young").history_weight
               for n in (1, 2, 3)]
    assert weights == pytest.approx([1 / 6, 2 / 7, 3 / 8])
    # a young user who has watched two "old" items: the segment prior still wins at
    # w = 2/7, the history at w = 2/3 (blend_k = 1)
    recs = policy.recommend([5, 6], segment="young", context={"ts": WEEKDAY}, k=3)
    assert recs.path == PATH_SHORT_HISTORY
    assert set(recs.items[:2].tolist()) <= {0, 1, 3, 4}
    recs = _policy(parts, blend_k=1.0).recommend([5, 6], segment="young",
                                                 context={"ts": WEEKDAY}, k=3)
    assert recs.history_weight == pytest.approx(2 / 3)
    assert set(recs.items[:2].tolist()) <= {7, 8, 9}
    # repeated items count once; weights that net to <= 0 do not count
    assert policy.score([5, 5, 6], [1.0, 1.0, -2.0]).n_history == 1


def test_full_history_is_the_model(parts: tuple) -> None:
    _, _, model, _ = parts
    policy = _policy(parts)
    out = policy.score([5, 6, 7, 8], segment="young")
    assert (out.path, out.history_weight) == (PATH_HISTORY, 1.0)
    np.testing.assert_allclose(out.scores[:10], model.score_history([5, 6, 7, 8])[:10],
                               rtol=1e-6)
    # without a history model, every user gets segment popularity
    bare = ColdStartPolicy(parts[1])
    assert bare.score([5, 6, 7, 8], segment="old").path == PATH_NO_HISTORY


def test_new_items_get_an_exploration_slot_by_content(parts: tuple) -> None:
    policy = _policy(parts)
    # a young user with no history: the segment's favourites (A, director ann) pick item 10
    recs = policy.recommend(segment="young", context={"ts": WEEKDAY}, k=4)
    assert recs.items[-1] == 10 and recs.explored.tolist() == [False, False, False, True]
    assert recs.sources == [PATH_NO_HISTORY] * 3 + [PATH_NEW_ITEM]
    # an "old" history picks the B item 11
    recs = policy.recommend([5, 6], segment="young", k=4)
    assert recs.items[-1] == 11 and recs.explored[-1]
    assert recs.scores[-1] == pytest.approx(
        parts[3](np.array([5, 6]), np.ones(2, np.float32), np.array([11]))[0])
    # filters apply to the explored item too; no slots, or a high bar: no exploration
    recs = policy.recommend([5, 6], k=4, exclude=[11])
    assert 11 not in recs.items.tolist()
    assert not recs.explored.any()  # item 10 shares nothing with a B history (cosine 0)
    assert not _policy(parts, explore_slots=0).recommend([5, 6], k=4).explored.any()
    assert not _policy(parts, min_similarity=0.99).recommend([5, 6], k=4).explored.any()
    allowed = np.zeros(N_ITEMS, bool)
    allowed[[0, 1, 10]] = True
    recs = policy.recommend(segment="young", k=5, allowed=allowed)
    assert sorted(recs.items.tolist()) == [0, 1, 10]
    # seen items are left out
    assert not {5, 6} & set(policy.recommend([5, 6], k=10).items.tolist())


def test_content_callable_and_shared_features(parts: tuple) -> None:
    _, prior, model, content = parts
    calls = []

    def fixed(h: np.ndarray, w: np.ndarray, cand: np.ndarray) -> np.ndarray:
        calls.append((h.tolist(), cand.tolist()))
        return np.where(cand == 10, 0.9, 0.1)

    policy = ColdStartPolicy(prior, model, fixed, full_history=4)
    recs = policy.recommend([5, 6], k=3)
    assert recs.items[-1] == 10 and calls == [([5, 6], [10, 11])]
    assert content.shared(10, [0, 1]) == ["cat:A", "director=ann"]
    assert content.shared(11, [0, 1]) == []
    sims = content(np.array([0]), np.ones(1, np.float32), np.array([0, 10, 5]))
    assert sims[0] == pytest.approx(1.0) and sims[1] == pytest.approx(1.0) and sims[2] == 0.0


def test_context_lift_on_the_prior(parts: tuple) -> None:
    _, prior, model, content = parts
    # item 3 is watched on tv by a few users: a tv request lifts it to the top of "young"
    items = [3] * 6 + [0, 1, 2, 4] * 6
    contexts = [{"device": "tv"}] * 6 + [{"device": "mobile"}] * 24
    lift = ContextLift(features=("device",), shrinkage=0.0).fit(items, N_ITEMS,
                                                               contexts=contexts)
    policy = ColdStartPolicy(prior, model, content, context_lift=lift, context_beta=1.0)
    plain = ColdStartPolicy(prior, model, content)
    tv = policy.score(segment="young", context={"device": "tv"})
    assert tv.scores.argmax() == 3 and plain.score(segment="young").scores.argmax() != 3
    np.testing.assert_allclose(
        tv.scores[:10], plain.score(segment="young").scores[:10] + lift.log_lift(
            {"device": "tv"})[:10], rtol=1e-5)
    with pytest.raises(InvalidInput, match="context_lift"):
        ColdStartPolicy(prior, context_lift=ContextLift().fit([0], 3, ts=[0.0]))


def test_invalid_inputs(parts: tuple) -> None:
    _, prior, model, content = parts
    with pytest.raises(InvalidInput, match="blend_k"):
        ColdStartPolicy(prior, model, blend_k=0)
    with pytest.raises(InvalidInput, match="full_history"):
        ColdStartPolicy(prior, model, full_history=0)
    with pytest.raises(InvalidInput, match="items"):
        ColdStartPolicy(prior, EASE().fit(sp.csr_matrix(np.ones((3, 4), np.float32))))
    with pytest.raises(InvalidInput, match="new_items"):
        ColdStartPolicy(prior, new_items=np.zeros(3, bool))
    with pytest.raises(InvalidInput, match="content"):
        ColdStartPolicy(prior, content="tfidf")  # type: ignore[arg-type]
    policy = ColdStartPolicy(prior, model, content)
    with pytest.raises(InvalidInput, match="history item indices"):
        policy.score([99])
    with pytest.raises(InvalidInput, match="k must be"):
        policy.recommend(k=0)
