"""Join tokens that let agents enrol for a certificate.

Revision ID: fleet_0004
Revises: fleet_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "fleet_0004"
down_revision = "fleet_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_join_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("instance_name", sa.String(100), nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("uses_left", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_join_tokens")
