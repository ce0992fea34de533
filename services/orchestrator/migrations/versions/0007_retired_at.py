"""Blue/green: when the original instances were retired (stored, so a decision sees it).

Revision ID: orchestrator_0007
Revises: orchestrator_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0007"
down_revision = "orchestrator_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orch_deployments") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orch_deployments") as batch:
        batch.drop_column("retired_at")
