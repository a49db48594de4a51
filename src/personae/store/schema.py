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
    ForeignKey,
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
    Column("user_id", String(256), nullable=False, unique=True),
    Column("attributes", JSONType, nullable=False, default=dict),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("item_idx", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(256), nullable=False, unique=True),
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
    Column("event_id", String(256), nullable=False, unique=True),
    Column(
        "user_idx",
        Integer,
        ForeignKey("users.user_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "item_idx",
        Integer,
        ForeignKey("items.item_idx", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("type_idx", SmallInteger, ForeignKey("event_types.type_idx"), nullable=False),
    Column("value", Double, nullable=True),
    Column("ts", Double, nullable=True),
    Column("context", JSONType, nullable=True),
    Index("ix_events_user_idx_ts", "user_idx", "ts"),
    Index("ix_events_item_idx", "item_idx"),
)

# Added in revision 0002: users who asked to be forgotten. Only a keyed hash of the id is kept,
# so that their data is refused if it arrives again (a re-import of an old dump, say).
forgotten_users = Table(
    "forgotten_users",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("forgotten_at", Double, nullable=False),
)
