"""Tag sets on deployment groups.

Revision ID: orchestrator_0003
Revises: orchestrator_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0003"
down_revision = "orchestrator_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.add_column(sa.Column("tag_set", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.drop_column("tag_set")
