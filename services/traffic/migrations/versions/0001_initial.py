"""Target groups and targets.

Revision ID: traffic_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "traffic_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic_target_groups",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
    )
    op.create_table(
        "traffic_targets",
        sa.Column(
            "group_name",
            sa.String(100),
            sa.ForeignKey("traffic_target_groups.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("instance_name", sa.String(100), primary_key=True),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("traffic_targets")
    op.drop_table("traffic_target_groups")
