"""The orchestrator's tables: groups, deployments, targets, lifecycle events, the fleet cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db import Base


class GroupRow(Base):
    __tablename__ = "orch_deployment_groups"
    __table_args__ = (UniqueConstraint("application_name", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_name: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    config_name: Mapped[str] = mapped_column(String(100))
    tag_filters: Mapped[str] = mapped_column(Text)
    """JSON list of {key, value, type}."""
    tag_set: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of lists of {key, value, type} (AND of ORs)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeploymentRow(Base):
    __tablename__ = "orch_deployments"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    application_name: Mapped[str] = mapped_column(String(100), index=True)
    group_name: Mapped[str] = mapped_column(String(100))
    group_id: Mapped[str] = mapped_column(String(36), index=True)
    config_name: Mapped[str] = mapped_column(String(100))
    minimum_healthy: Mapped[int] = mapped_column(Integer)
    """M, fixed when the deployment is created."""
    status: Mapped[str] = mapped_column(String(16), index=True)
    revision: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(String(32))
    file_exists_behavior: Mapped[str | None] = mapped_column(String(16))
    ignore_application_stop_failures: Mapped[bool] = mapped_column(Boolean)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TargetRow(Base):
    __tablename__ = "orch_targets"

    deployment_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("orch_deployments.id", ondelete="CASCADE"), primary_key=True
    )
    instance_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    __tablename__ = "orch_lifecycle_events"

    deployment_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    instance_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_code: Mapped[str | None] = mapped_column(String(32))
    script_name: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    log_tail: Mapped[str] = mapped_column(Text, default="")


class CursorRow(Base):
    __tablename__ = "orch_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)


class ConfigRow(Base):
    __tablename__ = "orch_deployment_configs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    minimum_type: Mapped[str] = mapped_column(String(16))
    minimum_value: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
