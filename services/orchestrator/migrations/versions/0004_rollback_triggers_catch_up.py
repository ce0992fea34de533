"""Auto-rollback, triggers, stop requests, instance revisions and the trigger outbox.

Revision ID: orchestrator_0004
Revises: orchestrator_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0004"
down_revision = "orchestrator_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.add_column(sa.Column("auto_rollback", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("triggers", sa.Text, nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column(
                "fetch_through_registry", sa.Boolean, nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("orch_deployments") as batch:
        batch.add_column(sa.Column("auto_rollback", sa.Text, nullable=False, server_default="{}"))
        for name in (
            "update_outdated_instances_only",
            "fetch_through_registry",
            "stop_requested",
            "roll_back_on_stop",
        ):
            batch.add_column(sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("untouched_healthy", sa.Integer, nullable=False, server_default="0")
        )
        for name in ("rollback_deployment_id", "rollback_triggering_deployment_id"):
            batch.add_column(sa.Column(name, sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("rollback_message", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("status_messages", sa.Text, nullable=False, server_default="[]"))
    with op.batch_alter_table("orch_targets") as batch:
        batch.add_column(sa.Column("instance_revision", sa.Text, nullable=True))
    op.create_table(
        "orch_instance_revisions",
        sa.Column("group_id", sa.String(36), primary_key=True),
        sa.Column("instance_name", sa.String(100), primary_key=True),
        sa.Column("revision", sa.Text, nullable=True),
        sa.Column("deployment_id", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "orch_trigger_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(36), nullable=False, index=True),
        sa.Column("trigger_name", sa.String(100), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("deployment_id", sa.String(16), nullable=False),
        sa.Column("instance_id", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orch_trigger_deliveries")
    op.drop_table("orch_instance_revisions")
    with op.batch_alter_table("orch_targets") as batch:
        batch.drop_column("instance_revision")
    with op.batch_alter_table("orch_deployments") as batch:
        for name in (
            "status_messages",
            "rollback_message",
            "rollback_triggering_deployment_id",
            "rollback_deployment_id",
            "untouched_healthy",
            "roll_back_on_stop",
            "stop_requested",
            "fetch_through_registry",
            "update_outdated_instances_only",
            "auto_rollback",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.drop_column("fetch_through_registry")
        batch.drop_column("triggers")
        batch.drop_column("auto_rollback")
