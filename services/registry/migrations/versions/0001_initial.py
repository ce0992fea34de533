"""Applications and revisions.

Revision ID: registry_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_applications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "registry_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "application_id",
            sa.String(36),
            sa.ForeignKey("registry_applications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("identity", sa.String(1024), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("application_id", "identity"),
    )
    op.create_index(
        "ix_registry_revisions_application_id", "registry_revisions", ["application_id"]
    )


def downgrade() -> None:
    op.drop_table("registry_revisions")
    op.drop_table("registry_applications")
