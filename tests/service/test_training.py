"""Training in the background, validation against the active version, swaps, refresh, rollback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personae import InvalidInput, NotFound, Store
from personae.models.ease import EASE
from personae.service import Engine, RecommendRequest


def test_background_training_activates_and_swaps(planted: Store, tmp_path: Path) -> None:
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0)
    mv = eng.train("ease", {"l2": 1.0})
    assert mv.status == "training"
    with pytest.raises(InvalidInput, match="running|being trained"):
        eng.train("ease")
    done = eng.wait(60)
    assert done is not None and done.status == "active", done
    assert eng.model_version == mv.version == planted.active_model_version()
    assert done.metrics["ndcg@10"] > 0 and done.n_events == 240
    assert (tmp_path / "models" / mv.version / "index.json").exists()
    assert eng.recommend(RecommendRequest("u1")).strategy == "model"
    eng.close()


def test_worse_model_is_kept_ready_with_a_message(engine: Engine) -> None:
    good = engine.model_version
    worse = engine.train("popularity", background=False)
    assert worse.status == "ready"
    assert "not activated" in worse.message and good in worse.message
    assert worse.metrics["active_ndcg@10"] > worse.metrics["ndcg@10"]
    assert engine.model_version == good == engine.store.active_model_version()


def test_failed_training_keeps_the_old_version(engine: Engine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    good = engine.model_version

    def boom(self, X, view):  # type: ignore[no-untyped-def]
        raise RuntimeError("out of memory (planted)")

    monkeypatch.setattr(EASE, "_fit", boom)
    failed = engine.train("ease", background=False)
    assert failed.status == "failed" and "out of memory (planted)" in failed.message
    assert engine.model_version == good
    assert engine.recommend(RecommendRequest("u1")).model_version == good
    with pytest.raises(InvalidInput, match="failed"):
        engine.activate(failed.version)


def test_bad_model_or_params_are_refused_at_once(engine: Engine) -> None:
    n = len(engine.models())
    with pytest.raises(InvalidInput, match="unknown model 'easy'"):
        engine.train("easy")
    with pytest.raises(InvalidInput, match="'l3'"):
        engine.train("ease", {"l3": 1})
    with pytest.raises(InvalidInput, match="l2"):
        engine.train("ease", {"l2": -1.0})
    assert len(engine.models()) == n


def test_second_engine_refreshes_activate_and_rollback(engine: Engine, store_url: str,
                                                       tmp_path: Path) -> None:
    other_store = Store(store_url)
    other = Engine(other_store, tmp_path / "models", refresh_interval=0.0)
    first = engine.model_version
    assert other.model_version == first
    second = engine.train("ease", {"l2": 2.0}, background=False)
    assert second.status == "active"
    assert other.refresh() is True and other.model_version == second.version
    assert other.recommend(RecommendRequest("u1")).model_version == second.version
    assert {m.version: m.status for m in engine.models()} == {first: "retired",
                                                              second.version: "active"}
    back = engine.rollback()
    assert back.version == first and engine.model_version == first
    assert other.refresh() and other.model_version == first
    engine.activate(second.version)
    assert engine.store.get_model_version(first).status == "retired"
    with pytest.raises(NotFound):
        engine.activate("v-none")
    other_store.close()


def test_rollback_without_history_says_so(planted: Store, tmp_path: Path) -> None:
    eng = Engine(planted, tmp_path / "m")
    with pytest.raises(InvalidInput, match="no earlier model version"):
        eng.rollback()


def test_the_cold_start_prior_fits_undated_data(store: Store) -> None:
    """Regression: the prior's time buckets made training fail on data without event times
    (MeLU's ratings): it now falls back to segment popularity without buckets."""
    from personae.data.interactions import Interactions
    from personae.service.training import fit_prior

    view = Interactions.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], n_users=3, n_items=3)
    prior, segment = fit_prior(store, view)
    assert prior.time_buckets is None and segment is None
    scores = prior.score_history([], context={"ts": 1.7e9})
    assert scores.shape == (3,) and scores[1] == scores.max()  # item 1 has two events
    dated = Interactions.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], n_users=3, n_items=3,
                                     timestamps=[1.7e9, 1.7e9 + 3600, 1.7e9 + 7200, 1.7e9])
    assert fit_prior(store, dated)[0].time_buckets == "daypart_weekpart"


def _with_side_data(store: Store) -> None:
    from personae import Event, User

    store.upsert_users([User(f"u{u}", attributes={"gender": "fm"[u % 2], "age": 18 + u,
                                                  "nickname": f"user {u}"})
                        for u in range(40)])
    store.add_events([Event(f"u{u}", f"{'ab'[u >= 20]}{n}", "click",
                            timestamp=1_700_100_000.0 + 60 * u + n,
                            context={"device": "tv" if n % 2 else "mobile"})
                      for u in range(40) for n in range(2)])


def test_side_features_discovered_from_the_store(planted: Store) -> None:
    from personae.data.interactions import Interactions
    from personae.data.side import SideFeatures

    _with_side_data(planted)
    view = Interactions.from_store(planted)
    side = SideFeatures.discover(planted, view)
    # brand (2 values) is a code, price a number; titles are not attributes; nickname has
    # 40 distinct values of 40 users and is kept (≤ max_codes) unless the cap is lower
    assert side.item_fields == ("brand",) and side.numeric_fields == ("price",)
    assert side.user_fields == ("age", "gender", "nickname")
    assert len(side.user_vocab[0]) == 5  # age binned at its quintiles
    # the bins are kept: a user's raw attributes encode to the codes they were given
    assert list(side.user_bins) == ["age"] and len(side.user_bins["age"]) == 4
    attributes = {u.user_id: u.attributes for u in planted.iter_users()}
    codes = np.array([side.encode_user(attributes.get(str(u))) for u in view.user_ids])
    np.testing.assert_array_equal(codes, side.user_codes)
    assert (codes[:, 0] >= 0).sum() == 40  # the 40 users with an age
    assert "device" in side.context_fields and "daypart" in side.context_fields
    assert side.event_codes is not None and side.event_codes.shape[0] == view.n_events
    capped = SideFeatures.discover(planted, view, max_codes=10)
    assert capped.user_fields == ("age", "gender")


def test_two_tower_versions_train_with_side_features(planted: Store, tmp_path: Path) -> None:
    """The engine's training job gives the two-tower model the store's item attributes, user
    demographics, event context and the items' text embeddings."""
    pytest.importorskip("torch")
    _with_side_data(planted)
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0, text_encoder="hashing")
    try:
        mv = eng.train("twotower", {"epochs": 2, "factors": 8, "random_state": 0,
                                    "num_threads": 1}, background=False)
        assert mv.status == "active", mv.message
        model = eng._state.artifact.model
        assert model.item_vocab_sizes_ == [2] and model.item_numeric_.shape[1] == 1
        assert model.item_text_ is not None and model.item_text_.shape[0] == model.n_items_
        assert len(model.user_vocab_sizes_) == 2 + 1
        assert "device" in model.context_fields_
        tv = eng.recommend(RecommendRequest("u1", k=5, context={"device": "tv"}))
        mobile = eng.recommend(RecommendRequest("u1", k=5, context={"device": "mobile"}))
        assert tv.strategy == "model" and len(tv.items) == 5
        assert [i.score for i in tv.items] != [i.score for i in mobile.items]
    finally:
        eng.close()
