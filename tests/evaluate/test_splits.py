"""Splits: the documented procedures on hand-made data, invariants, determinism, ml-100k sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.evaluate import (
    Split,
    id_order,
    leave_last_out,
    melu_coldstart,
    melu_partitions,
    random_holdout,
    temporal_split,
    validation_folds,
)


def view_of(pairs: list[tuple[str, str]], ts: list[float] | None = None,
            values: list[float] | None = None) -> Interactions:
    """A view from (raw user id, raw item id) events; ids indexed in first-seen order."""
    users = list(dict.fromkeys(u for u, _ in pairs))
    items = list(dict.fromkeys(i for _, i in pairs))
    return Interactions.from_arrays(
        [users.index(u) for u, _ in pairs], [items.index(i) for _, i in pairs],
        timestamps=ts, values=values, user_ids=users, item_ids=items,
    )


def as_sets(split_part: sp.csr_matrix, split: Split) -> dict[str, set[str]]:
    out = {}
    for u in range(split.n_users):
        row = split_part.indices[split_part.indptr[u]:split_part.indptr[u + 1]]
        if row.size:
            out[str(split.user_ids[u])] = {str(split.item_ids[i]) for i in row}
    return out


def test_ascending_raw_id_is_numeric_when_all_ids_are_integers() -> None:
    ids = ["10", "2", "1", "007", "7"]
    assert [ids[k] for k in id_order(ids)] == ["1", "2", "007", "7", "10"]
    mixed = ["10", "2", "b", "a"]
    assert [mixed[k] for k in id_order(mixed)] == ["10", "2", "a", "b"]


# ---------------------------------------------------------------------- P1

# User "2" has items a..j, user "1" items c, d, user "10" item a; listed in a scrambled order
# so that the view's own indices differ from the ascending raw-id order.
P1_EVENTS = ([("2", x) for x in "jihgfedcba"] + [("10", "a"), ("1", "d"), ("1", "c")])


def test_p1_is_exactly_the_documented_procedure() -> None:
    split = random_holdout(view_of(P1_EVENTS))
    assert list(split.user_ids) == ["1", "2", "10"]
    assert list(split.item_ids) == list("abcdefghij")
    # By hand: default_rng(2026) draws permutation(2) = [1, 0] for user "1" (items [c, d]),
    # permutation(10) = [1, 9, 0, 6, 8, 3, 5, 2, 7, 4] for user "2" (items a..j), and
    # permutation(1) = [0] for user "10". Test sizes: max(1, floor(0.2 n)) = 1, 2, 1.
    rng = np.random.default_rng(2026)
    assert rng.permutation(2).tolist() == [1, 0]
    assert rng.permutation(10).tolist() == [1, 9, 0, 6, 8, 3, 5, 2, 7, 4]
    assert as_sets(split.test, split) == {"1": {"d"}, "2": {"b", "j"}, "10": {"a"}}
    assert as_sets(split.train, split) == {"1": {"c"}, "2": set("acdefghi")}
    # Validation, default_rng(2027) on the training pairs: user "1" has [c] → permutation(1);
    # user "2" has [a, c, d, e, f, g, h, i] → permutation(8) = [2, 3, 5, 7, 1, 0, 6, 4], one
    # to validation: item 2 = "d". User "10" has no training pair and draws nothing.
    rng = np.random.default_rng(2027)
    assert rng.permutation(1).tolist() == [0]
    assert rng.permutation(8).tolist() == [2, 3, 5, 7, 1, 0, 6, 4]
    val = split.validation
    assert val is not None
    assert as_sets(val.test, val) == {"1": {"c"}, "2": {"d"}}
    assert as_sets(val.train, val) == {"2": set("acefghi")}


def check_partition(split: Split, all_pairs: sp.csr_matrix) -> None:
    """No test pair in train, and train ∪ test = every pair."""
    assert split.train.multiply(split.test).nnz == 0
    union = (split.train + split.test).tocsr()
    assert union.nnz == all_pairs.nnz
    assert (union != all_pairs).nnz == 0


def random_view(seed: int = 0, n_users: int = 40, n_items: int = 30) -> Interactions:
    rng = np.random.default_rng(seed)
    n = 600
    u = rng.integers(0, n_users, n)
    i = rng.integers(0, n_items, n)
    ts = rng.integers(0, 50, n).astype(float)  # many ties
    return Interactions.from_arrays(u, i, timestamps=ts, n_users=n_users, n_items=n_items)


def test_p1_invariants_and_determinism() -> None:
    view = random_view()
    split = random_holdout(view)
    pairs = (split.train + split.test).tocsr()
    check_partition(split, pairs)
    n_u = np.diff(pairs.indptr)
    expected_test = np.where(n_u > 0, np.maximum(1, np.floor(0.2 * n_u)), 0)
    assert np.array_equal(np.diff(split.test.indptr), expected_test)
    assert pairs.nnz == view.nnz
    again = random_holdout(view)
    assert (again.test != split.test).nnz == 0
    assert (again.validation.test != split.validation.test).nnz == 0
    other = random_holdout(view, seed=7)
    assert (other.test != split.test).nnz > 0
    val = split.validation
    check_partition(val, split.train)


def test_validation_folds_hold_out_a_fraction_of_the_training_pairs() -> None:
    view = random_view(5, n_users=60, n_items=40)
    split = random_holdout(view)
    folds = validation_folds(split, 3, fraction=0.1)
    assert len(folds) == 3
    n_u = np.diff(split.train.indptr)
    for fold in folds:
        # the split's index space, only its training pairs, none of its test pairs
        assert (fold.n_users, fold.n_items) == (split.n_users, split.n_items)
        assert list(fold.user_ids) == list(split.user_ids)
        assert list(fold.item_ids) == list(split.item_ids)
        check_partition(fold, split.train)
        assert fold.test.multiply(split.test).nnz == 0
        expected = np.where(n_u > 0, np.maximum(1, np.floor(0.1 * n_u)), 0)
        assert np.array_equal(np.diff(fold.test.indptr), expected)
        # each pair keeps its time, so that order-reading models can be fit on the fold
        assert fold.has_times
        t, ft = split.times.multiply(split.train > 0).tocsr(), fold.times.tocsr()
        assert (t != ft).nnz == 0
        assert fold.params["of"] == "p1" and fold.params["test_fraction"] == 0.1
    # seeds 2027, 2028, 2029 (the split's validation seed on): different folds, reproducible
    assert [f.params["seed"] for f in folds] == [2027, 2028, 2029]
    assert (folds[0].test != folds[1].test).nnz > 0
    again = validation_folds(split, 1, fraction=0.1, seed=2028)[0]
    assert (again.test != folds[1].test).nnz == 0


def test_validation_folds_at_p1s_fraction_reproduce_its_validation_split() -> None:
    view = random_view(6)
    split = random_holdout(view)
    first = validation_folds(split, 1, fraction=0.2)[0]
    assert (first.train != split.validation.train).nnz == 0
    assert (first.test != split.validation.test).nnz == 0
    # and the next seed is random_holdout's validation split of seed 2028
    second = validation_folds(split, 2, fraction=0.2)[1]
    other = random_holdout(view, validation_seed=2028).validation
    assert (second.test != other.test).nnz == 0


def test_validation_folds_refuse_bad_arguments() -> None:
    split = random_holdout(random_view(7))
    for n in (0, -1, 1.5, True):
        with pytest.raises(InvalidInput, match="'n' parameter"):
            validation_folds(split, n)  # type: ignore[arg-type]
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(InvalidInput, match="'fraction' parameter"):
            validation_folds(split, 2, fraction=fraction)


def test_p1_universe_all_keeps_users_and_items_without_events() -> None:
    view = Interactions.from_arrays([0, 0, 2], [0, 1, 1], n_users=4, n_items=3)
    assert random_holdout(view).n_users == 2
    split = random_holdout(view, universe="all")
    assert (split.n_users, split.n_items) == (4, 3)
    with pytest.raises(InvalidInput, match="universe"):
        random_holdout(view, universe="some")


# ---------------------------------------------------------------------- P2


def test_p2_takes_the_last_by_time_with_ties_by_raw_item_id() -> None:
    events = [
        ("u1", "x", 5.0), ("u1", "y", 3.0), ("u1", "z", 5.0), ("u1", "w", 1.0),
        ("u2", "y", 2.0), ("u2", "x", 1.0),  # two pairs: test, no validation
        ("u3", "z", 9.0),  # one pair: train only
    ]
    view = view_of([(u, i) for u, i, _ in events], ts=[t for *_, t in events])
    split = leave_last_out(view)
    # u1 by (time, item): w(1), y(3), x(5), z(5): z is last (x < z), x second last.
    assert as_sets(split.test, split) == {"u1": {"z"}, "u2": {"y"}}
    assert as_sets(split.train, split) == {"u1": {"w", "y", "x"}, "u2": {"x"}, "u3": {"z"}}
    val = split.validation
    assert as_sets(val.test, val) == {"u1": {"x"}}
    assert as_sets(val.train, val) == {"u1": {"w", "y"}, "u2": {"x"}, "u3": {"z"}}
    # The refit split excludes everything the user interacted with except the test item.
    assert split.exclude is split.train


def test_p2_ties_use_numeric_raw_item_ids_and_a_pairs_first_time() -> None:
    # "10" and "9" at the same time: numerically 9 < 10, so "10" is last. "5" was seen at
    # time 1 and again at time 7: its time is its first event, so it is not the last.
    events = [("1", "10", 4.0), ("1", "9", 4.0), ("1", "5", 1.0), ("1", "3", 2.0),
              ("1", "5", 7.0)]
    view = view_of([(u, i) for u, i, _ in events], ts=[t for *_, t in events])
    split = leave_last_out(view)
    assert as_sets(split.test, split) == {"1": {"10"}}
    assert as_sets(split.validation.test, split.validation) == {"1": {"9"}}


def test_p2_invariants() -> None:
    view = random_view(1)
    split = leave_last_out(view)
    pairs = (split.train + split.test).tocsr()
    check_partition(split, pairs)
    n_u = np.diff(pairs.indptr)
    assert np.array_equal(np.diff(split.test.indptr), (n_u >= 2).astype(int))
    val = split.validation
    check_partition(val, split.train)
    assert np.array_equal(np.diff(val.test.indptr), (n_u >= 3).astype(int))
    assert val.train.multiply(split.test).nnz == 0


# ---------------------------------------------------------------------- temporal


def test_temporal_split_by_hand() -> None:
    events = [("a", "i1", 1.0), ("a", "i2", 2.0), ("b", "i1", 3.0), ("b", "i3", 4.0),
              ("a", "i3", 5.0), ("c", "i2", 6.0), ("a", "i4", 7.0)]
    view = view_of([(u, i) for u, i, _ in events], ts=[t for *_, t in events])
    split = temporal_split(view, cutoff=5.0, validation=False)
    assert as_sets(split.train, split) == {"a": {"i1", "i2"}, "b": {"i1", "i3"}}
    # at or after 5: (a, i3) kept; (c, i2) dropped (c has no training pair); (a, i4) dropped
    # (i4 has none).
    assert as_sets(split.test, split) == {"a": {"i3"}}
    assert split.params["n_dropped"] == 2
    loose = temporal_split(view, cutoff=5.0, known_users_only=False, known_items_only=False)
    assert as_sets(loose.test, loose) == {"a": {"i3", "i4"}, "c": {"i2"}}
    check_partition(loose, (loose.train + loose.test).tocsr())
    # Default cutoff: the 80th percentile of the 7 times with method "lower" = 5.0.
    assert temporal_split(view).params["cutoff"] == 5.0
    no_time = view_of([("a", "i1")])
    with pytest.raises(InvalidInput, match="timestamps"):
        temporal_split(no_time)


# ---------------------------------------------------------------------- MeLU cold start


def melu_like() -> tuple[Interactions, np.ndarray]:
    # new users n1, n2 × old movies o1, o2 (user_cold); warm users w1, w2 × new movies x1, x2
    # (item_cold); new users × new movies x2, x3 (user_and_item_cold).
    rows = [
        ("n1", "o1", "user_cold_state"), ("n2", "o2", "user_cold_state"),
        ("n1", "o2", "user_cold_state"),
        ("w1", "x1", "item_cold_state"), ("w2", "x2", "item_cold_state"),
        ("w1", "x2", "item_cold_state"),
        ("n1", "x2", "user_and_item_cold_state"), ("n2", "x3", "user_and_item_cold_state"),
    ]
    view = view_of([(u, i) for u, i, _ in rows], values=[4.0] * len(rows))
    return view, np.array([p for *_, p in rows], dtype=object)


def test_melu_coldstart_new_users() -> None:
    view, parts = melu_like()
    split = melu_coldstart(view, parts, "new_users")
    assert as_sets(split.test, split) == {"n1": {"o1", "o2"}, "n2": {"o2"}}
    # Every pair of a test user is gone from train, so only item_cold remains.
    assert as_sets(split.train, split) == {"w1": {"x1", "x2"}, "w2": {"x2"}}
    assert split.candidates is None


def test_melu_coldstart_new_items_and_both() -> None:
    view, parts = melu_like()
    split = melu_coldstart(view, parts, "item_cold_state")
    assert split.name == "melu-new_items"
    assert as_sets(split.test, split) == {"w1": {"x1", "x2"}, "w2": {"x2"}}
    assert as_sets(split.train, split) == {"n1": {"o1", "o2"}, "n2": {"o2", "x3"}}
    assert [str(split.item_ids[i]) for i in np.flatnonzero(split.candidates)] == ["x1", "x2"]
    both = melu_coldstart(view, parts, "new_users_items")
    assert as_sets(both.test, both) == {"n1": {"x2"}, "n2": {"x3"}}
    assert as_sets(both.train, both) == {"w1": {"x1"}}
    with pytest.raises(InvalidInput, match="new_users"):
        melu_coldstart(view, parts, "warm_state")
    with pytest.raises(InvalidInput, match="one entry per event"):
        melu_coldstart(view, parts[:3], "new_users")


# ---------------------------------------------------------------------- shared data


@pytest.mark.shared_data
def test_p1_and_p2_on_ml100k_from_a_store(shared_data: Path, tmp_path: Path) -> None:
    from personae.data.importers import import_movielens
    from personae.store import Store

    with Store(f"sqlite:///{tmp_path / 'ml100k.db'}") as store:
        import_movielens(store, shared_data / "ml-100k")
        view = Interactions.from_store(store)
    p1 = random_holdout(view)
    assert (p1.n_users, p1.n_items) == (943, 1682)
    assert p1.user_ids[0] == "1" and p1.user_ids[-1] == "943" and p1.item_ids[9] == "10"
    n_u = np.diff((p1.train + p1.test).tocsr().indptr)
    assert n_u.sum() == 100_000
    assert p1.test.nnz == int(np.maximum(1, n_u // 5).sum())
    check_partition(p1, (p1.train + p1.test).tocsr())
    p2 = leave_last_out(view)
    assert p2.test.nnz == 943 and p2.validation.test.nnz == 943
    assert p2.train.nnz == 100_000 - 943
    assert p1.ratings is not None and set(np.unique(p1.ratings.data)) == {1, 2, 3, 4, 5}


def test_melu_partitions_line_up_with_the_store(tmp_path: Path) -> None:
    # A two-partition MeLU folder written here: events of a store and their partitions align.
    folder = tmp_path / "melu"
    folder.mkdir()
    (folder / "user_cold_state.json").write_text('{"1": ["10", "20"], "2": ["10"]}')
    (folder / "user_cold_state_y.json").write_text('{"1": [5, 3], "2": [4]}')
    (folder / "item_cold_state.json").write_text('{"3": ["30"]}')
    (folder / "item_cold_state_y.json").write_text('{"3": [2]}')
    from personae.data.importers import import_melu
    from personae.store import Store

    with Store(f"sqlite:///{tmp_path / 'm.db'}") as store:
        import_melu(store, folder)
        view = Interactions.from_store(store)
        parts = melu_partitions(store)
    split = melu_coldstart(view, parts, "new_users")
    assert as_sets(split.test, split) == {"1": {"10", "20"}, "2": {"10"}}
    assert as_sets(split.train, split) == {"3": {"30"}}


def test_a_splits_train_view_carries_each_pairs_first_time() -> None:
    # u1 took c, a, b (a twice: its time is the first); u2 has one undated pair
    events = [("u1", "a", 20.0), ("u1", "b", 30.0), ("u1", "c", 10.0), ("u1", "a", 40.0),
              ("u2", "a", float("nan")), ("u2", "b", 5.0), ("u2", "c", 6.0)]
    view = view_of([(u, i) for u, i, _ in events], ts=[t for *_, t in events])
    split = random_holdout(view)  # one pair of each user goes to test
    assert split.times is not None and split.has_times
    train = split.train_view()
    assert train.fingerprint() == Interactions.from_arrays(
        *split.train.nonzero(), user_ids=split.user_ids, item_ids=split.item_ids).fingerprint()
    seqs = train.sequences()
    in_train = as_sets(split.train, split)
    order = {"u1": (["c", "a", "b"], [10.0, 20.0, 30.0]),
             "u2": (["a", "b", "c"], [np.nan, 5.0, 6.0])}  # undated first
    for u in range(split.n_users):
        name = str(split.user_ids[u])
        items, times = order[name]
        kept = [k for k, item in enumerate(items) if item in in_train[name]]
        assert len(kept) == 2
        assert [str(split.item_ids[i]) for i in seqs[u]] == [items[k] for k in kept]
        np.testing.assert_array_equal(seqs.ts[seqs.indptr[u]:seqs.indptr[u + 1]],
                                      [times[k] for k in kept])
    # a split of undated events has no times, and its train view none either
    undated = random_holdout(view_of([(u, i) for u, i, _ in events]))
    assert undated.times is None and not undated.has_times
    assert np.isnan(undated.train_view().event_ts).all()


def test_train_view_keeps_only_training_pairs_with_their_times() -> None:
    view = random_view(3)
    split = random_holdout(view)
    train = split.train_view()
    assert (train.matrix != split.train).nnz == 0
    t = split.times.tocoo()
    first = {(int(r), int(c)): v for r, c, v in zip(t.row, t.col, t.data, strict=True)}
    for u, i, ts in zip(train.event_users, train.event_items, train.event_ts, strict=True):
        assert ts == first[(int(u), int(i))]
