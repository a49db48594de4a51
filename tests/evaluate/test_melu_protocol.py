"""The MeLU paper's protocol: task filter, seeded support/query split, no leak, nDCG by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.evaluate.melu_protocol import (
    MELU_PUBLISHED,
    evaluate_melu,
    melu_protocol,
    query_ndcg,
    ranking_tasks,
    score_tasks,
    support_mean_scores,
)

# raw user id → (partition, number of rated items); ids chosen so that string order differs
# from numeric order ("100" < "12" < "9" as strings)
USERS = {
    "9": ("user_cold_state", 13),     # smallest task
    "12": ("user_cold_state", 12),    # one too few: not a task
    "100": ("user_cold_state", 100),  # largest task
    "101": ("user_cold_state", 101),  # one too many: not a task
    "30": ("user_cold_state", 40),
    "7": ("item_cold_state", 25),
}
N_ITEMS = 120


def tiny() -> tuple[Interactions, np.ndarray, dict[tuple[str, str], float]]:
    """A hand-made data set: (view, partition of each event, {(user id, item id): rating})."""
    rng = np.random.default_rng(0)
    user_ids = sorted(USERS, key=str)  # row order deliberately not numeric
    item_ids = [f"m{k}" for k in range(N_ITEMS)]
    users, items, values, parts = [], [], [], []
    truth = {}
    for u, (part, n) in USERS.items():
        chosen = rng.choice(N_ITEMS, n, replace=False)
        for i in chosen:
            r = float(rng.integers(1, 6))
            users.append(user_ids.index(u))
            items.append(int(i))
            values.append(r)
            parts.append(part)
            truth[(u, item_ids[i])] = r
    view = Interactions.from_arrays(users, items, values=values, user_ids=user_ids,
                                    item_ids=item_ids)
    return view, np.array(parts, dtype=object), truth


def test_tasks_are_the_users_with_13_to_100_ratings_in_ascending_id():
    view, parts, _ = tiny()
    p = melu_protocol(view, parts)
    ucs = p.tasks["user_cold_state"]
    assert [p.user_ids[u] for u in ucs.users] == ["9", "30", "100"]  # numeric order
    assert [p.user_ids[u] for u in p.tasks["item_cold_state"].users] == ["7"]
    assert list(np.diff(ucs.support_indptr)) == [3, 30, 90]
    assert ucs.query_items.size == 30 and ucs.query_size == 10


def test_split_is_the_seeded_shuffle_with_the_last_ten_as_query():
    view, parts, truth = tiny()
    p = melu_protocol(view, parts)
    ucs = p.tasks["user_cold_state"]
    rng = np.random.default_rng(2026)  # one generator per partition, users ascending
    for t, uid in enumerate(["9", "30", "100"]):
        # items in ascending raw id: string order, as the ids are not all integers
        mine = sorted(k[1] for k in truth if k[0] == uid)
        order = [mine[j] for j in rng.permutation(len(mine))]
        s_items, s_ratings = ucs.support(t)
        q_items, q_ratings = ucs.query(t)
        assert [p.item_ids[i] for i in q_items] == order[-10:]
        assert [p.item_ids[i] for i in s_items] == order[:-10]
        assert list(q_ratings) == [truth[(uid, i)] for i in order[-10:]]
        assert list(s_ratings) == [truth[(uid, i)] for i in order[:-10]]
    again = melu_protocol(view, parts)
    np.testing.assert_array_equal(again.tasks["user_cold_state"].query_items, ucs.query_items)
    other = melu_protocol(view, parts, seed=7)
    assert not np.array_equal(other.tasks["user_cold_state"].query_items, ucs.query_items)


def test_no_query_rating_reaches_training_and_nothing_else_is_lost():
    view, parts, truth = tiny()
    p = melu_protocol(view, parts)
    train = {(p.user_ids[u], p.item_ids[i]): r
             for u, i, r in zip(p.train_users, p.train_items, p.train_ratings, strict=True)}
    query = set()
    for t in p.tasks.values():
        query |= {(p.user_ids[u], p.item_ids[i])
                  for u, i in zip(t.query_users(), t.query_items, strict=True)}
        for u, i in zip(t.support_users(), t.support_items, strict=True):
            assert (p.user_ids[u], p.item_ids[i]) in train  # support sets are trainable
    assert len(query) == 40
    assert not query & set(train)
    assert set(train) | query == set(truth)
    assert all(train[k] == truth[k] for k in train)
    # users outside the filter keep every rating in training
    assert sum(k[0] == "101" for k in train) == 101 and sum(k[0] == "12" for k in train) == 12
    tv = p.train_view()
    assert tv.nnz == len(train) and not np.isnan(tv.event_values).any()


def test_ndcg_inside_the_query_items_matches_hand_computed_values():
    actual = np.array([[5.0, 3.0, 4.0]])
    predicted = np.array([[1.0, 3.0, 2.0]])  # order: item 1 (r=3), item 2 (r=4), item 0 (r=5)
    l3 = np.log2(3.0)
    assert query_ndcg(predicted, actual, 1)[0] == pytest.approx(7 / 31)
    dcg3 = 7 + 15 / l3 + 31 / 2
    idcg3 = 31 + 15 / l3 + 7 / 2
    assert query_ndcg(predicted, actual, 3)[0] == pytest.approx(dcg3 / idcg3)
    # ties keep query order: a constant prediction ranks the items as given
    flat = np.zeros((1, 3))
    assert query_ndcg(flat, actual, 1)[0] == pytest.approx(1.0)
    assert query_ndcg(flat, actual[:, ::-1], 1)[0] == pytest.approx(15 / 31)
    assert query_ndcg(actual, actual, 3)[0] == pytest.approx(1.0)


def test_mae_is_the_mean_over_tasks_and_an_oracle_scores_perfectly():
    view, parts, truth = tiny()
    p = melu_protocol(view, parts)
    lookup = {(p.user_ids.tolist().index(u), p.item_ids.tolist().index(i)): r
              for (u, i), r in truth.items()}

    def oracle(users, items):
        return np.array([lookup[(int(u), int(i))] for u, i in zip(users, items, strict=True)])

    for s in evaluate_melu(p, oracle).values():
        assert s.mae == 0.0 and s.ndcg1 == pytest.approx(1.0) and s.ndcg3 == pytest.approx(1.0)
    t = p.tasks["user_cold_state"]
    off = np.repeat([0.0, 1.0, 2.0], 10)  # task errors 0, 1, 2
    s = score_tasks(t, t.query_ratings + off)
    np.testing.assert_allclose(s.per_task["mae"], [0.0, 1.0, 2.0])
    assert s.mae == pytest.approx(1.0)
    with pytest.raises(InvalidInput, match="expected 30 predictions"):
        score_tasks(t, np.zeros(29))


def test_support_mean_floor():
    view, parts, _ = tiny()
    p = melu_protocol(view, parts)
    t = p.tasks["user_cold_state"]
    got = support_mean_scores(p)["user_cold_state"]
    want = [np.abs(t.query(k)[1] - t.support(k)[1].mean()).mean() for k in range(t.n_tasks)]
    np.testing.assert_allclose(got.per_task["mae"], want)


def test_ranking_tasks_rank_the_partitions_items():
    view, parts, truth = tiny()
    p = melu_protocol(view, parts)
    rt = ranking_tasks(p, "user_cold_state")
    assert rt.query.shape == (3, N_ITEMS)
    assert list(np.diff(rt.query.indptr)) == [10, 10, 10]
    assert list(np.diff(rt.support.indptr)) == [3, 30, 90]
    ucs_items = {i for (u, i) in truth if USERS[u][0] == "user_cold_state"}
    assert {p.item_ids[i] for i in np.flatnonzero(rt.candidates)} == ucs_items
    ic = ranking_tasks(p, "item_cold_state")
    assert ic.candidates.sum() == 25  # user 7's items only
    with pytest.raises(InvalidInput, match="no partition"):
        ranking_tasks(p, "warm_state")


def test_invalid_parameters_are_refused():
    view, parts, _ = tiny()
    with pytest.raises(InvalidInput, match="must exceed query_size"):
        melu_protocol(view, parts, min_ratings=10)
    with pytest.raises(InvalidInput, match="one entry per event"):
        melu_protocol(view, parts[:-1])
    with pytest.raises(InvalidInput, match="max_ratings"):
        melu_protocol(view, parts, min_ratings=20, max_ratings=15)


def test_real_partitions_and_the_support_mean_floor(shared_data: Path, tmp_path: Path):
    from personae.data.importers import import_melu
    from personae.evaluate.splits import melu_partitions
    from personae.store import Store

    store = Store(f"sqlite:///{tmp_path / 'melu.db'}")
    try:
        import_melu(store, shared_data / "ml-1m-melu-coldstart")
        view = Interactions.from_store(store)
        p = melu_protocol(view, melu_partitions(store))
    finally:
        store.close()
    assert set(p.tasks) == set(MELU_PUBLISHED)
    n_query = sum(t.query_items.size for t in p.tasks.values())
    assert p.train_users.size + n_query == 359_761
    floor = support_mean_scores(p)
    # the floor: MAE ≈ 0.813 / 0.898 / 0.893
    for name, want in (("user_cold_state", 0.813), ("item_cold_state", 0.898),
                       ("user_and_item_cold_state", 0.893)):
        assert floor[name].mae == pytest.approx(want, abs=0.015)
        assert 300 < floor[name].n_tasks < 3000
