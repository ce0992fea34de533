"""Hook output that agents stream, kept per command; commands know their deployment.

Revision ID: fleet_0005
Revises: fleet_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "fleet_0005"
down_revision = "fleet_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fleet_commands") as batch:
        batch.add_column(sa.Column("deployment_id", sa.String(64), nullable=True))
    op.create_table(
        "fleet_command_output",
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("command_id", sa.String(255), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("instance_name", sa.String(100), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("script", sa.String(512), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_fleet_command_output_deployment",
        "fleet_command_output",
        ["deployment_id", "sequence"],
    )
    op.create_index("ix_fleet_command_output_command", "fleet_command_output", ["command_id"])
    op.create_index("ix_fleet_command_output_stored_at", "fleet_command_output", ["stored_at"])


def downgrade() -> None:
    op.drop_table("fleet_command_output")
    with op.batch_alter_table("fleet_commands") as batch:
        batch.drop_column("deployment_id")
