"""The orchestrator's tables: groups, deployments, targets, lifecycle events, the fleet cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.core.columns import REVISION, STRINGS, UtcDateTime
from services.core.db import Base
from services.core.revision import RevisionLocation
from services.orchestrator.bluegreen import BlueGreenConfig, TrafficRouting
from services.orchestrator.groups import (
    AlarmConfig,
    AutoRollbackConfig,
    DeploymentStyle,
    TriggerConfig,
)
from services.orchestrator.stored import (
    ALARMS,
    AUTO_ROLLBACK,
    BLUE_GREEN,
    ROUTING,
    STYLE,
    TAG_FILTERS,
    TAG_SET,
    TRIGGERS,
    Filters,
)


class GroupRow(Base):
    __tablename__ = "orch_deployment_groups"
    __table_args__ = (UniqueConstraint("application_name", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_name: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    config_name: Mapped[str] = mapped_column(String(100))
    tag_filters: Mapped[Filters] = mapped_column(TAG_FILTERS)
    tag_set: Mapped[tuple[Filters, ...]] = mapped_column(TAG_SET, default=())
    auto_rollback: Mapped[AutoRollbackConfig] = mapped_column(
        AUTO_ROLLBACK, default=AutoRollbackConfig()
    )
    triggers: Mapped[tuple[TriggerConfig, ...]] = mapped_column(TRIGGERS, default=())
    fetch_through_registry: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deployment_style: Mapped[DeploymentStyle] = mapped_column(STYLE, default=DeploymentStyle())
    target_groups: Mapped[tuple[str, ...]] = mapped_column(STRINGS, default=())
    """Target group names."""
    blue_green: Mapped[BlueGreenConfig] = mapped_column(BLUE_GREEN, default=BlueGreenConfig())
    alarms: Mapped[AlarmConfig] = mapped_column(ALARMS, default=AlarmConfig())


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
    revision: Mapped[RevisionLocation] = mapped_column(REVISION)
    description: Mapped[str] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(String(32))
    file_exists_behavior: Mapped[str | None] = mapped_column(String(16))
    ignore_application_stop_failures: Mapped[bool] = mapped_column(Boolean)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    auto_rollback: Mapped[AutoRollbackConfig] = mapped_column(
        AUTO_ROLLBACK, default=AutoRollbackConfig()
    )
    """The configuration in force for this deployment."""
    update_outdated_instances_only: Mapped[bool] = mapped_column(Boolean, default=False)
    fetch_through_registry: Mapped[bool] = mapped_column(Boolean, default=False)
    untouched_healthy: Mapped[int] = mapped_column(Integer, default=0)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    roll_back_on_stop: Mapped[bool] = mapped_column(Boolean, default=False)
    rollback_deployment_id: Mapped[str] = mapped_column(String(16), default="")
    rollback_triggering_deployment_id: Mapped[str] = mapped_column(String(16), default="")
    rollback_message: Mapped[str] = mapped_column(Text, default="")
    status_messages: Mapped[tuple[str, ...]] = mapped_column(STRINGS, default=())
    deployment_style: Mapped[DeploymentStyle] = mapped_column(STYLE, default=DeploymentStyle())
    target_groups: Mapped[tuple[str, ...]] = mapped_column(STRINGS, default=())
    blue_green: Mapped[BlueGreenConfig] = mapped_column(BLUE_GREEN, default=BlueGreenConfig())
    """The configuration in force."""
    traffic_routing: Mapped[TrafficRouting] = mapped_column(ROUTING, default=TrafficRouting())
    target_instances: Mapped[Filters] = mapped_column(TAG_FILTERS, default=())
    provision_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ready_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    continued: Mapped[bool] = mapped_column(Boolean, default=False)
    traffic_step: Mapped[int] = mapped_column(Integer, default=-1)
    step_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    green_weight: Mapped[int] = mapped_column(Integer, default=0)
    blue_weight: Mapped[int] = mapped_column(Integer, default=0)
    terminate_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    alarms: Mapped[AlarmConfig] = mapped_column(ALARMS, default=AlarmConfig())
    """The alarm configuration in force."""
    alarms_clear_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class TargetRow(Base):
    __tablename__ = "orch_targets"

    deployment_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("orch_deployments.id", ondelete="CASCADE"), primary_key=True
    )
    instance_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    instance_revision: Mapped[RevisionLocation | None] = mapped_column(REVISION)
    """JSON revision the instance was left on when the deployment ended."""
    label: Mapped[str] = mapped_column(String(8), default="")
    """Blue/green: Blue or Green."""


class EventRow(Base):
    __tablename__ = "orch_lifecycle_events"

    deployment_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    instance_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    traffic_routing: Mapped[TrafficRouting] = mapped_column(ROUTING, default=TrafficRouting())


class InstanceRevisionRow(Base):
    """What each instance of a group runs: the basis of catch-up and outdated-only deployments."""

    __tablename__ = "orch_instance_revisions"

    group_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    revision: Mapped[RevisionLocation | None] = mapped_column(REVISION)
    """The last revision that succeeded on it; None: none yet."""
    deployment_id: Mapped[str] = mapped_column(String(16))
    """The last deployment that started on it."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """When a deployment last started on it or succeeded there."""


class TriggerDeliveryRow(Base):
    """The outbox of webhook deliveries, written in the same transaction as the state change."""

    __tablename__ = "orch_trigger_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(String(36), index=True)
    trigger_name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(32))
    deployment_id: Mapped[str] = mapped_column(String(16))
    instance_id: Mapped[str] = mapped_column(String(100), default="")
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    http_status: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
