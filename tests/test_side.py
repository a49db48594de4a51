"""Side features: item/user/context encodings, re-indexing by id, and split views with time."""

from __future__ import annotations

import numpy as np
import pytest

from personae.data.interactions import Interactions
from personae.data.side import SideFeatures, split_interactions
from personae.errors import InvalidInput
from personae.evaluate import leave_last_out

ITEMS = {
    "a": {"categories": ["drama", "war"], "attributes": {"lang": "fr", "year": 2000}},
    "b": {"categories": ["comedy"], "attributes": {"lang": "en", "year": 2010}},
    "c": {"categories": [], "attributes": {}},
}
USERS = {"u1": {"attributes": {"age": 23, "gender": "F"}},
         "u2": {"attributes": {"age": 61}}}


def side() -> SideFeatures:
    return SideFeatures.from_records(
        user_ids=["u1", "u2", "u3"], item_ids=["a", "b", "c"], items=ITEMS, users=USERS,
        item_attributes=["lang"], numeric_attributes=["year"],
        user_attributes=["age", "gender"], user_bins={"age": [18, 25, 35, 45, 50, 56]},
        item_text=np.eye(3, 2, dtype=np.float32))


def test_item_features() -> None:
    s = side()
    assert s.category_names == ("comedy", "drama", "war")
    np.testing.assert_array_equal(s.item_categories.toarray(),
                                  [[0, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert s.item_vocab == (("en", "fr"),)
    np.testing.assert_array_equal(s.item_codes[:, 0], [1, 0, -1])
    # standardised over known values (2000, 2010) -> -1, +1; missing -> 0
    np.testing.assert_allclose(s.item_numeric[:, 0], [-1.0, 1.0, 0.0])
    assert s.item_text is not None and s.item_text.shape == (3, 2)


def test_user_features_bin_numbers() -> None:
    s = side()
    assert s.user_fields == ("age", "gender")
    assert s.user_vocab[0] == ("18-24", "56+")
    np.testing.assert_array_equal(s.user_codes, [[0, 0], [1, -1], [-1, -1]])


def test_event_context_and_request_context() -> None:
    # 1970-01-05 was a Monday; 08:00 UTC is morning, 20:00 evening
    ts = np.array([4 * 86400 + 8 * 3600, 4 * 86400 + 20 * 3600, np.nan])
    view = Interactions.from_arrays([0, 1, 2], [0, 1, 2], timestamps=ts,
                                    user_ids=["u1", "u2", "u3"], item_ids=["a", "b", "c"])
    s = side().with_event_context(view, [{"device": "tv"}, {}, {"device": "phone"}],
                                  context_keys=["device"])
    assert s.context_fields == ("daypart", "weekpart", "device")
    assert s.event_codes is not None
    np.testing.assert_array_equal(s.event_codes[:, 0], [1, 3, -1])  # morning, evening, ?
    np.testing.assert_array_equal(s.event_codes[:, 1], [0, 0, -1])  # weekday
    assert s.context_vocab[2] == ("phone", "tv")
    np.testing.assert_array_equal(s.event_codes[:, 2], [1, -1, 0])
    np.testing.assert_array_equal(
        s.encode_context({"ts": 5 * 86400 + 2 * 3600, "device": "tv"}), [0, 0, 1])
    np.testing.assert_array_equal(s.encode_context({"device": "radio"}), [-1, -1, -1])
    with pytest.raises(InvalidInput, match="one mapping per event"):
        s.with_event_context(view, [{}], context_keys=["device"])


def test_align_reindexes_by_id() -> None:
    s = side()
    t = s.align(["u3", "u1"], ["c", "zzz", "a"], own_user_ids=["u1", "u2", "u3"],
                own_item_ids=["a", "b", "c"])
    assert (t.n_users, t.n_items) == (2, 3)
    np.testing.assert_array_equal(t.item_categories.toarray(),
                                  [[0, 0, 0], [0, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(t.item_codes[:, 0], [-1, -1, 1])
    np.testing.assert_array_equal(t.user_codes, [[-1, -1], [0, 0]])
    assert t.item_text is not None
    np.testing.assert_array_equal(t.item_text, [[0, 0], [0, 0], [1, 0]])


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="item_text"):
        SideFeatures.from_records(user_ids=["u"], item_ids=["a", "b"],
                                  item_text=np.zeros((3, 2)))


def test_split_interactions_keeps_the_split_order() -> None:
    """The split's train pairs with times; sequences end with the validation item."""
    # user 0: items 5, 3, 9 at t=1, 2, 3 (then 7 at t=4 is the test item); a repeat of 3 later
    users = [0, 0, 0, 0, 0, 1, 1, 1]
    items = [5, 3, 9, 7, 3, 1, 2, 3]
    ts = [1.0, 2.0, 3.0, 4.0, 9.0, 1.0, 1.0, 2.0]
    view = Interactions.from_arrays(users, items, timestamps=ts)
    split = leave_last_out(view)
    tv = split_interactions(view, split)
    assert (tv.matrix != split.train).nnz == 0
    col = {str(k): n for n, k in enumerate(split.item_ids)}
    seq = tv.sequences()
    u0 = list(split.user_ids).index("0")
    assert list(seq[u0]) == [col["5"], col["3"], col["9"]]  # 9 is the validation item
    val = split_interactions(view, split, "validation")
    assert list(val.sequences()[u0]) == [col["5"], col["3"]]
    u1 = list(split.user_ids).index("1")
    # same time: ordered by raw item id, as the split orders them
    assert list(seq[u1]) == [col["1"], col["2"]]


def test_store_records_are_read_like_dicts() -> None:
    from personae.store.records import Item, User

    items = {"a": Item("a", "A", None, ["drama"], {"lang": "fr"})}
    users = {"u1": User("u1", {"gender": "F"})}
    s = SideFeatures.from_records(user_ids=["u1"], item_ids=["a"], items=items, users=users,
                                  item_attributes=["lang"], user_attributes=["gender"])
    assert s.category_names == ("drama",)
    assert s.item_vocab == (("fr",),) and s.user_vocab == (("F",),)
