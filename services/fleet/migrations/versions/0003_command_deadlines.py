"""Commands carry the moment the fleet fails them unless their agent acts first.

Revision ID: fleet_0003
Revises: fleet_0002
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "fleet_0003"
down_revision = "fleet_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fleet_commands") as batch:
        batch.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_fleet_commands_deadline_at", ["deadline_at"])
    # Commands unfinished at the upgrade get the longest deadline an event can have.
    op.execute(
        sa.text(
            "UPDATE fleet_commands SET deadline_at = :deadline "
            "WHERE state IN ('Pending', 'InProgress')"
        ).bindparams(deadline=datetime.now(UTC) + timedelta(hours=1, minutes=1))
    )


def downgrade() -> None:
    with op.batch_alter_table("fleet_commands") as batch:
        batch.drop_index("ix_fleet_commands_deadline_at")
        batch.drop_column("deadline_at")
