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
SCHEMA_REVISION = "0004"

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

# Added in revision 0003 (serving): API keys, trained model versions and the impression log.

api_keys = Table(
    "api_keys",
    metadata,
    # Public part of a key ("pk_" + 12 hex); the secret handed out is "<key_id>.<token>".
    Column("key_id", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),  # "admin" | "writer" | "reader"
    # SHA-256 (hex) of the whole secret: the secret itself is shown once and never stored.
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double, nullable=True),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("model", String(64), nullable=False),
    Column("params", JSONType, nullable=False),
    # "training" | "ready" | "failed" | "active" | "retired"; the active one is also named by
    # the meta row "active_model_version", written in the same transaction.
    Column("status", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
    Column("metrics", JSONType, nullable=True),
    Column("message", Text, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("n_users", Integer, nullable=True),
    Column("n_items", Integer, nullable=True),
    Column("n_events", Integer, nullable=True),
    # Added in revision 0004. A training job writes ``heartbeat_at`` every few seconds; a
    # "training" row whose heartbeat stopped belongs to a process that died and is failed by
    # the next engine that looks. ``invalidated_at``: a user whose data this version was
    # trained on was forgotten since; the version is retrained (see Engine.maintain).
    Column("heartbeat_at", Double, nullable=True),
    Column("invalidated_at", Double, nullable=True),
)

# The impression log: every list shown (recommend, similar, rank), looked up by rec_id for
# paging and rewards. ``user_id`` is the *stored* id (the pseudonym in a pseudonymised store)
# and is indexed so that forget_user can delete a user's rows.
recommendations = Table(
    "recommendations",
    metadata,
    Column("rec_id", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),  # "recommend" | "similar" | "rank"
    Column("user_id", IdString, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("model_version", String(64), nullable=True),
    Column("items", JSONType, nullable=False),
    Column("scores", JSONType, nullable=False),
    Column("propensities", JSONType, nullable=True),
    Column("context", JSONType, nullable=True),
    Column("request", JSONType, nullable=False),
    Column("page", Integer, nullable=False),
    Column("parent_rec_id", String(40), nullable=True),
    Index("ix_recommendations_user_id", "user_id"),
)

# Added in revision 0004: what was done to whose data, and when (deletions and what followed
# them). ``subject`` is the keyed hash of a forgotten user's stored id, never the id itself.
audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_idx", BigIdx, primary_key=True, autoincrement=True),
    Column("ts", Double, nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject", String(256), nullable=True),
    Column("detail", JSONType, nullable=True),
    Index("ix_audit_log_subject", "subject"),
)

# Added in revision 0004: what a user said about their own tastes (the text profile an
# assistant is given, corrected by the user): liked and disliked categories, a note, or that
# they deleted their text profile. Keyed by the stored user id; forget_user deletes it.
profile_corrections = Table(
    "profile_corrections",
    metadata,
    Column("user_id", IdString, primary_key=True),
    Column("data", JSONType, nullable=False),
    Column("updated_at", Double, nullable=False),
)
