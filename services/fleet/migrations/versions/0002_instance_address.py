"""Instances record the address their agent connects from.

Revision ID: fleet_0002
Revises: fleet_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "fleet_0002"
down_revision = "fleet_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fleet_instances") as batch:
        batch.add_column(sa.Column("address", sa.String(255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("fleet_instances") as batch:
        batch.drop_column("address")
