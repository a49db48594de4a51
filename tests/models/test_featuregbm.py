"""FeatureGBM on generated ratings with planted effects: it learns them, and round-trips."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("lightgbm")

from personae.data.interactions import Interactions  # noqa: E402
from personae.errors import InvalidInput  # noqa: E402
from personae.models.base import NotFitted  # noqa: E402
from personae.models.featuregbm import FeatureGBM  # noqa: E402

N_USERS, N_ITEMS, N_NEW = 160, 80, 20  # the last N_NEW users are new: 4 ratings each


@lru_cache(maxsize=1)
def planted() -> dict:
    """Ratings = 3 + user bias + item bias ± 0.75 by (gender, genre) + noise, in 1..5.

    Women like genre A and dislike genre B by 0.75 stars each way, men the reverse: an effect
    that biases cannot express and that side features (gender, genre) name directly.
    """
    rng = np.random.default_rng(5)
    gender = rng.integers(0, 2, N_USERS)  # 0 F, 1 M
    genre = np.arange(N_ITEMS) % 2  # 0 A, 1 B
    bu = rng.normal(0, 0.3, N_USERS)
    bi = rng.normal(0, 0.4, N_ITEMS)

    def rate(u: np.ndarray, i: np.ndarray, noise: float) -> np.ndarray:
        taste = np.where(gender[u] == genre[i], 0.75, -0.75)
        r = 3 + bu[u] + bi[i] + taste + rng.normal(0, noise, u.size)
        return np.clip(np.round(r), 1, 5)

    train_u, train_i, test_u, test_i = [], [], [], []
    for u in range(N_USERS):
        n = 4 if u >= N_USERS - N_NEW else 30
        items = rng.choice(N_ITEMS, n + 5, replace=False)
        train_u += [u] * n
        train_i += list(items[:n])
        test_u += [u] * 5
        test_i += list(items[n:])
    tu, ti = np.array(train_u), np.array(train_i)
    qu, qi = np.array(test_u), np.array(test_i)
    view = Interactions.from_arrays(tu, ti, values=rate(tu, ti, 0.3), n_users=N_USERS,
                                    n_items=N_ITEMS)
    users = {"gender": sp.csr_matrix(np.eye(2)[gender])}
    items = {"genre": sp.csr_matrix(np.eye(2)[genre])}
    return {"view": view, "users": users, "items": items, "qu": qu, "qi": qi,
            "qr": rate(qu, qi, 0.0), "gender": gender, "genre": genre,
            "train": (tu, ti, view.event_values)}


def small(**params) -> FeatureGBM:
    return FeatureGBM(**{"factors": 4, "mf_iterations": 3, "neighbours": 20, "holdout": 5,
                         "min_history": 10, "rounds": 2, "n_estimators": 120,
                         "min_child_samples": 20, **params})


@lru_cache(maxsize=1)
def fitted() -> FeatureGBM:
    d = planted()
    return small().fit(d["view"], user_features=d["users"], item_features=d["items"])


def biases_mae(d: dict) -> float:
    u, i, r = d["train"]
    mu, bu, bi = r.mean(), np.zeros(N_USERS), np.zeros(N_ITEMS)
    for _ in range(10):
        bi = np.bincount(i, r - mu - bu[u], N_ITEMS) / (np.bincount(i, minlength=N_ITEMS) + 10)
        bu = np.bincount(u, r - mu - bi[i], N_USERS) / (np.bincount(u, minlength=N_USERS) + 3)
    return float(np.abs(np.clip(mu + bu[d["qu"]] + bi[d["qi"]], 1, 5) - d["qr"]).mean())


def test_learns_the_planted_taste_beyond_biases():
    d = planted()
    pred = fitted().predict(d["qu"], d["qi"])
    mae = float(np.abs(pred - d["qr"]).mean())
    assert mae < 0.6 * biases_mae(d)  # ≈ 0.30 against ≈ 0.78


def test_new_users_inherit_their_segments_taste():
    d = planted()
    model = fitted()
    new = np.arange(N_USERS - N_NEW, N_USERS)
    users = np.repeat(new, N_ITEMS)
    items = np.tile(np.arange(N_ITEMS), N_NEW)
    pred = model.predict(users, items).reshape(N_NEW, N_ITEMS)
    a_minus_b = pred[:, d["genre"] == 0].mean(axis=1) - pred[:, d["genre"] == 1].mean(axis=1)
    women = d["gender"][new] == 0
    assert women.any() and (~women).any()
    # planted: 3.0; from the 4 ratings alone (no side features) the model gets ≈ 1.8
    assert a_minus_b[women].mean() - a_minus_b[~women].mean() > 2.5


def test_save_load_round_trip(tmp_path: Path):
    d = planted()
    model = fitted()
    folder = model.save(tmp_path / "m")
    assert {p.name for p in folder.iterdir()} == {"model.json", "arrays.npz", "booster.txt"}
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        assert "bu" in npz.files
    again = FeatureGBM.load(folder)
    np.testing.assert_array_equal(again.predict(d["qu"], d["qi"]),
                                  model.predict(d["qu"], d["qi"]))
    assert again.get_params() == model.get_params()
    assert again.feature_names_ == model.feature_names_


def test_same_seed_same_model_and_a_plain_matrix_fits_too():
    d = planted()
    u, i, r = d["train"]
    m = sp.csr_matrix((r, (u, i)), shape=(N_USERS, N_ITEMS))
    a = small(n_estimators=20).fit(m, user_features=d["users"], item_features=d["items"])
    b = small(n_estimators=20).fit(d["view"], user_features=d["users"],
                                   item_features=d["items"])
    np.testing.assert_array_equal(a.predict(d["qu"], d["qi"]), b.predict(d["qu"], d["qi"]))


def test_errors_name_the_problem():
    d = planted()
    with pytest.raises(NotFitted):
        FeatureGBM().predict([0], [0])
    with pytest.raises(InvalidInput, match="'factors'"):
        FeatureGBM(factors=0).fit(d["view"])
    with pytest.raises(InvalidInput, match="'min_history'"):
        FeatureGBM(holdout=10, min_history=5).fit(d["view"])
    with pytest.raises(InvalidInput, match=r"user_features\['gender'\] must have 160 rows"):
        small().fit(d["view"], user_features={"gender": sp.csr_matrix((3, 2))})
    with pytest.raises(InvalidInput, match="item indices"):
        fitted().predict([0], [N_ITEMS])


def test_user_knn_and_cooccurrence_features_see_taste_without_side_features():
    """Two taste clusters that no side feature names: cluster 0 rates items 0–39 high and
    40–79 low, cluster 1 the reverse, and each cluster rates mostly its own liked half.
    The user-kNN feature (neighbours' residuals on the item) and the co-occurrence mean (how
    typical the item is of what the user rates) must separate liked from disliked items."""
    rng = np.random.default_rng(11)
    n_users, n_items = 120, 80
    cluster = np.arange(n_users) % 2
    liked = (np.arange(n_items)[None, :] < 40) == (cluster[:, None] == 0)  # (users, items)
    rows, cols = [], []
    for u in range(n_users):
        own = np.flatnonzero(liked[u])
        other = np.flatnonzero(~liked[u])
        pick = np.r_[rng.choice(own, 20, replace=False), rng.choice(other, 8, replace=False)]
        rows += [u] * pick.size
        cols += list(pick)
    u, i = np.array(rows), np.array(cols)
    r = np.where(liked[u, i], 5.0, 2.0) + rng.integers(-1, 1, u.size)
    m = sp.csr_matrix((r, (u, i)), shape=(n_users, n_items))
    model = small(n_estimators=20).fit(m)
    # unrated pairs: every user against every item they have not rated
    rated = m.toarray() > 0
    qu, qi = np.nonzero(~rated)
    X = model.features(qu, qi)
    good = liked[qu, qi]
    for name in ("user_knn", "cooccurrence_mean"):
        col = X[:, model.feature_names_.index(name)]
        assert col[good].mean() > col[~good].mean() + 3 * col.std() / np.sqrt(good.sum())
    pred = model.predict(qu, qi)
    assert pred[good].mean() - pred[~good].mean() > 1.0


def test_shrunk_cosine_by_blocks_equals_in_one_block_and_matches_hand_values():
    from personae.models.featuregbm import _shrunk_cosine, _top_k

    R = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [2.0, 1.0, 0.0], [0.0, -1.0, 1.0]]))
    B = R.copy()
    B.data[:] = 1.0
    whole = _shrunk_cosine(R, B, 1.0, block=8)
    np.testing.assert_allclose(_shrunk_cosine(R, B, 1.0, block=1), whole, rtol=1e-6)
    # rows 0 and 1 share column 0 only: cos = 2 / (sqrt 5 · sqrt 5), shrunk by 1 / (1 + 1)
    assert whole[0, 1] == pytest.approx(0.4 * 0.5, rel=1e-6)
    assert whole[0, 0] == 0.0
    top = _top_k(whole, 1).toarray()
    assert (np.count_nonzero(top, axis=1) == 1).all()
    assert top[2].argmax() == 0 and top[2, 0] == pytest.approx(whole[2, 0])
