"""The store on both backends: idempotent writes, upserts, reads, bad input, privacy."""

from __future__ import annotations

import json
from datetime import UTC

import numpy as np
import pytest
from sqlalchemy import text

from personae import Event, InvalidInput, Item, NotFound, Store, StoreError, User
from personae.store.records import MAX_JSON_CHARS


def test_same_event_id_is_stored_once(store: Store) -> None:
    first = store.add_events([Event("u1", "i1", "click", event_id="e-1")])
    again = store.add_events(
        [Event("u1", "i1", "click", event_id="e-1"), Event("u1", "i2", "view", event_id="e-2")]
    )
    assert (first.inserted, first.duplicates) == (1, 0)
    assert (again.inserted, again.duplicates) == (1, 1)
    assert store.counts()["events"] == 2


def test_repeated_id_within_one_batch_counts_as_duplicate(store: Store) -> None:
    res = store.add_events([Event("u1", "i1", event_id="x"), Event("u1", "i2", event_id="x")])
    assert (res.inserted, res.duplicates) == (1, 1)
    # the first occurrence wins
    assert [e.item_id for e in store.user_events("u1")] == ["i1"]


def test_events_without_id_get_a_content_id(store: Store) -> None:
    ev = Event("u1", "i1", "rating", 4, timestamp=1_700_000_000, context={"device": "tv"})
    store.add_events([ev])
    again = store.add_events([Event("u1", "i1", "rating", 4.0, 1_700_000_000.0,
                                    {"device": "tv"})])
    other = store.add_events([Event("u1", "i1", "rating", 5, 1_700_000_000)])
    assert again.duplicates == 1 and again.inserted == 0
    assert other.inserted == 1
    stored = store.user_events("u1")
    assert stored[0].event_id == ev.event_id and stored[0].event_id.startswith("h")


def test_events_create_bare_users_and_items(store: Store) -> None:
    store.add_events([Event("new-user", "new-item", "view")])
    assert store.get_user("new-user").attributes == {}
    item = store.get_item("new-item")
    assert item.title is None and item.available is True


def test_user_upsert_replaces_attributes_and_keeps_created_at(store: Store) -> None:
    r1 = store.upsert_users([User("u1", {"age": 31, "city": "Lyon"}, created_at=1_600_000_000)])
    r2 = store.upsert_users([User("u1", {"age": 32})])
    assert (r1.inserted, r1.updated) == (1, 0)
    assert (r2.inserted, r2.updated) == (0, 1)
    user = store.get_user("u1")
    assert user.attributes == {"age": 32}
    assert user.created_at == 1_600_000_000
    assert store.counts()["users"] == 1


def test_upsert_of_a_user_first_seen_in_events(store: Store) -> None:
    store.add_events([Event("u1", "i1")])
    res = store.upsert_users([{"user_id": "u1", "attributes": {"gender": "F"}}])
    assert (res.inserted, res.updated) == (0, 1)
    assert store.get_user("u1").attributes == {"gender": "F"}


def test_item_upsert_writes_every_field(store: Store) -> None:
    store.upsert_items([Item("i1", "Heat", "A heist.", ["crime", "drama"], {"year": 1995})])
    res = store.upsert_items([
        Item("i1", "Heat (1995)", None, ["crime"], {"year": 1995}, available=False),
        Item("i2", "Ronin"),
        Item("i2", "Ronin (1998)"),  # the last record of an id in one call wins
    ])
    assert (res.inserted, res.updated, res.duplicates) == (1, 1, 1)
    i1 = store.get_item("i1")
    assert (i1.title, i1.text, i1.categories, i1.available) == ("Heat (1995)", None, ["crime"],
                                                                  False)
    assert store.get_item("i2").title == "Ronin (1998)"
    assert set(store.get_items(["i1", "i2", "nope"])) == {"i1", "i2"}
    assert [i.item_id for i in store.iter_items()] == ["i1", "i2"]


def test_item_availability(store: Store) -> None:
    store.upsert_items([Item("i1")])
    store.set_item_availability("i1", False)
    assert store.get_item("i1").available is False
    with pytest.raises(NotFound, match="'zzz'"):
        store.set_item_availability("zzz", True)


def test_unicode_and_long_text_round_trip(store: Store) -> None:
    plot = "Jean Valjean — évadé du bagne; 鬼; " * 2000
    store.upsert_items([Item("543", "Misérables, Les (1995)", plot, ["Drama"],
                             {"director": ["Claude Lelouch"]})])
    item = store.get_item("543")
    assert item.title == "Misérables, Les (1995)" and item.text == plot
    assert item.attributes == {"director": ["Claude Lelouch"]}


def test_user_events_are_time_ordered_with_context(store: Store) -> None:
    store.add_events([
        Event("u1", "b", "click", timestamp=200, context={"device": "mobile", "rain": True}),
        Event("u1", "a", "view", timestamp=100),
        Event("u1", "c", "purchase", value=9.99, timestamp=300),
        Event("u2", "a", "view", timestamp=50),
    ])
    evs = store.user_events("u1")
    assert [e.item_id for e in evs] == ["a", "b", "c"]
    assert evs[1].context == {"device": "mobile", "rain": True}
    assert evs[2].value == pytest.approx(9.99)
    assert [e.item_id for e in store.user_events("u1", limit=2)] == ["b", "c"]
    with pytest.raises(NotFound):
        store.user_events("nobody")


def test_unknown_ids_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="unknown user_id 'ghost'"):
        store.get_user("ghost")
    with pytest.raises(KeyError):  # NotFound is a KeyError too
        store.get_item("ghost")
    with pytest.raises(NotFound):
        store.forget_user("ghost")
    with pytest.raises(NotFound):
        store.export_user("ghost")


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"user_id": "", "item_id": "i"}, "user_id"),
        ({"user_id": "u", "item_id": None}, "item_id"),
        ({"user_id": "u", "item_id": "i", "type": "Bad Type!"}, "type"),
        ({"user_id": "u", "item_id": "i", "type": "rating"}, "rating"),
        ({"user_id": "u", "item_id": "i", "value": "lots"}, "value"),
        ({"user_id": "u", "item_id": "i", "value": float("nan")}, "value"),
        ({"user_id": "u", "item_id": "i", "timestamp": "yesterday"}, "timestamp"),
        ({"user_id": "u", "item_id": "i", "timestamp": 1_700_000_000_000}, "milliseconds"),
        ({"user_id": "u", "item_id": "i", "context": ["device", "tv"]}, "context"),
        ({"user_id": "u", "item_id": "i", "context": {"big": "x" * (MAX_JSON_CHARS + 1)}},
         "context"),
        ({"user_id": "u", "item_id": "i", "context": {"obj": object()}}, "context"),
        ({"user_id": "u" * 300, "item_id": "i"}, "user_id"),
        ({"user_id": "u", "item_id": "i", "colour": "red"}, "colour"),
    ],
)
def test_bad_event_is_refused_and_nothing_of_the_batch_is_stored(
    store: Store, record: dict, field: str
) -> None:
    store.add_events([Event("kept", "kept-item", event_id="before")])
    with pytest.raises(InvalidInput, match=field):
        store.add_events([{"user_id": "ok", "item_id": "ok", "event_id": "ok-1"}, record])
    assert store.counts() == {"users": 1, "items": 1, "events": 1}
    assert store.user_events("kept")[0].event_id == "before"


def test_writer_rolls_back_everything_on_error(store: Store) -> None:
    store.upsert_users([User("u0", {"a": 1})])
    with pytest.raises(RuntimeError), store.writer() as w:
        w.upsert_users([User("u1")])
        w.upsert_items([Item("i1", "x")])
        w.add_events([Event("u1", "i1")])
        w.upsert_users([User("u0", {"a": 2})])
        raise RuntimeError("boom")
    assert store.counts() == {"users": 1, "items": 0, "events": 0}
    assert store.get_user("u0").attributes == {"a": 1}


def test_bad_item_and_user_fields(store: Store) -> None:
    with pytest.raises(InvalidInput, match="categories"):
        store.upsert_items([{"item_id": "i", "categories": [1, 2]}])
    with pytest.raises(InvalidInput, match="available"):
        store.upsert_items([{"item_id": "i", "available": "yes"}])
    with pytest.raises(InvalidInput, match="attributes"):
        store.upsert_users([{"user_id": "u", "attributes": "age=3"}])
    with pytest.raises(InvalidInput, match="a User or a mapping"):
        store.upsert_users(["u1"])  # type: ignore[list-item]
    assert store.counts() == {"users": 0, "items": 0, "events": 0}


def test_timestamps_accept_iso_and_datetime(store: Store) -> None:
    from datetime import datetime

    store.add_events([
        Event("u", "a", timestamp="2024-05-01T18:30:00Z"),
        Event("u", "b", timestamp=datetime(2024, 5, 1, 20, 30, tzinfo=UTC)),
        Event("u", "c", timestamp="1714600000"),
    ])
    ts = [e.timestamp for e in store.user_events("u")]
    assert ts == [1714588200.0, 1714595400.0, 1714600000.0]


# ---------------------------------------------------------------------- event types


def test_event_weights_are_configurable_and_custom_types_allowed(store: Store) -> None:
    store.add_events([Event("u", "i", "wishlist")])
    weights = store.event_weights()
    assert weights["purchase"] > weights["view"] > 0 > weights["dislike"]
    assert weights["wishlist"] == 1.0
    store.set_event_weights({"wishlist": 2.5, "view": 0.5, "share": 3})
    w2 = store.event_weights()
    assert (w2["wishlist"], w2["view"], w2["share"]) == (2.5, 0.5, 3.0)
    with pytest.raises(InvalidInput, match="weight"):
        store.set_event_weights({"view": "high"})  # type: ignore[dict-item]


# ---------------------------------------------------------------------- forget / export


def _populate(store: Store) -> None:
    store.upsert_users([User("alice", {"age": 30}), User("bob", {"age": 40})])
    store.upsert_items([Item("i1", "One"), Item("i2", "Two")])
    store.add_events([
        Event("alice", "i1", "view", timestamp=100, context={"device": "mobile"}),
        Event("alice", "i2", "rating", 5, timestamp=200),
        Event("bob", "i1", "click", timestamp=150),
    ])


def test_export_user_is_json_with_everything(store: Store) -> None:
    _populate(store)
    data = json.loads(json.dumps(store.export_user("alice")))
    assert data["user_id"] == "alice" and data["attributes"] == {"age": 30}
    assert [(e["item_id"], e["type"], e["value"]) for e in data["events"]] == [
        ("i1", "view", None), ("i2", "rating", 5.0)]
    assert data["events"][0]["context"] == {"device": "mobile"}


def test_forget_user_removes_every_row_and_stays_gone(store: Store) -> None:
    _populate(store)
    report = store.forget_user("alice")
    assert report == {"users": 1, "events": 2, "recommendations": 0, "model_versions": 0}
    with pytest.raises(NotFound):
        store.get_user("alice")
    with store.engine.connect() as conn:
        sql = "SELECT count(*) FROM users WHERE user_id = 'alice'"
        assert conn.execute(text(sql)).scalar() == 0
        # no orphaned events: every event belongs to an existing user
        assert conn.execute(text(
            "SELECT count(*) FROM events e LEFT JOIN users u ON u.user_idx = e.user_idx "
            "WHERE u.user_idx IS NULL")).scalar() == 0
    assert store.counts()["events"] == 1  # bob's
    assert store.is_forgotten("alice") and not store.is_forgotten("bob")
    # Re-importing data (other users' and an old dump that still holds alice) does not bring
    # her back.
    res = store.add_events([Event("alice", "i1", "view", timestamp=100,
                                  context={"device": "mobile"}),
                            Event("carol", "i2", "view")])
    users = store.upsert_users([User("alice", {"age": 30}), User("dave")])
    assert (res.inserted, res.skipped) == (1, 1)
    assert (users.inserted, users.skipped) == (1, 1)
    with pytest.raises(NotFound):
        store.get_user("alice")
    # The tombstone is a keyed hash, not the id.
    with store.engine.connect() as conn:
        hashes = conn.execute(text("SELECT id_hash FROM forgotten_users")).scalars().all()
    assert len(hashes) == 1 and "alice" not in hashes[0]
    # She may come back if she asks to.
    assert store.unforget_user("alice") is True
    assert store.add_events([Event("alice", "i2")]).inserted == 1


def test_forget_survives_reopening(make_store) -> None:  # type: ignore[no-untyped-def]
    s1 = make_store()
    _populate(s1)
    s1.forget_user("bob")
    s1.close()
    s2 = make_store()
    assert s2.add_events([Event("bob", "i1", "click", timestamp=999)]).skipped == 1
    assert s2.counts()["users"] == 1


# ---------------------------------------------------------------------- pseudonyms

KEY = "0123456789abcdef-secret-key"


def test_pseudonymised_ids_never_reach_the_database(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store(pseudonymize_key=KEY)
    store.upsert_users([User("alice@example.com", {"age": 30})])
    store.add_events([Event("alice@example.com", "i1", "click")])
    assert store.get_user("alice@example.com").attributes == {"age": 30}
    assert store.user_events("alice@example.com")[0].item_id == "i1"
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT user_id FROM users")).scalars().all()
        dump = " ".join(map(str, conn.execute(text("SELECT * FROM users")).all()))
    assert stored == [store.stored_user_id("alice@example.com")]
    assert stored[0].startswith("p") and len(stored[0]) == 41
    assert "alice" not in dump
    exported = store.export_user("alice@example.com")
    assert exported["user_id"] == "alice@example.com" and exported["stored_user_id"] == stored[0]
    assert store.forget_user("alice@example.com") == {"users": 1, "events": 1,
                                                     "recommendations": 0, "model_versions": 0}


def test_pseudonym_key_is_checked(make_store) -> None:  # type: ignore[no-untyped-def]
    make_store(pseudonymize_key=KEY).close()
    with pytest.raises(StoreError, match="open it with its key"):
        make_store()
    with pytest.raises(StoreError, match="does not match"):
        make_store(pseudonymize_key="another-key-that-is-long-enough")
    assert make_store(pseudonymize_key=KEY).pseudonymized


def test_key_cannot_be_added_to_a_plain_store(make_store) -> None:  # type: ignore[no-untyped-def]
    make_store().close()
    with pytest.raises(StoreError, match="without pseudonymised ids"):
        make_store(pseudonymize_key=KEY)


def test_short_pseudonym_key_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="at least 16 bytes"):
        Store(tmp_path / "s.db", pseudonymize_key="short")


# ---------------------------------------------------------------------- opening and stats


def test_reopening_keeps_data(make_store) -> None:  # type: ignore[no-untyped-def]
    s = make_store()
    _populate(s)
    s.close()
    assert make_store().counts() == {"users": 2, "items": 2, "events": 3}


def test_stats(store: Store) -> None:
    _populate(store)
    st = store.stats()
    assert (st.n_users, st.n_items, st.n_events, st.n_pairs) == (2, 2, 3, 3)
    assert st.events_per_type == {"view": 1, "rating": 1, "click": 1}
    assert (st.first_ts, st.last_ts) == (100, 200)
    assert st.top_items[0] == ("i1", "One", 2)
    assert st.density == pytest.approx(3 / 4)
    assert dict(st.histogram) == {"1": 1, "2–4": 1}
    assert st.to_dict()["sparsity"] == pytest.approx(0.25)


def test_empty_store_stats(store: Store) -> None:
    st = store.stats()
    assert st.n_events == 0 and st.histogram == [] and st.density == 0.0
    assert len(store.event_log()) == 0


def test_sqlite_default_location_and_wal(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PERSONAE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PERSONAE_STORE", raising=False)
    with Store() as s:
        assert s.url.endswith("home/personae.db")
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with Store(tmp_path / "dir") as s:
        assert s.url.endswith("dir/personae.db")
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "missing.db", create=False)
    with pytest.raises(StoreError, match="unsupported store backend"):
        Store("mysql://localhost/x")


def test_event_log_arrays(store: Store) -> None:
    _populate(store)
    log = store.event_log()
    assert len(log) == 3
    names = [log.type_names[t] for t in log.type_idx]
    assert names == ["view", "rating", "click"]
    assert np.isnan(log.value[0]) and log.value[1] == 5.0
    assert log.ts.tolist() == [100.0, 200.0, 150.0]
    uidx, uids = store.user_index()
    assert [uids[list(uidx).index(u)] for u in log.user_idx] == ["alice", "alice", "bob"]


def test_contexts_that_compare_equal_keep_their_types(store: Store) -> None:
    # Regression: the writer memoises context JSON; True == 1 == 1.0 must not share an entry.
    store.add_events([
        Event("u", "a", context={"flag": True}, timestamp=1),
        Event("u", "b", context={"flag": 1}, timestamp=2),
        Event("u", "c", context={"flag": 1.5}, timestamp=3),
        Event("u", "d", context={"flag": "1"}, timestamp=4),
    ])
    got = [e.context["flag"] for e in store.user_events("u")]
    assert got == [True, 1, 1.5, "1"]
    assert [type(v) for v in got] == [bool, int, float, str]


def test_iter_users_and_event_contexts(store: Store) -> None:
    _populate(store)
    assert [(u.user_id, u.attributes) for u in store.iter_users()] == [
        ("alice", {"age": 30}), ("bob", {"age": 40})]
    assert store.event_contexts() == [{"device": "mobile"}, {}, {}]
    assert len(store.event_contexts()) == len(store.event_log())
