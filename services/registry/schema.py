"""The registry's tables: applications and revisions (bundles themselves live in the blob store)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.core.columns import REVISION, STRINGS, UtcDateTime
from services.core.db import Base
from services.core.revision import RevisionLocation


class ApplicationRow(Base):
    __tablename__ = "registry_applications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RevisionRow(Base):
    __tablename__ = "registry_revisions"
    __table_args__ = (UniqueConstraint("application_id", "identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("registry_applications.id", ondelete="CASCADE"), index=True
    )
    identity: Mapped[str] = mapped_column(String(1024))
    location: Mapped[RevisionLocation] = mapped_column(REVISION)
    description: Mapped[str] = mapped_column(Text, default="")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    first_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    deployment_groups: Mapped[tuple[str, ...]] = mapped_column(STRINGS, default=())
    """The names of the groups deployments of it went to."""
    observed_etag: Mapped[str | None] = mapped_column(String(1024))
    """S3: the object's ETag when the digest was taken (None: not S3, or not known)."""
