"""Explanations: the named contributions are the model's own arithmetic.

For item-kNN, EASE and ALS the contributions of all history items sum to the score, and the
named ones are the largest; for popularity the global, segment and context parts telescope to
the score; content explanations name the attributes really shared.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.models import create
from personae.models.popularity import Popularity
from personae.service.explain import explain, explain_content


def _matrix(seed: int = 0, n_users: int = 80, n_items: int = 30) -> sp.csr_matrix:
    """Two taste groups (items 0–14 and 15–29) with some noise."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((n_users, n_items), dtype=np.float32)
    for u in range(n_users):
        half = 0 if u < n_users // 2 else n_items // 2
        liked = rng.choice(np.arange(half, half + n_items // 2), size=6, replace=False)
        dense[u, liked] = 1.0
        dense[u, rng.integers(n_items)] = 1.0
    return sp.csr_matrix(dense)


HISTORY = ([1, 4, 7, 20], [1.0, 2.0, 1.0, 0.5])


@pytest.mark.parametrize("name, params", [
    ("itemknn", {"k": 10}),
    ("itemknn", {"similarity": "bm25", "k": 10}),
    ("rp3beta", {"k": 10}),
    ("ease", {"l2": 5.0}),
    ("ease", {"l2": 5.0, "implicit": True}),
    ("als", {"factors": 6, "iterations": 5, "random_state": 3, "num_threads": 1}),
])
def test_contributions_sum_to_the_score(name: str, params: dict) -> None:
    pytest.importorskip("implicit") if name == "als" else None
    model = create(name, **params).fit(_matrix())
    items = np.arange(30)
    scores = model.score_history(*HISTORY)
    expl = explain(model, HISTORY, items, top=10)
    assert [e.item_idx for e in expl] == items.tolist()
    for e in expl:
        assert e.method == "exact"
        assert e.score == pytest.approx(float(scores[e.item_idx]), rel=1e-4, abs=1e-6)
        assert e.total == pytest.approx(e.score, rel=1e-4, abs=1e-6)
        # every history item with a positive part is named (top=10 > 4 history items)
        assert all(r.kind == "history" and r.item_idx in HISTORY[0] for r in e.reasons)
        contribs = [r.contribution for r in e.reasons]
        assert contribs == sorted(contribs, reverse=True)
        if e.score > 0 and all(c > 0 for c in contribs):
            # the named parts reach at least the score: negatives are what is left out
            assert e.named >= e.score * (1 - 1e-5) - 1e-6


def test_itemknn_contribution_is_weight_times_similarity() -> None:
    model = create("itemknn", k=10).fit(_matrix())
    S = model.similarity_.toarray()
    target = int(np.argmax(model.score_history(*HISTORY)))
    (e,) = explain(model, HISTORY, [target], top=4)
    for r in e.reasons:
        w = dict(zip(*HISTORY, strict=True))[r.item_idx]
        assert r.contribution == pytest.approx(w * S[r.item_idx, target], rel=1e-5)
        assert r.share == pytest.approx(r.contribution / e.score, rel=1e-6)


def test_top_named_items_dominate_for_a_planted_group() -> None:
    # A user of group A (items 0–14) with one stray group-B item: a group-A recommendation is
    # explained by the group-A history, and the stray item is not named first.
    model = create("ease", l2=5.0).fit(_matrix())
    history = [1, 4, 7, 20]
    scores = model.score_history(history)
    scores[history] = -np.inf
    target = int(np.argmax(scores[:15]))
    (e,) = explain(model, history, [target], top=2)
    assert e.reasons[0].item_idx in (1, 4, 7)
    assert sum(r.share for r in e.reasons) > 0.5


def test_repeated_history_items_add_up() -> None:
    model = create("ease", l2=5.0).fit(_matrix())
    once = explain(model, ([3], [2.0]), [5])[0]
    twice = explain(model, [3, 3], [5])[0]
    assert twice.score == pytest.approx(once.score)
    assert twice.reasons[0].contribution == pytest.approx(once.reasons[0].contribution)


def test_leave_one_out_for_a_model_without_an_exact_split() -> None:
    class Squared:
        """Scores (Σ history)² per item: not additive, so leave-one-out applies."""

        name = "squared"
        n_items_ = 3
        scores_histories = True

        def score_history(self, items, weights=None, context=None):  # noqa: ANN001, ANN202
            w = np.ones(len(items)) if weights is None else np.asarray(weights)
            M = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
            return ((w @ M[np.asarray(items, dtype=int)]) ** 2).astype(np.float32)

    (e,) = explain(Squared(), [0, 1], [2])
    assert e.method == "leave-one-out"
    assert e.score == pytest.approx(4.0)
    # without item 0 the score is 1, so item 0 contributes 3 (and item 1 likewise)
    assert [r.contribution for r in e.reasons] == pytest.approx([3.0, 3.0])
    assert np.isnan(e.total)


def test_popularity_segment_and_context_telescope_to_the_score() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items, n_events = 40, 12, 4000
    users = rng.integers(0, n_users, n_events)
    young = users < 20
    # young users favour items 0–3, events on "mobile" favour items 8–11
    device = rng.integers(0, 2, n_events)
    items = np.where(young & (rng.random(n_events) < 0.6), rng.integers(0, 4, n_events),
                     np.where((device == 1) & (rng.random(n_events) < 0.6),
                              rng.integers(8, 12, n_events), rng.integers(0, n_items, n_events)))
    view = Interactions.from_arrays(users, items, n_users=n_users, n_items=n_items)
    model = Popularity(shrinkage=5.0, context_key="device").fit(
        view, user_segments=(np.arange(n_users) >= 20).astype(np.int64),
        segment_names=["young", "old"], event_segments=device,
        event_segment_names=["desktop", "mobile"])
    ctx = {"device": "mobile"}
    expl = explain(model, None, np.arange(n_items), user=3, context=ctx)
    scores = model.score_users([3], ctx)[0]
    for e in expl:
        assert e.method == "exact"
        assert e.score == pytest.approx(float(scores[e.item_idx]), rel=1e-5)
        assert sum(r.contribution for r in e.reasons) == pytest.approx(e.score, rel=1e-5)
        kinds = {r.kind: r for r in e.reasons}
        assert set(kinds) == {"popularity", "segment", "context"}
        assert kinds["segment"].value == "young"
        assert kinds["context"].value == "mobile" and kinds["context"].key == "device"
    # the planted effects show: the segment adds to items 0–3, the context to items 8–11
    seg = np.array([next(r.contribution for r in e.reasons if r.kind == "segment")
                    for e in expl])
    ctxp = np.array([next(r.contribution for r in e.reasons if r.kind == "context")
                     for e in expl])
    assert seg[:4].min() > 0 > seg[4:].max()
    assert ctxp[8:].min() > 0 and ctxp[8:].min() > ctxp[:8].max()
    # an anonymous request names the segment from the context
    (anon,) = explain(model, None, [0], context={"user_segment": "old"})
    assert any(r.kind == "segment" and r.value == "old" for r in anon.reasons)


def test_exploration_flag() -> None:
    model = create("itemknn", k=10).fit(_matrix())
    expl = explain(model, [1, 2], [3, 4], exploration={4})
    assert not expl[0].exploration
    assert expl[1].exploration and expl[1].reasons[0].kind == "exploration"
    assert "explore" in expl[1].texts()[0]


def test_content_explanation_names_shared_attributes() -> None:
    attrs = [
        {"genre": ["crime", "thriller"], "director": "Mann"},      # 0 Heat
        {"genre": ["crime", "action"], "director": "Frankenheimer"},  # 1 Ronin
        {"genre": ["comedy"], "director": "Ephron"},               # 2
        {"genre": ["crime"], "director": "Mann"},                  # 3 candidate
        {"genre": ["comedy", "romance"], "director": "Reiner"},   # 4 candidate
    ]
    e3, e4 = explain_content(attrs, [0, 1, 2], [3, 4])
    top = e3.reasons[0]
    assert (top.key, top.value, top.contribution) == ("genre", "crime", 2.0)
    assert top.share == pytest.approx(2 / 3)
    assert ("director", "Mann") in {(r.key, r.value) for r in e3.reasons}
    assert e3.score == pytest.approx(3.0)  # crime ×2 + Mann ×1
    assert [(r.key, r.value) for r in e4.reasons] == [("genre", "comedy")]
    assert explain_content(attrs, [0], [4])[0].reasons == ()


def test_texts_and_dict_carry_figures() -> None:
    model = create("ease", l2=5.0).fit(_matrix())
    (e,) = explain(model, [1, 4], [2])
    titles = [f"Film {i}" for i in range(30)]
    d = e.to_dict(item_ids=[f"m{i}" for i in range(30)], titles=titles)
    assert d["item_id"] == "m2"
    assert d["reasons"][0]["title"] == titles[e.reasons[0].item_idx]
    text = e.texts(lambda i: titles[i])[0]
    assert titles[e.reasons[0].item_idx] in text and "% of the score" in text


def test_bad_input_names_the_field() -> None:
    model = create("ease", l2=5.0).fit(_matrix())
    with pytest.raises(InvalidInput, match="items"):
        explain(model, [1], [99])
    with pytest.raises(InvalidInput, match="same length"):
        explain(model, ([1, 2], [1.0]), [3])
