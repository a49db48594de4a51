"""Training views: the sparse matrix, id maps and sequences, from a store and from arrays."""

from __future__ import annotations

import numpy as np
import pytest

from personae import Event, InvalidInput, Item, NotFound, Store, User
from personae.data.interactions import Interactions


def _fill(store: Store) -> None:
    store.upsert_items([Item("cold-item", "Never seen")])  # an item without events
    store.upsert_users([User("lurker")])  # a user without events
    store.add_events([
        Event("u1", "a", "view", timestamp=300),
        Event("u1", "a", "purchase", timestamp=310),
        Event("u1", "b", "view", timestamp=100),
        Event("u1", "c", "dislike", timestamp=200),
        Event("u2", "b", "rating", 4, timestamp=50),
        Event("u2", "c", "view"),  # undated: sorts first
        Event("u2", "b", "rating", 2, timestamp=60),
    ])


def test_from_store_matrix_and_ids(store: Store) -> None:
    _fill(store)
    x = Interactions.from_store(store)
    assert (x.n_users, x.n_items, x.n_events) == (3, 4, 7)
    assert set(x.user_ids) == {"lurker", "u1", "u2"}
    assert set(x.item_ids) == {"cold-item", "a", "b", "c"}
    w = store.event_weights()
    m = x.matrix.toarray()
    u1, u2 = x.user_index("u1"), x.user_index("u2")
    a, b, c = (x.item_index(i) for i in "abc")
    assert m[u1, a] == pytest.approx(w["view"] + w["purchase"])
    assert m[u1, b] == pytest.approx(w["view"])
    assert m[u1, c] == 0  # negative feedback is not a positive
    assert m[u2, b] == pytest.approx(2 * w["rating"])
    assert m[x.user_index("lurker")].sum() == 0
    assert m[:, x.item_index("cold-item")].sum() == 0
    with pytest.raises(NotFound):
        x.user_index("nobody")


def test_aggregations_and_filters(store: Store) -> None:
    _fill(store)
    binary = Interactions.from_store(store, binary=True)
    assert set(binary.matrix.data.tolist()) == {1.0}
    counts = Interactions.from_store(store, aggregate="count")
    u1, a = counts.user_index("u1"), counts.item_index("a")
    assert counts.matrix[u1, a] == 2
    neg = Interactions.from_store(store, keep_nonpositive=True)
    assert neg.matrix[neg.user_index("u1"), neg.item_index("c")] < 0
    only_ratings = Interactions.from_store(store, types=["rating"])
    assert only_ratings.n_events == 2 and only_ratings.nnz == 1
    assert only_ratings.ratings()[only_ratings.user_index("u2"),
                                  only_ratings.item_index("b")] == 2.0  # the last rating
    custom = Interactions.from_store(store, weights={"view": 10.0})
    assert custom.matrix[custom.user_index("u1"), custom.item_index("b")] == 10.0
    with pytest.raises(InvalidInput, match="unknown event type"):
        Interactions.from_store(store, types=["teleport"])


def test_sequences_are_time_ordered(store: Store) -> None:
    _fill(store)
    x = Interactions.from_store(store)
    seq = x.sequences()
    names = lambda u: [x.item_ids[i] for i in seq[x.user_index(u)]]  # noqa: E731
    assert names("u1") == ["b", "a", "a"]  # dislike left out, then by time
    assert names("u2") == ["c", "b", "b"]  # undated first
    assert names("lurker") == []
    all_seq = x.sequences(positive_only=False)
    assert [x.item_ids[i] for i in all_seq[x.user_index("u1")]] == ["b", "c", "a", "a"]
    assert seq.lengths().sum() == 6


def test_view_after_forget_has_no_gaps(store: Store) -> None:
    _fill(store)
    store.forget_user("u1")
    x = Interactions.from_store(store)
    assert "u1" not in set(x.user_ids)
    assert x.matrix.shape == (2, 4) and x.n_events == 3


def test_from_arrays_last_and_max() -> None:
    x = Interactions.from_arrays([0, 0, 1, 0], [1, 1, 0, 2], weights=[5, 2, 1, -1],
                                 aggregate="last")
    assert x.matrix.toarray().tolist() == [[0, 2, 0], [1, 0, 0]]
    y = Interactions.from_arrays([0, 0, 1], [1, 1, 0], weights=[5, 2, 1], aggregate="max")
    assert y.matrix[0, 1] == 5
    with pytest.raises(InvalidInput, match="aggregate"):
        Interactions.from_arrays([0], [0], aggregate="mean")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="equal length"):
        Interactions.from_arrays([0, 1], [0])
    with pytest.raises(InvalidInput, match="out of range"):
        Interactions.from_arrays([0, 3], [0, 0], user_ids=["a", "b"])


def test_fingerprint_tracks_content() -> None:
    a = Interactions.from_arrays([0, 1], [1, 0])
    b = Interactions.from_arrays([0, 1], [1, 0])
    c = Interactions.from_arrays([0, 1], [0, 0])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_same_view_on_both_backends_for_random_log(store: Store) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    users, items = rng.integers(0, 50, n), rng.integers(0, 80, n)
    types = rng.choice(["view", "click", "purchase", "skip"], n)
    store.add_events(Event(f"u{u}", f"i{i}", t, timestamp=1e9 + k)
                     for k, (u, i, t) in enumerate(zip(users, items, types, strict=True)))
    x = Interactions.from_store(store)
    w = store.event_weights()
    expected = np.zeros((50, 80))
    for u, i, t in zip(users, items, types, strict=True):
        expected[u, i] += w[t]
    expected[expected <= 0] = 0
    rows = [x.user_index(f"u{u}") for u in range(50)]
    cols = [x.item_index(f"i{i}") for i in range(80)]
    np.testing.assert_allclose(x.matrix.toarray()[np.ix_(rows, cols)], expected, rtol=1e-6)


def test_ratings_of_a_view_without_values_is_empty() -> None:
    """Regression: "last" aggregation of no events raised IndexError."""
    view = Interactions.from_arrays([0, 1, 1], [2, 0, 1], n_users=3, n_items=4)
    R = view.ratings()
    assert R.shape == (3, 4) and R.nnz == 0
    rated = Interactions.from_arrays([0, 0], [1, 1], values=[2.0, 5.0], n_users=1, n_items=2)
    assert rated.ratings()[0, 1] == 5.0  # the last value of the pair


def test_adjacency_counts_items_close_in_time(store: Store) -> None:
    store.add_events([
        Event("u1", "a", "view", timestamp=10),
        Event("u1", "c", "view", timestamp=30),
        Event("u1", "b", "view", timestamp=20),
        Event("u1", "a", "view", timestamp=40),  # a repeat keeps a's first place
        Event("u1", "d", "dislike", timestamp=25),  # not a positive pair: left out
        Event("u2", "c", "view", timestamp=5),
        Event("u2", "b", "view", timestamp=6),
        Event("u2", "d", "view"),  # undated: first
    ])
    x = Interactions.from_store(store)
    ix = {name: x.item_index(name) for name in "abcd"}

    def cells(window: int) -> dict[tuple[str, str], float]:
        A = x.adjacency(window).toarray()
        assert np.array_equal(A, A.T) and not np.diag(A).any()
        return {(p, q): float(A[ix[p], ix[q]]) for p in "abcd" for q in "abcd"
                if p < q and A[ix[p], ix[q]]}

    # u1: a b c ; u2: d c b
    assert cells(1) == {("a", "b"): 1.0, ("b", "c"): 2.0, ("c", "d"): 1.0}
    assert cells(2) == {("a", "b"): 1.0, ("b", "c"): 2.0, ("c", "d"): 1.0, ("a", "c"): 1.0,
                        ("b", "d"): 1.0}
    # a window as long as the longest history is the co-occurrence count off the diagonal
    X = (x.matrix > 0).astype(np.float32)
    G = (X.T @ X).toarray()
    np.fill_diagonal(G, 0)
    np.testing.assert_array_equal(x.adjacency(3).toarray(), G)


def test_adjacency_refuses_bad_windows_and_undated_views() -> None:
    dated = Interactions.from_arrays([0, 0], [0, 1], timestamps=[1.0, 2.0])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidInput, match="'window'"):
            dated.adjacency(bad)  # type: ignore[arg-type]
    undated = Interactions.from_arrays([0, 0], [0, 1])
    assert dated.has_times and not undated.has_times
    with pytest.raises(InvalidInput, match="no event of this view has a timestamp"):
        undated.adjacency(2)
