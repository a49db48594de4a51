"""Attribute groups: key=value indicators, list values, transforms, min_count, store alignment."""

from __future__ import annotations

import numpy as np

from personae.data.attribute_groups import (
    bucket,
    feature_matrix,
    item_attribute_groups,
    prefix,
    strip_parentheses,
    user_attribute_groups,
)
from personae.data.interactions import Interactions
from personae.store import Item, Store, User


def test_feature_matrix_lists_transforms_and_min_count():
    records = [
        {"actors": ["A", "B"], "year": 1997, "writer": ["W (novel)"]},
        {"actors": ["B"], "year": 1995, "writer": ["W (screenplay)", "V"]},
        None,
    ]
    m, names = feature_matrix(records, ["actors", "year", "writer"],
                              transforms={"year": bucket(5), "writer": strip_parentheses})
    assert names == ("actors=A", "actors=B", "writer=V", "writer=W", "year=1995")
    np.testing.assert_array_equal(m.toarray(), [[1, 1, 0, 1, 1], [0, 1, 1, 1, 1],
                                                [0, 0, 0, 0, 0]])
    m2, names2 = feature_matrix(records, ["actors", "writer"], min_count=2,
                                transforms={"writer": strip_parentheses})
    assert names2 == ("actors=B", "writer=W") and m2.shape == (3, 2)
    assert prefix(2)("48067") == "48"


def test_groups_from_a_store_follow_the_views_rows(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        store.upsert_users([User("u1", {"gender": "F", "zip": "48067"}),
                            User("u2", {"gender": "M"})])
        store.upsert_items([Item("i1", categories=["Comedy"], attributes={"director": ["D1"]}),
                            Item("i2", categories=["Comedy", "Drama"],
                                 attributes={"director": ["D1"]})])
        view = Interactions.from_store(store)
        users = user_attribute_groups(store, view, ["gender", "zip"])
        items = item_attribute_groups(store, view, ["categories", "director"])
    finally:
        store.close()
    g = users["gender"].toarray()
    assert g[view.user_index("u1")].tolist() == [1, 0]
    assert g[view.user_index("u2")].tolist() == [0, 1]
    assert users["zip"].shape == (2, 1)  # "48" (first two digits), u2 has none
    assert items["categories"].shape == (2, 1)  # Drama occurs once: dropped by min_count=2
    assert items["director"].toarray().ravel().tolist() == [1, 1]
