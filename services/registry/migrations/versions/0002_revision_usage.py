"""When revisions were first and last used, and by which deployment groups.

Revision ID: registry_0002
Revises: registry_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registry_revisions") as batch:
        batch.add_column(sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("deployment_groups", sa.Text, nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("registry_revisions") as batch:
        batch.drop_column("deployment_groups")
        batch.drop_column("last_used_at")
        batch.drop_column("first_used_at")
