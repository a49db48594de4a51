"""Two-tower: the conformance suite, and planted signals in item features (cold items), user
features (new users, from their attributes in ``context["user"]``) and request context;
vectors for an ANN index; the training split into inputs and targets, tied item vectors, the
trained item bias, artifacts of the old layout; the rating head on planted ratings."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")

import torch  # noqa: E402

from personae.data.interactions import Interactions  # noqa: E402
from personae.data.side import SideFeatures  # noqa: E402
from personae.errors import InvalidInput  # noqa: E402
from personae.models import Recommender  # noqa: E402
from personae.models.twotower import TwoTower, _split_rows, ridge_biases  # noqa: E402

from .conformance import ModelConformance  # noqa: E402

torch.set_num_threads(1)

SMALL = {"factors": 16, "epochs": 40, "batch_size": 16, "learning_rate": 1e-2,
         "dropout": 0.0, "random_state": 0, "num_threads": 1}


class TestTwoTower(ModelConformance):
    invalid_params = [("factors", 0), ("input_keep", 1.0), ("dropout", -0.1),
                      ("loss", "bpr"), ("learning_rate", 0), ("user_embedding", "yes"),
                      ("targets", "rest"), ("tie_items", "no"), ("user_mlp", 1.5),
                      ("lr_decay", "yes"), ("rating_head", "yes"), ("rating_weight", 0.0),
                      ("history_dropout", 1.0)]

    def make_model(self, **params: Any) -> TwoTower:
        return TwoTower(**{**SMALL, **params})


def genre_world(n_users: int = 60, n_items: int = 40, cold: int = 8, seed: int = 0
                ) -> tuple[Interactions, SideFeatures]:
    """Items have one of two genres (item % 2); each user likes one genre (user % 2) and has
    seen 8 of its warm items. The last ``cold`` items have no interaction at all: only their
    genre (and a planted text vector) says who will like them. Users have a demographic field
    equal to their genre; every event has a device, "tv" for genre-0 users and "phone" else."""
    rng = np.random.default_rng(seed)
    warm = n_items - cold
    users, items = [], []
    for u in range(n_users):
        mine = [i for i in range(warm) if i % 2 == u % 2]
        for i in rng.choice(mine, size=8, replace=False):
            users.append(u)
            items.append(int(i))
    view = Interactions.from_arrays(users, items, timestamps=1e9 + np.arange(len(users)),
                                    n_users=n_users, n_items=n_items)
    genre = {str(i): {"categories": [f"g{i % 2}"], "attributes": {"year": 1990 + i}}
             for i in range(n_items)}
    people = genre_people(n_users)
    text = np.zeros((n_items, 4), np.float32)
    text[np.arange(n_items), np.arange(n_items) % 2] = 1.0
    text += rng.normal(scale=0.1, size=text.shape).astype(np.float32)
    side = SideFeatures.from_records(
        user_ids=view.user_ids, item_ids=view.item_ids, items=genre, users=people,
        numeric_attributes=["year"], user_attributes=["taste"], item_text=text)
    contexts = [{"device": "tv" if u % 2 == 0 else "phone"} for u in users]
    side = side.with_event_context(view, contexts, context_keys=["device"])
    return view, side


def genre_people(n_users: int = 60) -> dict[str, dict[str, Any]]:
    """genre_world's user records: ``taste`` is the user's genre (``"t0"``/``"t1"``); ``age``
    (18 to 62) says nothing about it (genre_world leaves it out)."""
    return {str(u): {"attributes": {"taste": f"t{u % 2}", "age": 18 + (u * 7) % 45}}
            for u in range(n_users)}


def test_cold_items_are_scored_from_their_features() -> None:
    view, side = genre_world()
    model = TwoTower(**{**SMALL, "id_dropout": 0.5}).fit(view, side=side)
    cold = np.arange(32, 40)
    assert not model.warm_[cold].any() and model.warm_[:32].all()
    scores = model.score_users(np.arange(view.n_users))
    for u in range(view.n_users):
        ranked = cold[np.argsort(-scores[u, cold])]
        assert (ranked[:4] % 2 == u % 2).all(), f"user {u}: {ranked}"


def test_a_new_user_is_scored_from_history_alone() -> None:
    view, side = genre_world()
    model = TwoTower(**SMALL).fit(view, side=side)
    for parity in (0, 1):
        recs = model.recommend(history=[parity, parity + 2], k=5)
        assert (recs.items % 2 == parity).all()


def test_a_new_user_is_scored_from_their_demographics(tmp_path: Any) -> None:
    """A user who was not trained on, with no history or a genre-neutral one (one item of
    each genre), is ranked towards the genre of their ``taste`` attribute given as
    ``context["user"]``; the other taste flips it. Saved and loaded, the same."""
    view, side = genre_world()
    model = TwoTower(**SMALL).fit(view, side=side)
    assert model.user_fields_ == ["taste"] and model.user_vocab_ == [["t0", "t1"]]
    loaded = Recommender.load(model.save(tmp_path / "m"))
    warm = np.arange(32)
    for history in ([], [0, 1]):
        for taste, parity in (("t0", 0), ("t1", 1)):
            ctx = {"user": {"taste": taste}}  # no device: in genre_world it names the genre
            scores = model.score_history(history, None, ctx)[warm]
            assert scores[warm % 2 == parity].mean() > scores[warm % 2 != parity].mean()
            if not history:  # the neutral history is off the training data (every history
                # there is of one genre): its top 5 went either way with float rounding on
                # another CPU and with other seeds, the genre's mean score did not
                recs = model.recommend(history=history, k=5, context=ctx)
                assert (recs.items % 2 == parity).all(), f"{taste}: {recs.items}"
            np.testing.assert_array_equal(loaded.score_history(history, None, ctx),
                                          model.score_history(history, None, ctx))
    # the user vector (for an ANN index) carries the demographics too
    H = sp.csr_matrix((1, view.n_items), dtype=np.float32)
    ctx = {"user": {"taste": "t1"}}
    np.testing.assert_allclose(model.user_vectors(H, context=ctx) @ model.item_vectors().T,
                               model.score_histories(H, ctx), rtol=1e-4, atol=1e-4)


def test_unknown_user_attributes_are_ignored() -> None:
    """Values not seen in training and attributes that are no user field are unknown codes:
    the same scores as no attributes. Training users scored by their row keep their own codes
    (the key is ignored for them). Attributes that are not a mapping are refused."""
    view, side = genre_world()
    model = TwoTower(**SMALL).fit(view, side=side)
    plain = model.score_history([0, 1], context={"device": "tv"})
    for attributes in ({"taste": "t9"}, {"shoe_size": 42}, {"taste": None}, {}):
        np.testing.assert_array_equal(
            model.score_history([0, 1], context={"device": "tv", "user": attributes}), plain)
    assert not np.array_equal(model.score_history([0, 1], context={"user": {"taste": "t0"}}),
                              model.score_history([0, 1]))
    users = np.arange(6)
    np.testing.assert_array_equal(model.score_users(users, {"user": {"taste": "t1"}}),
                                  model.score_users(users))
    with pytest.raises(InvalidInput, match=r"context\['user'\] must be a mapping"):
        model.score_history([0, 1], context={"user": "t0"})


def test_encode_user_gives_the_training_users_codes_back() -> None:
    """SideFeatures.encode_user maps a user's raw attributes to the codes a training user with
    the same attributes got, a binned number (age) included; unseen values and bins are -1."""
    view, _ = genre_world()
    people = genre_people(view.n_users)
    side = SideFeatures.from_records(user_ids=view.user_ids, item_ids=view.item_ids,
                                     users=people, user_attributes=["age", "taste"],
                                     user_bins={"age": [25, 35, 50, 100]})
    assert dict(side.user_bins) == {"age": (25.0, 35.0, 50.0, 100.0)}
    assert side.user_vocab[0] == ("25-34", "35-49", "50-99", "<25")
    for u in view.user_ids:
        np.testing.assert_array_equal(side.encode_user(people[str(u)]["attributes"]),
                                      side.user_codes[int(u)])
    # 120 falls in the bin "100+", which no training user had; "t9" was never seen
    np.testing.assert_array_equal(side.encode_user({"age": 120, "taste": "t9"}), [-1, -1])
    np.testing.assert_array_equal(side.encode_user({"age": "old"}), [-1, -1])
    np.testing.assert_array_equal(side.encode_user(None), [-1, -1])
    # the bins follow the features when they are re-indexed (a split's index space)
    assert side.align(view.user_ids[:3], view.item_ids, own_user_ids=view.user_ids,
                      own_item_ids=view.item_ids).encode_user({"age": 30}).tolist() == [0, -1]
    with pytest.raises(InvalidInput, match="user_bins names 'height'"):
        SideFeatures(side.n_users, side.n_items, side.item_categories, user_bins={"height": ()})


def test_context_enters_the_user_side() -> None:
    """Planted context: every user likes both genres, watching genre 0 on the tv and genre 1
    on the phone; for the same history the device decides which genre comes first."""
    rng = np.random.default_rng(3)
    users, items = [], []
    for u in range(60):
        for i in rng.choice(32, size=10, replace=False):
            users.append(u)
            items.append(int(i))
    view = Interactions.from_arrays(users, items, n_users=60, n_items=32)
    contexts = [{"device": "tv" if i % 2 == 0 else "phone"} for i in items]
    side = SideFeatures.empty(60, 32).with_event_context(view, contexts, time_fields=(),
                                                         context_keys=["device"])
    model = TwoTower(**SMALL).fit(view, side=side)
    history = [0, 1, 2, 3]
    for device, parity in (("tv", 0), ("phone", 1)):
        recs = model.recommend(history=history, k=5, context={"device": device})
        assert (recs.items % 2 == parity).all(), f"{device}: {recs.items}"
    # an unknown device is the same as no device
    np.testing.assert_allclose(model.score_history(history, context={"device": "fridge"}),
                               model.score_history(history, context=None))


def test_user_and_item_vectors_reproduce_the_scores() -> None:
    view, side = genre_world()
    model = TwoTower(**SMALL).fit(view, side=side)
    H = sp.csr_matrix(([1.0, 1.0], ([0, 0], [1, 3])), shape=(1, view.n_items))
    ctx = {"device": "tv"}
    got = model.user_vectors(H, context=ctx) @ model.item_vectors().T
    np.testing.assert_allclose(got[0], model.score_histories(H, ctx)[0], rtol=1e-4, atol=1e-4)
    users = np.array([0, 5])
    got = model.user_vectors(model.user_items_[users], users) @ model.item_vectors().T
    np.testing.assert_allclose(got, model.score_users(users), rtol=1e-4, atol=1e-4)


def test_features_save_load_and_sampled_loss(tmp_path: Any) -> None:
    view, side = genre_world()
    model = TwoTower(**{**SMALL, "loss": "sampled", "n_negatives": 16,
                        "user_embedding": True}).fit(view, side=side)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    users = np.arange(view.n_users)
    for ctx in (None, {"device": "phone"}):
        np.testing.assert_array_equal(loaded.score_users(users, ctx), model.score_users(users, ctx))
    np.testing.assert_array_equal(loaded.score_history([3, 5], context={"device": "tv"}),
                                  model.score_history([3, 5], context={"device": "tv"}))


def test_side_features_of_another_shape_are_refused() -> None:
    view, side = genre_world()
    other = SideFeatures.empty(view.n_users + 1, view.n_items)
    with pytest.raises(InvalidInput, match="side features"):
        TwoTower(**SMALL).fit(view, side=other)


def test_early_stopping_keeps_the_best_epoch() -> None:
    view, side = genre_world()
    model = TwoTower(**{**SMALL, "validation": 0.5, "patience": 3}).fit(view, side=side)
    metrics = [row["val_ndcg@10"] for row in model.history_]
    assert model.best_epoch_ == int(np.argmax(metrics)) + 1


def test_split_rows_inputs_and_targets() -> None:
    """Per user: round(keep · n) inputs (at least 1); targets are the other items
    ("held_out", at least 1) or all of them ("all"), each with its pair position."""
    X = sp.csr_matrix(np.array([[1, 1, 1, 1, 0, 0], [0, 1, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]],
                               dtype=np.float32))
    users = np.array([0, 1, 2])
    for all_targets in (False, True):
        (in_items, in_rows, w), (t_rows, t_items, t_pos), in_pos = _split_rows(
            X, users, 0.5, np.random.default_rng(0), all_targets)
        assert np.bincount(in_rows, minlength=3).tolist() == [2, 1, 3]
        np.testing.assert_array_equal(w, 1.0)
        np.testing.assert_array_equal(X.indices[t_pos], t_items)
        for r in range(3):
            seen = set(X[r].indices)
            inputs, targets = set(in_items[in_rows == r]), set(t_items[t_rows == r])
            assert inputs <= seen
            assert targets == (seen if all_targets else seen - inputs)


def test_tied_user_vector_is_the_pooled_item_vectors() -> None:
    """With tied item vectors and no user MLP, user features or context, a history's user
    vector is the sum of its items' (scored) vectors over sqrt(len(history))."""
    view, _ = genre_world()
    model = TwoTower(**SMALL).fit(view)
    assert model.net_.id_in is None
    V = model.item_vectors()[:, :-1]
    H = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], [1, 3, 4])), shape=(1, view.n_items))
    np.testing.assert_allclose(model.user_vectors(H)[0, :-1], V[[1, 3, 4]].sum(0) / np.sqrt(3),
                               rtol=1e-4, atol=1e-5)
    untied = TwoTower(**{**SMALL, "tie_items": False}).fit(view)
    assert untied.net_.id_in is not None


def test_the_item_bias_is_trained() -> None:
    """Regression: the item bias was added at scoring but not to the training logits, so it
    stayed 0. Planted: item 0 is in every history, item 1 in none; the rest at random."""
    rng = np.random.default_rng(1)
    users, items = [], []
    for u in range(50):
        for i in [0, *rng.choice(np.arange(2, 30), size=5, replace=False)]:
            users.append(u)
            items.append(int(i))
    view = Interactions.from_arrays(users, items, n_users=50, n_items=30)
    model = TwoTower(**SMALL).fit(view)
    bias = model.item_vectors()[:, -1]
    assert bias[0] > bias[2:].max() + 0.25, bias
    assert bias[1] == 0.0  # never seen: a cold item, whose id part (bias too) is unused


@pytest.mark.parametrize("targets", ["all", "held_out"])
def test_targets_and_old_layout_both_learn_the_genres(targets: str) -> None:
    view, _ = genre_world(cold=0)
    model = TwoTower(**{**SMALL, "targets": targets, "tie_items": targets == "all",
                        "user_mlp": targets == "held_out"}).fit(view)
    for parity in (0, 1):
        recs = model.recommend(history=[parity, parity + 2, parity + 4], k=5)
        assert (recs.items % 2 == parity).all(), f"{targets}: {recs.items}"


def test_an_artifact_of_the_old_layout_loads_as_trained(tmp_path: Any) -> None:
    """Artifacts saved before `tie_items` and `user_mlp` existed have separate input vectors
    and the user MLP; their params lack both keys, whose defaults now say otherwise."""
    view, side = genre_world()
    old = TwoTower(**{**SMALL, "tie_items": False, "user_mlp": True}).fit(view, side=side)
    folder = old.save(tmp_path / "old")
    meta = json.loads((folder / "model.json").read_text())
    for key in ("tie_items", "user_mlp", "targets", "lr_decay"):
        del meta["params"][key]
    (folder / "model.json").write_text(json.dumps(meta))
    loaded = Recommender.load(folder)
    users = np.arange(view.n_users)
    np.testing.assert_array_equal(loaded.score_users(users), old.score_users(users))


def test_an_artifact_without_user_fields_scores_new_users_as_before(tmp_path: Any) -> None:
    """Artifacts saved before the user fields, vocabularies and bins were kept load; they
    cannot encode a new user's attributes, so ``context["user"]`` changes nothing there."""
    view, side = genre_world()
    model = TwoTower(**SMALL).fit(view, side=side)
    folder = model.save(tmp_path / "old")
    meta = json.loads((folder / "model.json").read_text())
    for key in ("user_fields", "user_vocab", "user_bins"):
        del meta["learned"][key]
    del meta["params"]["history_dropout"]
    (folder / "model.json").write_text(json.dumps(meta))
    loaded = Recommender.load(folder)
    assert loaded.user_fields_ == [] and loaded.user_vocab_sizes_ == [2]
    ctx = {"device": "tv", "user": {"taste": "t0"}}
    np.testing.assert_array_equal(loaded.score_history([0, 1], context=ctx),
                                  model.score_history([0, 1], context={"device": "tv"}))
    users = np.arange(view.n_users)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))


# ---------------------------------------------------------------------- the rating head


def planted_ratings(n_users: int = 200, n_items: int = 60, per_user: int = 30, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ratings = 3.5 + user bias + item bias + a rank-2 taste (user · item, std ≈ 0.8) + noise
    (std 0.2), clipped to [1, 5], for ``per_user`` random items per user. Returns users,
    items, ratings and a mask of 5 held-out pairs per user."""
    rng = np.random.default_rng(seed)
    bu, bi = rng.normal(0, 0.4, n_users), rng.normal(0, 0.4, n_items)
    P, Q = rng.normal(0, 0.75, (n_users, 2)), rng.normal(0, 0.75, (n_items, 2))
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False)
                            for _ in range(n_users)])
    ratings = np.clip(3.5 + bu[users] + bi[items] + (P[users] * Q[items]).sum(1)
                      + rng.normal(0, 0.2, users.size), 1.0, 5.0)
    held = np.tile(np.arange(per_user) < 5, n_users)
    return users, items, ratings, held


RATED = {**SMALL, "rating_head": True, "epochs": 20}


def rated_matrix(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                 shape: tuple[int, int] = (200, 60)) -> sp.csr_matrix:
    return sp.csr_matrix((ratings, (users, items)), shape=shape)


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def test_the_rating_head_learns_the_taste_beyond_the_biases() -> None:
    """On held-out pairs the head beats the global mean and its own starting point (mean +
    ridge biases): the planted rank-2 taste is only learnable from the interaction."""
    users, items, ratings, held = planted_ratings()
    model = TwoTower(**RATED).fit(rated_matrix(users[~held], items[~held], ratings[~held]))
    u, i, actual = users[held], items[held], ratings[held]
    bu, bi = model.rating_bias_
    mean = rmse(np.full(actual.size, ratings[~held].mean()), actual)
    biases = rmse(model.rating_mean_ + bu[u] + bi[i], actual)
    head = rmse(model.predict_ratings(u, i), actual)
    assert biases < 0.95 * mean, (mean, biases)
    assert head < 0.6 * biases, (biases, head)


def test_ratings_come_from_the_event_values() -> None:
    """Fit from Interactions, the ratings are the events' values (the last per pair), not the
    matrix weights: the model equals one fit on the matrix of those values."""
    users, items, ratings, held = planted_ratings()
    u, i, r = users[~held], items[~held], ratings[~held]
    # a first, overwritten value of every tenth pair: the last one counts
    first = np.arange(0, u.size, 10)
    view = Interactions.from_arrays(np.r_[u[first], u], np.r_[i[first], i],
                                    values=np.r_[np.full(first.size, 1.0), r], n_users=200,
                                    n_items=60, binary=True)
    from_view = TwoTower(**{**RATED, "epochs": 5}).fit(view)
    from_matrix = TwoTower(**{**RATED, "epochs": 5}).fit(rated_matrix(u, i, r))
    np.testing.assert_allclose(from_view.predict_ratings(users[held], items[held]),
                               from_matrix.predict_ratings(users[held], items[held]),
                               rtol=1e-5, atol=1e-5)
    assert from_view.rating_range_ == (pytest.approx(r.min()), pytest.approx(r.max()))


def test_predict_ratings_survives_save_and_load(tmp_path: Any) -> None:
    users, items, ratings, held = planted_ratings()
    model = TwoTower(**{**RATED, "epochs": 5}).fit(
        rated_matrix(users[~held], items[~held], ratings[~held]))
    loaded = Recommender.load(model.save(tmp_path / "rated"))
    assert isinstance(loaded, TwoTower)
    np.testing.assert_array_equal(loaded.predict_ratings(users, items),
                                  model.predict_ratings(users, items))
    assert loaded.rating_range_ == model.rating_range_
    np.testing.assert_array_equal(loaded.score_users([0, 1]), model.score_users([0, 1]))


def test_predicted_ratings_stay_in_the_training_range() -> None:
    users, items, ratings, held = planted_ratings()
    keep = ~held
    model = TwoTower(**{**RATED, "epochs": 5}).fit(rated_matrix(users[keep], items[keep],
                                                                ratings[keep]))
    every = np.indices((200, 60)).reshape(2, -1)
    got = model.predict_ratings(every[0], every[1])
    assert got.shape == (200 * 60,) and got.dtype == np.float64
    assert got.min() >= ratings[keep].min() and got.max() <= ratings[keep].max()
    assert model.predict_ratings([], []).shape == (0,)


def test_rating_errors_name_the_problem() -> None:
    users, items, ratings, held = planted_ratings()
    X = rated_matrix(users, items, ratings)
    unrated = TwoTower(**SMALL).fit(X)
    assert not unrated.predicts_ratings  # what personae.evaluate checks before asking
    with pytest.raises(InvalidInput, match="rating_head=True"):
        unrated.predict_ratings([0], [0])
    model = TwoTower(**{**RATED, "epochs": 1}).fit(X)
    assert model.predicts_ratings
    for u, i, says in (([200], [0], r"user indices must be in \[0, 200\)"),
                       ([0], [-1], r"item indices must be in \[0, 60\)"),
                       ([0], [60], r"item indices must be in \[0, 60\)")):
        with pytest.raises(InvalidInput, match=says):
            model.predict_ratings(u, i)
    with pytest.raises(InvalidInput, match="same length"):
        model.predict_ratings([0, 1], [0])
    no_values = Interactions.from_arrays(users, items, n_users=200, n_items=60)
    with pytest.raises(InvalidInput, match="needs ratings"):
        TwoTower(**RATED).fit(no_values)
    binary = X.copy()
    binary.data[:] = 1.0
    with pytest.raises(InvalidInput, match="ratings that vary"):
        TwoTower(**RATED).fit(binary)


def test_a_rating_model_still_ranks() -> None:
    """Genre world with ratings (users rate their genre 4–5): the ranking is still learned."""
    view, _ = genre_world(cold=0)
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(view.matrix, dtype=np.float32)
    X.data = rng.choice([4.0, 5.0], size=X.nnz).astype(np.float32)
    model = TwoTower(**{**SMALL, "rating_head": True}).fit(X)
    for parity in (0, 1):
        recs = model.recommend(history=[parity, parity + 2, parity + 4], k=5)
        assert (recs.items % 2 == parity).all(), recs.items
    assert np.isin(model.predict_ratings([0, 1], [0, 1]), [4.0, 5.0], invert=True).all()


def test_forgotten_users_are_rated_as_unknown() -> None:
    """After forget_users a user's rating is the mean plus the item bias (no user bias, no
    history); the others' ratings do not move."""
    users, items, ratings, held = planted_ratings()
    model = TwoTower(**{**RATED, "epochs": 5, "user_embedding": True}).fit(
        rated_matrix(users[~held], items[~held], ratings[~held]))
    others = np.arange(3, 200)
    before = model.predict_ratings(np.repeat(others, 60), np.tile(np.arange(60), others.size))
    model.forget_users([0, 2])
    assert model.rating_resid_.shape == (model.user_items_.nnz,)
    after = model.predict_ratings(np.repeat(others, 60), np.tile(np.arange(60), others.size))
    np.testing.assert_array_equal(after, before)
    net = model.net_
    with torch.no_grad():
        expected = (net.r_mu + net.r_item.weight[:, 0]).numpy().astype(np.float64)
        assert float(net.user_id.weight[[0, 2]].abs().sum()) == 0.0
    expected = np.clip(expected, *model.rating_range_)
    for u in (0, 2):
        np.testing.assert_allclose(model.predict_ratings(np.full(60, u), np.arange(60)),
                                   expected, rtol=1e-6, atol=1e-6)


def test_evaluate_reports_the_rating_heads_rmse() -> None:
    """personae.evaluate: a rating-head model fit on the training pairs' ratings (the split's
    train is 0/1) and passed with ``fit=False`` gets RMSE and MAE on the rated test pairs."""
    from personae.evaluate import evaluate, random_holdout

    users, items, ratings, _ = planted_ratings()
    split = random_holdout(Interactions.from_arrays(users, items, values=ratings))
    assert split.ratings is not None
    model = TwoTower(**RATED).fit(sp.csr_matrix(split.ratings.multiply(split.train)))
    result = evaluate(model, split, ks=(5,), fit=False, memory="none")
    test = split.test.tocoo()
    actual = np.asarray(split.ratings[test.row, test.col]).ravel()
    assert result.metrics["rmse"] == pytest.approx(
        rmse(model.predict_ratings(test.row, test.col), actual), rel=1e-6)
    assert result.metrics["rmse"] < 0.6 * rmse(np.full(actual.size, model.rating_mean_), actual)


def test_ridge_biases_converge_to_the_ridge_solution() -> None:
    """Alternating least squares reaches the minimiser of sum (r - b_u - b_i)^2 + 10 |b_u|^2
    + 25 |b_i|^2, solved here directly from its normal equations."""
    rng = np.random.default_rng(4)
    u, i = rng.integers(0, 6, 40), rng.integers(0, 5, 40)
    resid = rng.normal(0, 1, 40)
    A = np.zeros((40, 11))
    A[np.arange(40), u] = 1.0
    A[np.arange(40), 6 + i] = 1.0
    penalty = np.diag([10.0] * 6 + [25.0] * 5)
    exact = np.linalg.solve(A.T @ A + penalty, A.T @ resid)
    bu, bi = ridge_biases(u, i, resid, (7, 5), iterations=200)
    np.testing.assert_allclose(bu[:6], exact[:6], atol=1e-8)
    np.testing.assert_allclose(bi, exact[6:], atol=1e-8)
    assert bu[6] == 0.0  # a user without ratings


def test_history_weights_do_not_change_the_scores() -> None:
    """Training pools each item once; a history's weights (the engine's click = 2,
    purchase = 5) must score like the same items with weight 1."""
    view, side = genre_world()
    model = TwoTower(**SMALL).fit(view, side=side)
    plain = model.score_history([0, 2, 5])
    weighted = model.score_history([0, 2, 5], [2.0, 5.0, 1.0])
    np.testing.assert_allclose(weighted, plain, rtol=1e-6)
