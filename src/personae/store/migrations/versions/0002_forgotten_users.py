"""Forgotten users: a keyed hash per erased user, so that their data is refused on re-import.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forgotten_users",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("forgotten_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_forgotten_users"),
    )


def downgrade() -> None:
    op.drop_table("forgotten_users")
