"""New users served from their demographics: a two-tower version scores a user who signed up
after training from their stored attributes (given to the model as ``context["user"]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personae import Event, Item, Store, User
from personae.service import Engine, RecommendRequest

pytest.importorskip("torch")

PARAMS = {"factors": 16, "epochs": 40, "batch_size": 16, "learning_rate": 1e-2,
          "random_state": 0, "num_threads": 1}


def populate(store: Store) -> None:
    """Items a0–a9 (genre A) and b0–b9 (B); users u0–u19 have ``taste`` "A" and view 4 A
    items, u20–u39 "B" and 4 B items. Every item gets the same 8 clicks (rotated choices),
    all in one hour, so that the cold-start prior (popularity) prefers no genre; ``income``
    (binned at its quintiles in training) is the same for u and u + 20: it says nothing."""
    store.upsert_items([Item(f"{g}{n}", title=f"{g} {n}", categories=[g.upper()])
                        for g in "ab" for n in range(10)])
    store.upsert_users([User(f"u{u}", attributes={"taste": "AB"[u >= 20],
                                                   "income": 1000 * (u % 20)})
                        for u in range(40)])
    t = 1_700_042_400.0  # a Wednesday, 10:00 UTC
    store.add_events([Event(f"u{u}", f"{'ab'[u >= 20]}{(u + j) % 10}", "view",
                            timestamp=t + 10 * (4 * u + j)) for u in range(40) for j in range(4)])


def test_a_new_user_is_served_from_their_demographics(store: Store, tmp_path: Path) -> None:
    populate(store)
    eng = Engine(store, tmp_path / "models", refresh_interval=0.0, explore_new_items=0)
    try:
        mv = eng.train("twotower", PARAMS, background=False)
        assert mv.status == "active", mv.message
        model = eng._state.artifact.model
        assert model.user_fields_ == ["income", "taste"] and "income" in model.user_bins_
        # the served model encodes a training user's raw attributes as they were in training
        # (the income bins came through the artifact)
        u7 = store.get_user("u7").attributes
        np.testing.assert_array_equal(model._encode_user({"user": u7}), model.user_codes_[7])
        # after training: two new users, the same income and the same neutral history (views:
        # the weight the model was trained with); only their taste differs
        store.upsert_users([User("new_a", attributes={"taste": "A", "income": 5000}),
                            User("new_b", attributes={"taste": "B", "income": 5000})])
        store.add_events([Event(u, item, "view", timestamp=1_700_050_000.0)
                          for u in ("new_a", "new_b") for item in ("a0", "b0")])
        lists = {}
        for user in ("new_a", "new_b"):
            res = eng.recommend(RecommendRequest(user, k=6))
            assert res.strategy == "fold-in"
            lists[user] = "".join(i.item_id[0] for i in res.items)
        # the model leans to one genre for both, but the A taste has more A items (without
        # the attributes the two lists are the same)
        assert lists["new_a"].count("a") >= lists["new_b"].count("a") + 2, lists
        # rank: every A item gains on its B mirror (as near to the history) with the A taste
        unseen = [f"{g}{n}" for n in range(1, 10) for g in "ab"]
        score = {user: {i.item_id: i.score for i in eng.rank(user, unseen).items}
                 for user in ("new_a", "new_b")}
        gap = {user: [s[f"a{n}"] - s[f"b{n}"] for n in range(1, 10)]
               for user, s in score.items()}
        assert all(x > y for x, y in zip(gap["new_a"], gap["new_b"], strict=True)), gap
    finally:
        eng.close()


def test_a_user_without_events_is_served_from_their_demographics(store: Store,
                                                                  tmp_path: Path) -> None:
    """Signed up after training, no event yet: the cold-start policy blends the two-tower
    model's scores for the stored attributes with the prior (``demographics`` path). In this
    world the prior prefers no genre, so the taste decides; without the attributes (or with
    ``demographics_weight=0``) both users get the prior's one list."""
    from personae.service.coldstart import ColdStartPolicy

    populate(store)
    eng = Engine(store, tmp_path / "models", refresh_interval=0.0, explore_new_items=0)
    try:
        mv = eng.train("twotower", PARAMS, background=False)
        assert mv.status == "active", mv.message
        store.upsert_users([User("new_a", attributes={"taste": "A", "income": 5000}),
                            User("new_b", attributes={"taste": "B", "income": 5000}),
                            User("new_x", attributes={"shoe_size": 42})])
        lists, paths = {}, {}
        for user in ("new_a", "new_b", "new_x"):
            res = eng.recommend(RecommendRequest(user, k=6, explain=True))
            lists[user] = "".join(i.item_id[0] for i in res.items)
            paths[user] = (res.strategy, res.cold_start_path)
            assert all(i.reasons for i in res.items), res.items  # the prior's part explains
        assert paths["new_a"] == paths["new_b"] == ("cold-start-demographics", "demographics")
        assert lists["new_a"].count("a") >= 5 and lists["new_b"].count("b") >= 5, lists
        # no model field among the attributes: the prior's path, as before
        assert paths["new_x"][1] == "segment_popularity"
        art = eng._state.artifact
        empty = np.zeros(0, np.int64)
        ctx = {"user": {"taste": "A", "income": 5000}, "ts": 1_700_050_000.0}
        off = ColdStartPolicy(art.prior, art.model, demographics_weight=0.0).score(
            empty, context=ctx)
        plain = ColdStartPolicy(art.prior, art.model).score(empty, context={"ts": ctx["ts"]})
        assert off.path == plain.path == "segment_popularity"
        np.testing.assert_array_equal(off.scores, plain.scores)
        on = ColdStartPolicy(art.prior, art.model).score(empty, context=ctx)
        assert on.path == "demographics" and on.history_weight == 0.25
        for bad in (-0.1, 1.5, "half", True):
            with pytest.raises(ValueError, match="demographics_weight"):
                ColdStartPolicy(art.prior, art.model, demographics_weight=bad)
    finally:
        eng.close()
