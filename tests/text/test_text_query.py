"""Natural-language requests: the query moves the list, the history personalises it, a
self-description starts a user from text, each result says what matched."""

from __future__ import annotations

import numpy as np
import pytest

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.models.content import Content
from personae.text.encoders import get_encoder
from personae.text.query import QueryRanker

# A catalogue with planted topics (hashing vectors: shared words are the only similarity).
TEXTS = [
    "space aliens spaceship galaxy war",           # 0 space
    "space aliens spaceship galaxy rescue",        # 1 space
    "space aliens spaceship galaxy drama",         # 2 space
    "western cowboys horses desert sheriff",       # 3 western
    "western cowboys horses desert outlaw",        # 4 western
    "western cowboys horses desert gold",          # 5 western
    "funny family comedy space aliens spaceship",  # 6 funny + space
    "funny family comedy western cowboys horses",  # 7 funny + western
    "romance love story paris wedding",            # 8 romance
    "romance love story rome wedding",             # 9 romance
]
SPACE_FAN, WESTERN_FAN = 0, 1


@pytest.fixture(scope="module")
def model() -> Content:
    E = get_encoder("hashing").encode(TEXTS)
    view = Interactions.from_arrays([SPACE_FAN, SPACE_FAN, WESTERN_FAN, WESTERN_FAN],
                                    [0, 1, 3, 4], n_items=len(TEXTS))
    return Content(encoder="hashing").fit(view, item_embeddings=E)


def history(model: Content, u: int) -> np.ndarray:
    return model.user_items_.indices[model.user_items_.indptr[u]:model.user_items_.indptr[u + 1]]


def test_a_query_shifts_results_toward_matching_items(model: Content) -> None:
    ranker = QueryRanker(model)
    plain = ranker.rank(items=history(model, WESTERN_FAN), k=2)
    assert set(plain.items.tolist()) == {5, 7}, "without a query: more westerns"
    asked = ranker.rank("romance love wedding", items=history(model, WESTERN_FAN), k=3)
    assert asked.items[0] in (8, 9) and {8, 9} <= set(asked.items.tolist())
    assert [m for i, m in zip(asked.items, asked.matched, strict=True) if i in (8, 9)] == \
        ["query", "query"]
    assert (asked.query_scores[np.isin(asked.items, [8, 9])] > 0.3).all()


def test_two_users_asking_the_same_get_different_fitting_answers(model: Content) -> None:
    ranker = QueryRanker(model)
    space = ranker.rank("something funny for the family", items=history(model, SPACE_FAN), k=1)
    west = ranker.rank("something funny for the family", items=history(model, WESTERN_FAN),
                       k=1)
    assert space.items.tolist() == [6] and west.items.tolist() == [7]
    assert space.matched == ("both",) and west.matched == ("both",)
    match = next(iter(space))
    assert match.item == 6 and match.query_score is not None and match.history_score is not None


def test_self_description_is_a_cold_start(model: Content) -> None:
    ranker = QueryRanker(model)
    res = ranker.rank(description="I like cowboys, horses and the desert", k=3)
    assert set(res.items.tolist()) == {3, 4, 5}
    assert set(res.matched) == {"history"}
    # a description on top of a short history leans the list its way
    alone = ranker.rank(items=[0], k=9).items.tolist()
    mixed = ranker.rank(items=[0], description="romance love story in paris", k=9).items.tolist()
    assert mixed.index(8) < alone.index(8) and mixed.index(8) <= 2


def test_filters_apply_and_history_items_are_left_out(model: Content) -> None:
    ranker = QueryRanker(model)
    allowed = np.ones(len(TEXTS), dtype=bool)
    allowed[[8]] = False
    res = ranker.rank("romance love wedding", items=history(model, SPACE_FAN), k=3,
                      allowed=allowed, exclude=[9])
    assert not {0, 1, 8, 9} & set(res.items.tolist())
    assert len(ranker.rank("space", items=[0, 1], k=20)) == len(TEXTS) - 2


def test_other_scores_and_context_combine(model: Content) -> None:
    ranker = QueryRanker(model, context_weight=1.0)
    ctx = np.zeros(len(TEXTS), np.float32)
    ctx[9] = 10.0  # the context model strongly prefers item 9
    res = ranker.rank(context_scores=ctx, k=1)
    assert res.items.tolist() == [9] and res.matched == ("context",)
    cf = np.arange(len(TEXTS), dtype=np.float32)  # a "collaborative" history part
    assert ranker.rank(history_scores=cf, k=1).items.tolist() == [9]


def test_bad_requests_are_refused(model: Content) -> None:
    ranker = QueryRanker(model)
    with pytest.raises(InvalidInput, match="query"):
        ranker.rank("   ")
    with pytest.raises(InvalidInput, match="needs a query"):
        ranker.rank()
    with pytest.raises(InvalidInput, match="history_scores"):
        ranker.rank("x", history_scores=np.zeros(3))
    with pytest.raises(InvalidInput, match="dim|vectors"):
        QueryRanker(model, get_encoder("hashing", dim=32))
