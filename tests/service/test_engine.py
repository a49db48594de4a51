"""The recommendation engine on both backends, on planted data (see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personae import Event, InvalidInput, Item, NotFound, Store
from personae.service import Engine, Filters, RecommendRequest


def rec(engine: Engine, user: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return engine.recommend(RecommendRequest(user, **kw))  # type: ignore[arg-type]


def test_known_user_gets_their_group_and_no_seen_items(engine: Engine) -> None:
    seen = {e.item_id for e in engine.store.user_events("u1")}
    res = rec(engine, "u1", k=3)
    assert res.strategy == "model" and res.model_version == engine.model_version
    assert all(i.startswith("a") for i in res.item_ids)
    assert not seen & set(res.item_ids)
    assert [it.rank for it in res.items] == [1, 2, 3]
    assert [it.score for it in res.items] == sorted((it.score for it in res.items), reverse=True)


def test_real_time_loop_event_is_used_at_once(engine: Engine) -> None:
    before = rec(engine, "u1", k=4)
    top = before.item_ids[0]
    engine.store.add_events([Event("u1", top, "purchase")])
    after = rec(engine, "u1", k=4)
    assert top not in after.item_ids  # excluded as seen, without retraining
    # and the history-based scores use it: the scores of the remaining items changed
    old = {it.item_id: it.score for it in before.items}
    new = {it.item_id: it.score for it in after.items}
    common = set(old) & set(new)
    assert common and any(abs(old[i] - new[i]) > 1e-6 for i in common)


def test_negative_feedback_pushes_down_never_up(engine: Engine) -> None:
    res = rec(engine, "u1", k=4)
    target = res.item_ids[0]
    engine.store.add_events([Event("u1", target, "dislike")])
    again = rec(engine, "u1", k=20, filters=Filters(exclude_seen=False))
    assert target not in again.item_ids  # never recommended, even with seen items allowed
    # in a ranking the disliked item comes last, below items of the other group
    ranked = engine.rank("u1", [target, "b1", "b2"])
    assert ranked.item_ids[-1] == target and ranked.items[-1].source == "disliked"


def test_filters_categories_attributes_availability_exclude(engine: Engine) -> None:
    res = rec(engine, "u1", k=20, filters=Filters(categories=["A0", "B0"]))
    assert res.item_ids and all(int(i[1:]) % 2 == 0 for i in res.item_ids)
    assert {i[0] for i in res.item_ids} == {"a", "b"}  # several categories at once
    res = rec(engine, "u1", k=20, filters=Filters(attributes={"price": {"gte": 5}}))
    assert res.item_ids and all(int(i[1:]) >= 5 for i in res.item_ids)
    res = rec(engine, "u1", k=20, filters=Filters(attributes={"brand": "acme",
                                                              "price": [1.0, 3, 8]}))
    assert set(res.item_ids) <= {"a1", "a3", "b1", "b3"} and res.item_ids
    res = rec(engine, "u1", k=20, filters=Filters(exclude_categories=["A"]))
    assert res.item_ids and all(i.startswith("b") for i in res.item_ids)
    first = rec(engine, "u1", k=3).item_ids
    engine.store.set_item_availability(first[0], False)
    res = rec(engine, "u1", k=20, filters=Filters(exclude=[first[1]]))
    assert first[0] not in res.item_ids and first[1] not in res.item_ids
    assert first[0] in rec(engine, "u1", k=20,
                           filters=Filters(available_only=False)).item_ids


def test_bad_filters_name_the_field(engine: Engine) -> None:
    with pytest.raises(NotFound, match="'nope'.*filters.exclude"):
        rec(engine, "u1", filters=Filters(exclude=["nope"]))
    with pytest.raises(InvalidInput, match="unknown category 'Z'"):
        rec(engine, "u1", filters=Filters(categories=["Z"]))
    with pytest.raises(InvalidInput, match="'colour'"):
        rec(engine, "u1", filters=Filters(attributes={"colour": "red"}))
    with pytest.raises(InvalidInput, match="k must be"):
        RecommendRequest("u1", k=0)
    with pytest.raises(InvalidInput, match=r"filters.attributes\['price'\]"):
        Filters(attributes={"price": {"between": 3}})
    with pytest.raises(InvalidInput, match="unknown field"):
        RecommendRequest.from_dict({"user": "u1"})


def test_paging_never_repeats(engine: Engine) -> None:
    shown: list[str] = []
    res = rec(engine, "u25", k=3, filters=Filters(exclude_seen=False))
    pages = [res]
    while res.items:
        shown += res.item_ids
        res = rec(engine, "u25", k=3, after=res.rec_id, filters=Filters(exclude_seen=False))
        pages.append(res)
    assert len(shown) == len(set(shown)) == 20  # every item once, then an empty page
    assert [p.page for p in pages] == list(range(1, len(pages) + 1))
    with pytest.raises(InvalidInput, match="another user"):
        rec(engine, "u1", after=pages[0].rec_id)
    with pytest.raises(NotFound, match="r_missing"):
        rec(engine, "u1", after="r_missing")


def test_unknown_user_cold_start_policy_paths(engine: Engine) -> None:
    """A user the model was not trained on goes through the cold-start policy, which says
    which path it took: segment popularity without events, the fold-in blended with that
    prior for a short history (the first clicks count at once), the fold-in alone for a long
    one."""
    cold = rec(engine, "newbie", k=5)
    assert cold.strategy == "cold-start-segment"
    assert cold.cold_start_path == "segment_popularity"
    engine.store.add_events([Event("newbie", "b1", "like"), Event("newbie", "b2", "like")])
    warm = rec(engine, "newbie", k=5)
    assert warm.strategy == "fold-in" and warm.cold_start_path == "history_blend"
    assert {"b1", "b2"}.isdisjoint(warm.item_ids)
    n_b = sum(i.startswith("b") for i in warm.item_ids)
    assert n_b > sum(i.startswith("b") for i in cold.item_ids)
    # a history as long as the policy's full_history: the fold-in alone, all of the b group
    many = [Event("fan", f"b{n}", "like") for n in range(8)]
    engine.store.add_events(many)
    policy = engine._policies[engine.model_version]
    policy.full_history = 8
    full = rec(engine, "fan", k=2)
    assert full.cold_start_path == "history" and all(i.startswith("b") for i in full.item_ids)
    # a user the model was trained on does not take the policy
    assert rec(engine, "u1", k=2).cold_start_path is None


def test_anonymous_session(engine: Engine) -> None:
    res = engine.recommend({"session_items": ["a1", "a2", "a3"], "k": 4})
    assert res.strategy == "session" and res.user_id is None
    assert all(i.startswith("a") for i in res.item_ids)
    assert {"a1", "a2", "a3"}.isdisjoint(res.item_ids)
    with pytest.raises(NotFound, match="session_items"):
        engine.recommend({"session_items": ["zzz"]})


def test_new_items_are_known_without_retraining(engine: Engine) -> None:
    engine.store.upsert_items([Item("c1", "New", categories=["C"])])
    res = rec(engine, "u1", k=3, filters=Filters(categories=["C"]))
    assert res.item_ids == ["c1"] and res.items[0].source == "popularity"
    assert "c1" in engine.rank("u1", ["c1", "a1"]).item_ids


def test_similar_items(engine: Engine) -> None:
    res = engine.similar("a1", k=5)
    assert res.strategy == "similar" and "a1" not in res.item_ids
    assert all(i.startswith("a") for i in res.item_ids)
    with pytest.raises(NotFound, match="'zz'"):
        engine.similar("zz")


def test_explanations_name_history_items(engine: Engine) -> None:
    res = rec(engine, "u1", k=2, explain=True)
    titles = {f"'A item {e.item_id[1:]}'" for e in engine.store.user_events("u1")}
    for it in res.items:
        assert it.reasons and any(t in it.reasons[0] for t in titles)


def test_explanations_are_the_models_own_split_of_the_score(engine: Engine) -> None:
    res = rec(engine, "u1", k=3, explain=True)
    history = {e.item_id for e in engine.store.user_events("u1")}
    for it in res.items:
        ex = it.explanation
        assert ex is not None and ex["method"] == "exact"
        # EASE: the terms of every history item add up to the served score
        assert ex["total"] == pytest.approx(it.score, rel=1e-4, abs=1e-5)
        named = [r for r in ex["reasons"] if r["kind"] == "history"]
        assert named and {r["item_id"] for r in named} <= history
        assert named == sorted(named, key=lambda r: -r["contribution"])
        assert "% of the score" in it.reasons[0]
    # a new user's list comes from the cold-start prior: the explanation says popularity
    cold = rec(engine, "nobody-yet", k=2, explain=True)
    for it in cold.items:
        kinds = {r["kind"] for r in it.explanation["reasons"]}
        assert kinds and kinds <= {"popularity", "segment", "context"}, it.explanation
        assert any(t.startswith("popular") for t in it.reasons)


def test_diversity_reranks_and_caps_categories(engine: Engine) -> None:
    plain = rec(engine, "u1", k=6, filters=Filters(exclude_seen=False))
    same = rec(engine, "u1", k=6, diversity=0.0, filters=Filters(exclude_seen=False))
    assert same.item_ids == plain.item_ids  # diversity 0 = the relevance order
    cats = {it.item_id: it.categories for it in engine.store.iter_items()}

    def top_share(ids: list[str]) -> float:
        counts: dict[str, int] = {}
        for i in ids:
            for c in cats[i]:
                counts[c] = counts.get(c, 0) + 1
        return max(counts.values()) / len(ids)

    diverse = rec(engine, "u1", k=6, diversity=1.0, filters=Filters(exclude_seen=False))
    assert top_share(diverse.item_ids) < top_share(plain.item_ids)
    capped = rec(engine, "u1", k=6, max_per_category=1, filters=Filters(exclude_seen=False))
    assert all(sum(c in cats[i] for i in capped.item_ids) <= 1 for c in set().union(*cats.values()))
    with pytest.raises(InvalidInput, match="diversity"):
        rec(engine, "u1", diversity=1.5)


def test_impressions_are_logged(engine: Engine) -> None:
    res = rec(engine, "u1", k=3, context={"device": "tv"})
    engine.flush()  # queued by the request, stored by a background thread (test_impressions)
    logged = engine.store.get_recommendation(res.rec_id)
    assert logged.items == res.item_ids and logged.kind == "recommend"
    assert logged.context == {"device": "tv"} and logged.model_version == res.model_version
    assert logged.request["k"] == 3
    engine.store.forget_user("u1")
    with pytest.raises(NotFound):
        engine.store.get_recommendation(res.rec_id)


def test_rank_and_reward_stored_as_event(engine: Engine) -> None:
    res = engine.rank("u3", ["b1", "a1", "a2"], context={"slot": "home"}, k=2)
    assert res.strategy == "rank" and len(res.items) == 2
    assert set(res.item_ids) <= {"a1", "a2"}  # the user's group first
    engine.flush()
    logged = engine.store.get_recommendation(res.rec_id)
    assert logged.kind == "rank" and logged.request["candidates"] == ["b1", "a1", "a2"]
    event_id = engine.reward(res.rec_id, res.item_ids[0], 1.0)
    again = engine.reward(res.rec_id, res.item_ids[0], 1.0)  # idempotent
    assert again == event_id
    stored = [e for e in engine.store.user_events("u3") if e.event_id == event_id]
    assert len(stored) == 1 and stored[0].type == "reward" and stored[0].value == 1.0
    assert stored[0].context["rec_id"] == res.rec_id and stored[0].context["slot"] == "home"
    with pytest.raises(InvalidInput, match="'b1' was not shown"):
        engine.reward(res.rec_id, "b1", 1.0)
    with pytest.raises(InvalidInput, match="twice"):
        engine.rank("u3", ["a1", "a1"])
    with pytest.raises(NotFound, match="candidates"):
        engine.rank("u3", ["a1", "nope"])
    anon = engine.rank(None, ["a1", "b1"])
    engine.reward(anon.rec_id, "b1", 0.5)
    assert engine.store.user_events("_anonymous")[0].value == 0.5


def test_profile(engine: Engine) -> None:
    p = engine.profile("u1")
    assert p["n_events"] == 6 and p["events_by_type"] == {"click": 6}
    assert p["top_categories"][0] == {"category": "A", "events": 6} and p["in_model"]
    with pytest.raises(NotFound):
        engine.profile("ghost")


def test_without_model_popularity_serves(planted: Store, tmp_path: Path) -> None:
    eng = Engine(planted, tmp_path / "m")
    assert eng.ready and eng.model_version is None
    res = eng.recommend(RecommendRequest("u1", k=3))
    assert res.strategy == "cold-start-popularity" and len(res.items) == 3


def test_events_on_items_newer_than_the_catalogue(store: Store, tmp_path: Path) -> None:
    # Regression (reported by helper B): the masks were built from the catalogue loaded
    # before the history forced a reload, an IndexError on the real-time path.
    eng = Engine(store, tmp_path / "m", refresh_interval=3600.0)
    store.add_events([Event("u1", "i1"), Event("u2", "i1"), Event("u2", "i2")])
    res = eng.recommend(RecommendRequest("u1", k=5))
    assert res.item_ids == ["i2"]  # i1 is seen; i2 known at once, without waiting
    assert eng.rank("u1", ["i2", "i1"]).item_ids[0] in {"i1", "i2"}
    store.add_events([Event("u3", "i3")])
    # known at once; no model and no categories: the popular items, never itself
    assert eng.similar("i3").item_ids == ["i1", "i2"]


def test_categories_and_attributes_newer_than_the_catalogue(store: Store,
                                                           tmp_path: Path) -> None:
    """A filter on a category or attribute written after the catalogue was loaded is served
    at once (the catalogue reloads), not refused as unknown until the next refresh."""
    eng = Engine(store, tmp_path / "m", refresh_interval=3600.0)
    store.upsert_items([Item("s1", categories=["shoes"], attributes={"size": 42}),
                        Item("j1", categories=["jackets"])])
    res = eng.recommend(RecommendRequest("u1", k=5, filters=Filters(categories=["shoes"])))
    assert res.item_ids == ["s1"]
    res = eng.recommend(RecommendRequest("u1", k=5, filters=Filters(attributes={"size": 42})))
    assert res.item_ids == ["s1"]
    # similar() takes the same filters: no "unknown category" (j1 shares no category with
    # s1, so without a model the list holds nothing outside "shoes")
    assert set(eng.similar("j1", filters=Filters(categories=["shoes"])).item_ids) <= {"s1"}
    with pytest.raises(InvalidInput, match="unknown category 'boots'"):
        eng.recommend(RecommendRequest("u1", filters=Filters(categories=["boots"])))


def test_positions_of_store_indices_with_and_without_gaps(engine: Engine) -> None:
    """The catalogue maps store item_idx to positions by subtraction while item_idx has no
    gaps, by search once an item was deleted; both give -1 for indices it does not hold."""
    import numpy as np

    from personae.service.catalog import Catalog

    store = engine.store
    cat = Catalog.load(store, None)
    idx = cat.store_idx
    assert cat._first_idx is not None
    probe = np.array([idx[0] - 1, idx[0], idx[5], idx[-1], idx[-1] + 1])
    assert cat.positions_of_store_idx(probe).tolist() == [-1, 0, 5, len(cat) - 1, -1]
    store.delete_item("a3")
    gap = Catalog.load(store, None)
    assert gap._first_idx is None and "a3" not in gap.pos
    got = gap.positions_of_store_idx(probe)
    assert got.tolist() == [-1, 0, gap.pos[cat.item_ids[5]], len(gap) - 1, -1]
    assert gap.positions_of_store_idx(idx[[3]]).tolist() == [-1]  # the deleted a3
    # and the engine serves after the deletion (history rows of a3 are gone with it)
    res = engine.recommend(RecommendRequest("u1", k=5))
    assert "a3" not in res.item_ids


def test_profile_has_behaviour_and_a_traceable_summary(engine: Engine) -> None:
    prof = engine.profile("u1")
    assert prof["n_events"] == len(engine.store.user_events("u1"))
    behaviour = prof["behaviour"]
    assert behaviour["activity"]["n_events"] == prof["n_events"]
    assert prof["summary"] and prof["summary_facts"]
    for fact in prof["summary_facts"]:
        assert fact["text"] in prof["summary"] and fact["figures"]



def test_bandit_ranking_logs_propensities_and_learns_from_rewards(engine: Engine) -> None:
    """Planted: in the context {"device": "tv"} only the b-items are ever rewarded. The
    LinUCB ranking learns to put them first there, the propensities are logged with the list,
    and the policy survives a restart (saved state)."""
    cands = ["a1", "a3", "a5", "b1", "b3", "b5"]
    res = engine.rank("u9", cands, {"device": "tv"}, k=3, policy="linucb")
    assert res.strategy == "rank-linucb" and len(res.items) == 3
    engine.flush()
    logged = engine.store.get_recommendation(res.rec_id)
    assert logged.propensities and len(logged.propensities) == 3
    assert all(0 < p <= 1 for p in logged.propensities)
    for _ in range(60):
        r = engine.rank("u9", cands, {"device": "tv"}, k=1, policy="linucb")
        top = r.item_ids[0]
        engine.reward(r.rec_id, top, 1.0 if top.startswith("b") else 0.0)
    late = [engine.rank("u9", cands, {"device": "tv"}, k=1, policy="linucb").item_ids[0]
            for _ in range(20)]
    assert sum(i.startswith("b") for i in late) >= 16
    # a repeated reward is stored once and learned once
    pol = engine._bandit.policy("linucb")
    n = pol.n_updates_
    engine.reward(r.rec_id, top, 1.0)
    assert pol.n_updates_ == n
    engine.flush()
    fresh = Engine(engine.store, engine.models_dir, refresh_interval=0.0)
    try:
        assert fresh._bandit.policy("linucb").n_updates_ == n
    finally:
        fresh.close()
    with pytest.raises(InvalidInput, match="policy"):
        engine.rank("u9", cands, policy="greedy-ish")


def test_natural_language_requests_combine_the_query_with_the_history(
        planted: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Items with texts; a query shifts the list toward matching texts, two users asking the
    same get different answers, and a self-description starts a user with no history."""
    planted.upsert_items([
        Item("a1", "A item 1", text="a funny light comedy for a family evening"),
        Item("b1", "B item 1", text="a funny light comedy for a family evening"),
        Item("a2", "A item 2", text="a slow dark science fiction epic in deep space"),
        Item("b2", "B item 2", text="a slow dark science fiction epic in deep space"),
    ])
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0, text_encoder="hashing")
    try:
        eng.train("ease", {"l2": 1.0}, background=False)
        query = "funny comedy for the family"
        fan_a = [u for u in ("u0", "u1", "u2", "u3") if "a1" not in
                 {e.item_id for e in planted.user_events(u)}][0]
        fan_b = [u for u in ("u20", "u21", "u22", "u23") if "b1" not in
                 {e.item_id for e in planted.user_events(u)}][0]
        ra = eng.recommend(RecommendRequest(fan_a, k=3, query=query))
        rb = eng.recommend(RecommendRequest(fan_b, k=3, query=query))
        assert ra.strategy == rb.strategy == "query"
        comedies = {"a1", "b1"}
        assert ra.item_ids[0] in comedies and rb.item_ids[0] in comedies  # the query leads
        assert ra.item_ids != rb.item_ids  # ... in each user's own taste
        assert sum(i.startswith("a") for i in ra.item_ids) > \
            sum(i.startswith("a") for i in rb.item_ids)
        assert ra.items[0].explanation["matched"] in ("query", "both")
        plain = eng.recommend(RecommendRequest(fan_a, k=3))
        assert not comedies & set(plain.item_ids)  # without the query, no comedy on top
        # filters still apply
        only_b = eng.recommend(RecommendRequest(fan_a, k=3, query=query,
                                                filters=Filters(categories=["B"])))
        assert all(i.startswith("b") for i in only_b.item_ids)
        # a self-description, no history
        new = eng.recommend(RecommendRequest("stranger", k=2,
                                             description="I love slow science fiction"))
        assert set(new.item_ids) & {"a2", "b2"}
        with pytest.raises(InvalidInput, match="query"):
            eng.recommend(RecommendRequest("u1", query="  "))
    finally:
        eng.close()


def test_text_profile_corrections_override_what_was_learned(engine: Engine,
                                                            store_url: str) -> None:
    """u1 likes the A items; they say they do not want A0 and like B1: the A0 items never
    appear, the B1 items are lifted, the assistant's text says so, and a second engine on
    the same store honours it after a refresh. Deleting empties the text."""
    before = rec(engine, "u1", k=5)
    assert any(i in ("a0", "a2", "a4", "a6", "a8") for i in before.item_ids)
    text = engine.text_profile("u1")
    assert text["text"] and text["favourites"] and not text["deleted"]
    out = engine.correct_profile("u1", likes=["B1"], dislikes=["A0"], note="no horror")
    assert "Says they like: B1." in out["text"] and "no horror" in out["text"]
    after = rec(engine, "u1", k=5)
    assert not {"a0", "a2", "a4", "a6", "a8"} & set(after.item_ids)
    assert {"b1", "b3", "b5", "b7", "b9"} & set(after.item_ids)
    other = Engine(store_url, engine.models_dir, refresh_interval=0.0)
    try:
        assert not {"a0", "a2", "a4", "a6", "a8"} & set(rec(other, "u1", k=5).item_ids)
    finally:
        other.close()
    gone = engine.delete_text_profile("u1")
    assert gone["deleted"] and gone["text"] == ""
    assert rec(engine, "u1", k=5).item_ids == before.item_ids  # learned tastes again
    with pytest.raises(NotFound):
        engine.text_profile("nobody")
    engine.store.forget_user("u1")
    assert engine.store.profile_corrections("u1") == {}


def test_each_explained_item_gets_a_grounded_sentence(engine: Engine) -> None:
    res = rec(engine, "u1", k=3, explain=True)
    history_titles = {f"A item {e.item_id[1:]}" for e in engine.store.user_events("u1")}
    for it in res.items:
        ex = it.explanation
        assert ex["sentence_source"] == "template"  # no language model configured
        title = engine._state.catalog.titles[engine._state.catalog.pos[it.item_id]]
        assert title in ex["sentence"]
        named = [t for t in history_titles if t in ex["sentence"]]
        assert named  # the reasons it names come from the user's history


def test_a_language_model_that_cannot_be_reached_falls_back_to_the_template(
        planted: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0,
                 llm={"backend": "openai", "url": "http://127.0.0.1:9/v1", "timeout": 0.5})
    try:
        eng.train("ease", {"l2": 1.0}, background=False)
        res = eng.recommend(RecommendRequest("u1", k=2, explain=True))
        assert all(i.explanation["sentence_source"] == "template" and
                   i.explanation["sentence"] for i in res.items)
    finally:
        eng.close()


def test_requests_in_words_use_the_fine_tuned_adapter(planted: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from personae.data.interactions import Interactions
    from personae.text.cache import EmbeddingCache
    from personae.text.finetune import pairs_from_interactions, train_adapter

    view = Interactions.from_store(planted)
    cache = EmbeddingCache(tmp_path / "emb", encoder="hashing")
    cache.update_from_store(planted)
    E, _ = cache.lookup(list(map(str, view.item_ids)))
    adapter = train_adapter(E, pairs_from_interactions(view, min_history=2), encoder="hashing",
                            epochs=5, batch_size=32, patience=2)
    folder = adapter.save(tmp_path / "adapter")
    frozen = Engine(planted, tmp_path / "m1", refresh_interval=0.0, text_encoder="hashing")
    tuned = Engine(planted, tmp_path / "m2", refresh_interval=0.0, text_encoder="hashing",
                   text_adapter=folder)
    try:
        ask = RecommendRequest("stranger", k=20, description="A item")
        a = frozen.recommend(ask)
        b = tuned.recommend(ask)
        assert tuned._text[1].model.adapter == str(folder)
        assert a.strategy == b.strategy == "query"
        assert [i.score for i in a.items] != [i.score for i in b.items]
    finally:
        frozen.close()
        tuned.close()


def test_a_sequential_model_serves_from_the_live_history_in_time_order(
        planted: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SASRec through the engine: the user's events reach it oldest first, and a new click
    changes the next list at once (no retraining)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0)
    try:
        mv = eng.train("sasrec", {"epochs": 2, "factors": 16, "max_len": 10,
                                  "random_state": 0}, background=False)
        assert mv.status in ("active", "ready"), mv.message
        if mv.status == "ready":
            eng.activate(mv.version)
        seen: list[np.ndarray] = []
        model = eng._state.artifact.model
        real = type(model).score_history

        def spy(self, items, weights=None, context=None):  # type: ignore[no-untyped-def]
            seen.append(np.asarray(items))
            return real(self, items, weights, context)

        type(model).score_history = spy  # type: ignore[method-assign]
        try:
            before = rec(eng, "u1", k=3)
            planted.add_events([Event("u1", "b1", "click", timestamp=1_800_000_000.0)])
            after = rec(eng, "u1", k=3)
        finally:
            type(model).score_history = real  # type: ignore[method-assign]
        assert before.model_version == mv.version and len(after.items) == 3
        cols = {c: i for i, c in enumerate(eng._state.artifact.item_ids)}
        assert seen[-1][-1] == cols["b1"]  # the newest event comes last
        times = {e.item_id: e.timestamp for e in planted.user_events("u1")}
        order = [eng._state.artifact.item_ids[c] for c in seen[0]]
        assert [times[i] for i in order] == sorted(times[i] for i in order)
    finally:
        eng.close()


def test_new_items_get_an_exploration_slot_when_they_match_the_history(
        engine: Engine) -> None:
    """Items added after training have no events: the last place of a list goes to the new
    item that shares categories with what the user liked, flagged as exploration."""
    engine.store.upsert_items([Item("a-new", "New A", categories=["A"]),
                               Item("z-new", "New Z", categories=["Z"])])
    fan_a = rec(engine, "u1", k=5, explain=True)
    assert fan_a.item_ids[-1] == "a-new" and fan_a.items[-1].source == "exploration"
    assert "shares A" in fan_a.items[-1].reasons[0]
    assert fan_a.items[-1].explanation["method"] == "exploration"
    assert all(i.source == "model" for i in fan_a.items[:-1])
    fan_b = rec(engine, "u25", k=5)
    assert "a-new" not in fan_b.item_ids and "z-new" not in fan_b.item_ids
    engine.explore_new_items = 0
    assert "a-new" not in rec(engine, "u1", k=5).item_ids


def test_new_item_exploration_rotates_and_stops_at_its_budget(engine: Engine) -> None:
    """Two new items match the user's taste: the exploration place alternates between them,
    and each is explored in at most ``explore_budget`` lists."""
    engine.explore_budget = 2
    engine.store.upsert_items([Item("a-new", "New A", categories=["A"]),
                               Item("a-new2", "Newer A", categories=["A"])])
    explored = []
    for _ in range(6):
        last = rec(engine, "u1", k=5).items[-1]
        explored.append(last.item_id if last.source == "exploration" else None)
    assert explored[:4].count("a-new") == 2 and explored[:4].count("a-new2") == 2
    assert explored[0] != explored[1]  # the one shown goes behind the other
    assert explored[4:] == [None, None]  # budgets spent: the model's own items again
    with pytest.raises(InvalidInput, match="explore_budget"):
        Engine(engine.store, engine.models_dir, explore_budget=-1)
