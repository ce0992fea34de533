"""Instances, tags, commands and command updates.

Revision ID: fleet_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "fleet_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_instances",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deregistered_at", sa.DateTime(timezone=True)),
        sa.Column("last_seen_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "fleet_instance_tags",
        sa.Column(
            "instance_name",
            sa.String(100),
            sa.ForeignKey("fleet_instances.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_table(
        "fleet_commands",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("instance_name", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fleet_commands_instance_name", "fleet_commands", ["instance_name"])
    op.create_table(
        "fleet_command_updates",
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("command_id", sa.String(255), nullable=False),
        sa.Column("instance_name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("diagnostics", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_command_updates")
    op.drop_table("fleet_commands")
    op.drop_table("fleet_instance_tags")
    op.drop_table("fleet_instances")
