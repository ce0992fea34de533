"""Blue/green: group and deployment configuration, progress, target labels, traffic routing.

Revision ID: orchestrator_0006
Revises: orchestrator_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0006"
down_revision = "orchestrator_0005"
branch_labels = None
depends_on = None

DEPLOYMENT_TIMES = ("provision_requested_at", "ready_until", "step_started_at", "terminate_at")


def upgrade() -> None:
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.add_column(sa.Column("blue_green", sa.Text, nullable=False, server_default="{}"))
    with op.batch_alter_table("orch_deployments") as batch:
        batch.add_column(sa.Column("blue_green", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("traffic_routing", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column("target_instances", sa.Text, nullable=False, server_default="[]")
        )
        for name in DEPLOYMENT_TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("continued", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("traffic_step", sa.Integer, nullable=False, server_default="-1"))
        for name in ("green_weight", "blue_weight"):
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("orch_targets") as batch:
        batch.add_column(sa.Column("label", sa.String(8), nullable=False, server_default=""))
    with op.batch_alter_table("orch_deployment_configs") as batch:
        batch.add_column(sa.Column("traffic_routing", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("orch_deployment_configs") as batch:
        batch.drop_column("traffic_routing")
    with op.batch_alter_table("orch_targets") as batch:
        batch.drop_column("label")
    with op.batch_alter_table("orch_deployments") as batch:
        for name in (
            "blue_weight",
            "green_weight",
            "traffic_step",
            "continued",
            *reversed(DEPLOYMENT_TIMES),
            "target_instances",
            "traffic_routing",
            "blue_green",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("orch_deployment_groups") as batch:
        batch.drop_column("blue_green")
