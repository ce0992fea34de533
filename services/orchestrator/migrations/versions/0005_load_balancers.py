"""Deployment style and load balancer target groups, on groups and on each deployment.

Revision ID: orchestrator_0005
Revises: orchestrator_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0005"
down_revision = "orchestrator_0004"
branch_labels = None
depends_on = None

TABLES = ("orch_deployment_groups", "orch_deployments")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("deployment_style", sa.Text, nullable=False, server_default="{}")
            )
            batch.add_column(
                sa.Column("target_groups", sa.Text, nullable=False, server_default="[]")
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("target_groups")
            batch.drop_column("deployment_style")
