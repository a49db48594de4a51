"""Lifecycle: training heartbeats, invalidated model versions, the audit log, and users'
corrections of their text profile.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
BigIdx = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IdString = sa.String(256).with_variant(sa.String(256, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.Double(), nullable=True))
        batch.add_column(sa.Column("invalidated_at", sa.Double(), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("audit_idx", BigIdx, autoincrement=True, nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("detail", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("audit_idx", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
    op.create_table(
        "profile_corrections",
        sa.Column("user_id", IdString, nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_profile_corrections"),
    )


def downgrade() -> None:
    op.drop_table("profile_corrections")
    op.drop_table("audit_log")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("invalidated_at")
        batch.drop_column("heartbeat_at")
