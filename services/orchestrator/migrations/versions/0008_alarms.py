"""Alarm configurations of groups and deployments, and until when a deployment's alarms were
read clear.

Revision ID: orchestrator_0008
Revises: orchestrator_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0008"
down_revision = "orchestrator_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.add_column(sa.Column("alarms", sa.Text(), nullable=False, server_default="{}"))
    with op.batch_alter_table("orch_deployments") as batch:
        batch.add_column(sa.Column("alarms", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("alarms_clear_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orch_deployments") as batch:
        batch.drop_column("alarms_clear_at")
        batch.drop_column("alarms")
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.drop_column("alarms")
