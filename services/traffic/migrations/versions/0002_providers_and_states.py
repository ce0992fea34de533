"""Target groups get a port, a deregistration delay and provider settings; targets a state.

Revision ID: traffic_0002
Revises: traffic_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "traffic_0002"
down_revision = "traffic_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traffic_target_groups") as batch:
        batch.add_column(sa.Column("port", sa.Integer, nullable=False, server_default="80"))
        batch.add_column(
            sa.Column(
                "deregistration_delay_seconds", sa.Integer, nullable=False, server_default="300"
            )
        )
        batch.add_column(sa.Column("settings", sa.Text, nullable=False, server_default="{}"))
    with op.batch_alter_table("traffic_targets") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="Unused"))
        batch.add_column(
            sa.Column("address_set", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("traffic_targets") as batch:
        batch.drop_column("address_set")
        batch.drop_column("state")
    with op.batch_alter_table("traffic_target_groups") as batch:
        batch.drop_column("settings")
        batch.drop_column("deregistration_delay_seconds")
        batch.drop_column("port")
