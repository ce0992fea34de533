"""An S3 revision records the ETag its object had when its digest was taken, so registering it
again needs only a HEAD while the object is unchanged.

Revision ID: registry_0003
Revises: registry_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0003"
down_revision = "registry_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registry_revisions") as batch:
        batch.add_column(sa.Column("observed_etag", sa.String(1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_revisions") as batch:
        batch.drop_column("observed_etag")
