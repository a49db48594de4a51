"""The SQL schema of the store, as SQLAlchemy Core tables.

The tables describe the *current* schema; Alembic migrations in ``migrations/versions`` build it
step by step, so a store created by an older personae opens and is upgraded in place. When you
change a table here, add a migration that makes the same change (``tests/test_schema.py`` checks
that the migrated schema equals these tables).

Internal integer keys are named ``*_idx``; external ids (the application's strings) ``*_id``.
Times are UTC epoch seconds in ``DOUBLE PRECISION`` columns: compact, index-friendly and read into
numpy without conversion.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

#: JSON on SQLite (stored as text), JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT identity.
BigIdx = BigInteger().with_variant(Integer(), "sqlite")
#: External ids compare byte-wise on PostgreSQL ("C" collation): locale-aware comparison made
#: the unique indexes several times slower and gives ids no useful order. SQLite's default
#: (BINARY) already compares bytes.
IdString = String(256).with_variant(String(256, collation="C"), "postgresql")

#: The schema revision this code writes; the store refuses to open a newer one.
SCHEMA_REVISION = "0002"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("user_idx", Integer, primary_key=True, autoincrement=True),
    Column("user_id", IdString, nullable=False, unique=True),
    Column("attributes", JSONType, nullable=False, default=dict),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("item_idx", Integer, primary_key=True, autoincrement=True),
    Column("item_id", IdString, nullable=False, unique=True),
    Column("title", Text, nullable=True),
    Column("text", Text, nullable=True),
    Column("categories", JSONType, nullable=False, default=list),
    Column("attributes", JSONType, nullable=False, default=dict),
    Column("available", Boolean, nullable=False, default=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

event_types = Table(
    "event_types",
    metadata,
    Column("type_idx", SmallInteger, primary_key=True, autoincrement=False),
    Column("name", String(32), nullable=False, unique=True),
    Column("weight", Double, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("event_idx", BigIdx, primary_key=True, autoincrement=True),
    Column("event_id", IdString, nullable=False, unique=True),
    # No FOREIGN KEY constraints on purpose: they tripled PostgreSQL's bulk-insert time (one
    # trigger per row and key). The writer creates every referenced user/item/type in the same
    # transaction, and every delete path (forget_user, ...) deletes the events explicitly.
    Column("user_idx", Integer, nullable=False),
    Column("item_idx", Integer, nullable=False),
    Column("type_idx", SmallInteger, nullable=False),
    Column("value", Double, nullable=True),
    Column("ts", Double, nullable=True),
    Column("context", JSONType, nullable=True),
    # A user's history, newest first, is the serving path's read. No index on item_idx: nothing
    # reads events by item on a hot path, and each index costs every bulk insert.
    Index("ix_events_user_idx_ts", "user_idx", "ts"),
)

# Added in revision 0002: users who asked to be forgotten. Only a keyed hash of the id is kept,
# so that their data is refused if it arrives again (a re-import of an old dump, say).
forgotten_users = Table(
    "forgotten_users",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("forgotten_at", Double, nullable=False),
)
