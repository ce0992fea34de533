"""Users, access keys, policies, attachments and the audit log.

Revision ID: identity_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "identity_access_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column(
            "user_name",
            sa.String(64),
            sa.ForeignKey("identity_users.name", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("sealed_secret", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "identity_policies",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "identity_user_policies",
        sa.Column(
            "user_name",
            sa.String(64),
            sa.ForeignKey("identity_users.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("policy_name", sa.String(128), primary_key=True),
    )
    op.create_table(
        "identity_audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("access_key_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("source_address", sa.String(255), nullable=False),
    )
    op.create_index("ix_identity_audit_events_time", "identity_audit_events", ["event_time"])


def downgrade() -> None:
    op.drop_table("identity_audit_events")
    op.drop_table("identity_user_policies")
    op.drop_table("identity_policies")
    op.drop_table("identity_access_keys")
    op.drop_table("identity_users")
