"""Custom deployment configs.

Revision ID: orchestrator_0002
Revises: orchestrator_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0002"
down_revision = "orchestrator_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orch_deployment_configs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("minimum_type", sa.String(16), nullable=False),
        sa.Column("minimum_value", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orch_deployment_configs")
