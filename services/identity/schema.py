"""The identity service's tables: users, access keys, policies, attachments, the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.core.columns import UtcDateTime
from services.core.db import Base


class UserRow(Base):
    __tablename__ = "identity_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AccessKeyRow(Base):
    __tablename__ = "identity_access_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(
        String(64), ForeignKey("identity_users.name", ondelete="CASCADE"), index=True
    )
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    """AES-GCM of the secret under the server's identity key (services.identity.sealing)."""
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PolicyRow(Base):
    """Created policies; the built-in ones live in code (services.identity.builtins)."""

    __tablename__ = "identity_policies"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AttachmentRow(Base):
    __tablename__ = "identity_user_policies"

    user_name: Mapped[str] = mapped_column(
        String(64), ForeignKey("identity_users.name", ondelete="CASCADE"), primary_key=True
    )
    policy_name: Mapped[str] = mapped_column(String(128), primary_key=True)


class AuditEventRow(Base):
    __tablename__ = "identity_audit_events"
    __table_args__ = (Index("ix_identity_audit_events_time", "event_time"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_time: Mapped[datetime] = mapped_column(UtcDateTime())
    user_name: Mapped[str] = mapped_column(String(64))
    access_key_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(32))
    source_address: Mapped[str] = mapped_column(String(255))
