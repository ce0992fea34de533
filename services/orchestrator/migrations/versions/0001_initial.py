"""Deployment groups, deployments, targets, lifecycle events and the fleet-update cursor.

Revision ID: orchestrator_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orch_deployment_groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("application_name", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("config_name", sa.String(100), nullable=False),
        sa.Column("tag_filters", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("application_name", "name"),
    )
    op.create_table(
        "orch_deployments",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("application_name", sa.String(100), nullable=False, index=True),
        sa.Column("group_name", sa.String(100), nullable=False),
        sa.Column("group_id", sa.String(36), nullable=False, index=True),
        sa.Column("config_name", sa.String(100), nullable=False),
        sa.Column("minimum_healthy", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("revision", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("creator", sa.String(32), nullable=False),
        sa.Column("file_exists_behavior", sa.String(16)),
        sa.Column("ignore_application_stop_failures", sa.Boolean, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "orch_targets",
        sa.Column(
            "deployment_id",
            sa.String(16),
            sa.ForeignKey("orch_deployments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("instance_name", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "orch_lifecycle_events",
        sa.Column("deployment_id", sa.String(16), primary_key=True),
        sa.Column("instance_name", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("error_code", sa.String(32)),
        sa.Column("script_name", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("log_tail", sa.Text, nullable=False),
    )
    op.create_table(
        "orch_cursors",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("sequence", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "orch_cursors",
        "orch_lifecycle_events",
        "orch_targets",
        "orch_deployments",
        "orch_deployment_groups",
    ):
        op.drop_table(table)
