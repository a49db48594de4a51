"""The store's serving tables on both backends: API keys, model versions, impressions."""

from __future__ import annotations

import pytest

from personae import Event, InvalidInput, Item, NotFound, Store
from personae.store import ModelVersion, Recommendation


def test_api_keys_hash_authenticate_revoke(store: Store) -> None:
    key, secret = store.create_api_key("ingest job", "writer")
    assert key.key_id.startswith("pk_") and secret.startswith(key.key_id + ".")
    assert store.authenticate(secret) == key
    assert key.allows("reader") and key.allows("writer") and not key.allows("admin")
    assert store.authenticate(secret + "x") is None
    assert store.authenticate("garbage") is None
    assert store.authenticate(key.key_id + ".") is None
    with store.engine.connect() as conn:
        from sqlalchemy import text

        dump = " ".join(map(str, conn.execute(text("SELECT * FROM api_keys")).all()))
    assert secret.split(".", 1)[1] not in dump  # only the hash is stored
    revoked = store.revoke_api_key(key.key_id)
    assert revoked.revoked_at is not None and store.authenticate(secret) is None
    assert [k.active for k in store.list_api_keys()] == [False]
    with pytest.raises(InvalidInput, match="role"):
        store.create_api_key("x", "root")
    with pytest.raises(NotFound):
        store.revoke_api_key("pk_missing")


def test_model_versions_activation_is_exclusive(store: Store) -> None:
    for v in ("v1", "v2"):
        store.add_model_version(ModelVersion(v, "ease", {"l2": 1.0}, "ready", 1.0))
    store.activate_model_version("v1")
    store.activate_model_version("v2")
    statuses = {m.version: m.status for m in store.model_versions()}
    assert statuses == {"v1": "retired", "v2": "active"}
    assert store.active_model_version() == "v2"
    assert store.rollback_model_version().version == "v1"
    assert store.active_model_version() == "v1"
    with pytest.raises(InvalidInput, match="no earlier"):
        store.rollback_model_version()
    store.add_model_version(ModelVersion("v3", "ease", {}, "training", 2.0))
    with pytest.raises(InvalidInput, match="'training'"):
        store.activate_model_version("v3")
    mv = store.update_model_version("v3", status="failed", message="boom")
    assert (mv.status, mv.message) == ("failed", "boom")
    with pytest.raises(InvalidInput, match="activate"):
        store.update_model_version("v3", status="active")
    with pytest.raises(InvalidInput, match="exists"):
        store.add_model_version(ModelVersion("v3", "ease"))


def test_recommendations_log_and_forget(store: Store) -> None:
    store.add_events([Event("u1", "i1")])
    sid = store.stored_user_id("u1")
    store.log_recommendation(Recommendation("r_a", "recommend", sid, 1.0, None, ["i1", "i2"],
                                            [0.5, 0.25], None, {"device": "tv"},
                                            {"k": 2}, 1, None))
    got = store.get_recommendation("r_a")
    assert got.items == ["i1", "i2"] and got.context == {"device": "tv"}
    assert store.forget_user("u1")["recommendations"] == 1
    with pytest.raises(NotFound):
        store.get_recommendation("r_a")


def test_catalog_version_changes_with_items_and_history_is_newest_first(store: Store) -> None:
    _, v0, _, _ = store.serving_state()
    store.upsert_items([Item("i1")])
    _, v1, _, _ = store.serving_state()
    store.add_events([Event("u1", "i1", "view", timestamp=10)])  # no new item
    assert store.serving_state()[1] == v1 != v0
    store.add_events([Event("u1", "i2", "click", timestamp=20)])  # creates item i2
    assert store.serving_state()[1] != v1
    items, types = store.user_history("u1")
    idx, ids = store.item_index()
    names = {i: n for i, (n, _) in store.event_types().items()}
    assert [ids[list(idx).index(i)] for i in items] == ["i2", "i1"]
    assert [names[t] for t in types] == ["click", "view"]
    assert store.user_history("nobody")[0].size == 0
