"""Schema versioning: migrations build exactly the declared schema; old stores open and upgrade."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from personae import Event, Store, StoreError
from personae.data.interactions import Interactions
from personae.store import migrate, schema


def test_migrations_build_the_declared_schema(store_url: str) -> None:
    engine = create_engine(store_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    engine.dispose()
    assert diff == [], f"schema.py and the migrations disagree: {diff}"


def test_revisions_are_linear_and_end_at_the_code_revision() -> None:
    revs = migrate.known_revisions()
    assert revs[0] == "0001" and revs[-1] == schema.SCHEMA_REVISION
    assert len(revs) == len(set(revs))


def test_store_written_by_revision_0001_opens_and_upgrades(store_url: str) -> None:
    engine = create_engine(store_url)
    migrate.upgrade(engine, "0001")
    # What personae at revision 0001 wrote: no salt in meta, no forgotten_users table.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('created_by', 'personae 0.0.1'),"
                          " ('pseudonymized', 'false')"))
        conn.execute(text("INSERT INTO event_types (type_idx, name, weight) VALUES "
                          "(0, 'view', 1.0), (4, 'rating', 3.0)"))
        conn.execute(text("INSERT INTO users (user_id, attributes, created_at, updated_at) "
                          "VALUES ('u1', '{\"age\": 30}', 1, 1)"))
        conn.execute(text("INSERT INTO items (item_id, title, categories, attributes, available,"
                          " created_at, updated_at) VALUES ('i1', 'Old', '[\"drama\"]', '{}',"
                          " true, 1, 1)"))
        conn.execute(text("INSERT INTO events (event_id, user_idx, item_idx, type_idx, value, ts)"
                          " SELECT 'e1', u.user_idx, i.item_idx, 4, 4.0, 100"
                          " FROM users u, items i"))
        assert "forgotten_users" not in _tables(conn)
    engine.dispose()

    with pytest.raises(StoreError, match="upgrade=True"):
        Store(store_url, upgrade=False)

    with Store(store_url) as store:
        assert store.schema_revision() == schema.SCHEMA_REVISION
        assert store.get_user("u1").attributes == {"age": 30}
        assert store.get_item("i1").categories == ["drama"]
        assert [(e.event_id, e.value) for e in store.user_events("u1")] == [("e1", 4.0)]
        assert Interactions.from_store(store).nnz == 1
        # the new revision's feature works on the upgraded store
        store.add_events([Event("u2", "i1", "view")])
        assert store.forget_user("u1") == {"users": 1, "events": 1, "recommendations": 0,
                                            "model_versions": 0}
        assert store.add_events([Event("u1", "i1", "view")]).skipped == 1
        assert "id_hash_salt" in store.meta()
        # and revision 0003's: model versions, API keys, the impression log
        assert store.model_versions() == [] and store.active_model_version() is None
        key, secret = store.create_api_key("ci", "reader")
        assert store.authenticate(secret) == key


def test_store_at_revision_0002_upgrades_to_0003(store_url: str) -> None:
    engine = create_engine(store_url)
    migrate.upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('created_by', 'personae 0.1.0'),"
                          " ('pseudonymized', 'false'), ('id_hash_salt', 'ab12')"))
        conn.execute(text("INSERT INTO event_types (type_idx, name, weight) VALUES "
                          "(0, 'view', 1.0)"))
        assert "model_versions" not in _tables(conn)
    engine.dispose()
    with Store(store_url) as store:
        assert store.schema_revision() == schema.SCHEMA_REVISION
        from personae.store import ModelVersion, Recommendation

        store.add_model_version(ModelVersion("v1", "ease", {"l2": 10.0}, "ready", 1.0))
        assert store.activate_model_version("v1").status == "active"
        store.log_recommendation(Recommendation("r_1", "rank", None, 2.0, "v1", ["i1"], [0.5]))
        assert store.get_recommendation("r_1").items == ["i1"]


def test_store_at_revision_0003_upgrades_to_0004(store_url: str) -> None:
    engine = create_engine(store_url)
    migrate.upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('created_by', 'personae 0.1.0'),"
                          " ('pseudonymized', 'false'), ('id_hash_salt', 'ab12')"))
        conn.execute(text("INSERT INTO model_versions (version, model, params, status,"
                          " created_at) VALUES ('v-old', 'ease', '{}', 'training', 1)"))
        assert "audit_log" not in _tables(conn)
    engine.dispose()
    with Store(store_url) as store:
        assert store.schema_revision() == "0004"
        old = store.get_model_version("v-old")
        assert old.heartbeat_at is None and old.invalidated_at is None
        # a job from before the upgrade never beats: it is failed, not left blocking
        assert store.fail_stale_training(60.0) == ["v-old"]
        assert store.get_model_version("v-old").status == "failed"
        store.audit("test", "s1", {"n": 1})
        assert [(a["action"], a["detail"]) for a in store.audit_log("s1")] == [("test", {"n": 1})]


def test_newer_schema_is_refused(store_url: str) -> None:
    Store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this personae knows"):
        Store(store_url)


def test_foreign_database_is_refused(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id integer primary key)"))
    engine.dispose()
    with pytest.raises(StoreError, match="no personae schema"):
        Store(store_url)


def test_create_false_on_an_empty_database(store_url: str, backend: str) -> None:
    with pytest.raises(StoreError):
        Store(store_url, create=False)


def _tables(conn) -> set[str]:  # type: ignore[no-untyped-def]
    from sqlalchemy import inspect

    return set(inspect(conn).get_table_names())
