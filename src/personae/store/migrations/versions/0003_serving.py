"""Serving: API keys, model versions and the impression log (recommendations).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
IdString = sa.String(256).with_variant(sa.String(256, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("metrics", JSONType, nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("n_users", sa.Integer(), nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=True),
        sa.Column("n_events", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_model_versions"),
    )
    op.create_table(
        "recommendations",
        sa.Column("rec_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", IdString, nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("items", JSONType, nullable=False),
        sa.Column("scores", JSONType, nullable=False),
        sa.Column("propensities", JSONType, nullable=True),
        sa.Column("context", JSONType, nullable=True),
        sa.Column("request", JSONType, nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("parent_rec_id", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("rec_id", name="pk_recommendations"),
    )
    op.create_index("ix_recommendations_user_id", "recommendations", ["user_id"])


def downgrade() -> None:
    op.drop_table("recommendations")
    op.drop_table("model_versions")
    op.drop_table("api_keys")
