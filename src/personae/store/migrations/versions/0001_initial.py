"""Initial schema: meta, users, items, event types and events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
BigIdx = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IdString = sa.String(256).with_variant(sa.String(256, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "users",
        sa.Column("user_idx", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", IdString, nullable=False),
        sa.Column("attributes", JSONType, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("user_idx", name="pk_users"),
        sa.UniqueConstraint("user_id", name="uq_users_user_id"),
    )
    op.create_table(
        "items",
        sa.Column("item_idx", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", IdString, nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("categories", JSONType, nullable=False),
        sa.Column("attributes", JSONType, nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("item_idx", name="pk_items"),
        sa.UniqueConstraint("item_id", name="uq_items_item_id"),
    )
    op.create_table(
        "event_types",
        sa.Column("type_idx", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("type_idx", name="pk_event_types"),
        sa.UniqueConstraint("name", name="uq_event_types_name"),
    )
    op.create_table(
        "events",
        sa.Column("event_idx", BigIdx, autoincrement=True, nullable=False),
        sa.Column("event_id", IdString, nullable=False),
        sa.Column("user_idx", sa.Integer(), nullable=False),
        sa.Column("item_idx", sa.Integer(), nullable=False),
        sa.Column("type_idx", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("ts", sa.Double(), nullable=True),
        sa.Column("context", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("event_idx", name="pk_events"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    )
    op.create_index("ix_events_user_idx_ts", "events", ["user_idx", "ts"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("event_types")
    op.drop_table("items")
    op.drop_table("users")
    op.drop_table("meta")
