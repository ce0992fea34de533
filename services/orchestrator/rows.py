"""The orchestrator's rows read as domain objects — a deployment, its targets and their events —
as every step and watcher reads them (plain rows, positional fields: thousands of them for a
big deployment). Part of the deployment store (store.py), inside its sessions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from deploy.lifecycle import EVENT_NAMES
from services.core.diagnostics import Diagnostics, ErrorCode
from services.orchestrator.bulk import EVENT_STATUSES, NO_DIAGNOSTICS
from services.orchestrator.domain import (
    BlueGreenProgress,
    Creator,
    Deployment,
    DeploymentErrorCode,
    ErrorInformation,
    EventRef,
    FileExistsBehavior,
    RollbackInfo,
    Target,
    TargetEvent,
    TargetLabel,
)
from services.orchestrator.schema import DeploymentRow, EventRow, TargetRow
from services.orchestrator.states import DeploymentStatus, EventStatus, TargetStatus

_EVENT_COLUMNS = (
    EventRow.instance_name,
    EventRow.name,
    EventRow.status,
    EventRow.started_at,
    EventRow.ended_at,
    EventRow.error_code,
    EventRow.script_name,
    EventRow.message,
    EventRow.log_tail,
)
_TARGET_COLUMNS = (
    TargetRow.deployment_id,
    TargetRow.instance_name,
    TargetRow.status,
    TargetRow.updated_at,
    TargetRow.instance_revision,
    TargetRow.label,
)


async def read_targets(
    session: AsyncSession,
    deployment_id: str,
    instances: Collection[str] | None = None,
    with_events: bool = True,
) -> list[Target]:
    """The deployment's targets (those of `instances`; None: all) with their events, read as
    plain rows: every watcher reads them all, and ORM objects (identity map, change tracking)
    would cost several times more for what is only read. Selecting mapped columns still
    flushes what the transaction has changed first."""
    if instances is not None and not instances:
        return []
    targets = select(*_TARGET_COLUMNS).where(TargetRow.deployment_id == deployment_id)
    events = select(*_EVENT_COLUMNS).where(EventRow.deployment_id == deployment_id)
    if instances is not None:
        targets = targets.where(TargetRow.instance_name.in_(instances))
        events = events.where(EventRow.instance_name.in_(instances))
    by_instance: dict[str, list[TargetEvent]] = {}
    ordered = events.order_by(EventRow.instance_name, EventRow.position)
    for event in await session.execute(ordered) if with_events else ():
        by_instance.setdefault(event.instance_name, []).append(_event(event))
    rows = await session.execute(targets.order_by(TargetRow.position))
    return [_target(t, by_instance.get(t.instance_name, [])) for t in rows]


async def target_counts(session: AsyncSession, deployment_id: str) -> dict[TargetStatus, int]:
    """How many of the deployment's targets are in each status (the deployment's overview:
    one aggregate, not a thousand rows)."""
    counted = await session.execute(
        select(TargetRow.status, func.count())
        .where(TargetRow.deployment_id == deployment_id)
        .group_by(TargetRow.status)
    )
    return {TargetStatus(status): count for status, count in counted}


async def running_events(session: AsyncSession, deployment_id: str) -> list[EventRef]:
    rows = await session.scalars(
        select(EventRow).where(
            EventRow.deployment_id == deployment_id,
            EventRow.status == EventStatus.IN_PROGRESS,
        )
    )
    return [event_ref(row) for row in rows]


def event_ref(row: EventRow) -> EventRef:
    return EventRef(row.deployment_id, row.instance_name, row.position, EVENT_NAMES[row.name])


def deployment_from_row(row: DeploymentRow) -> Deployment:
    return Deployment(
        id=row.id,
        application_name=row.application_name,
        group_name=row.group_name,
        group_id=row.group_id,
        config_name=row.config_name,
        minimum_healthy=row.minimum_healthy,
        status=DeploymentStatus(row.status),
        revision=row.revision,
        description=row.description,
        creator=Creator(row.creator),
        file_exists_behavior=(
            FileExistsBehavior(row.file_exists_behavior) if row.file_exists_behavior else None
        ),
        ignore_application_stop_failures=row.ignore_application_stop_failures,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        error=(
            ErrorInformation(DeploymentErrorCode(row.error_code), row.error_message or "")
            if row.error_code
            else None
        ),
        auto_rollback=row.auto_rollback,
        update_outdated_instances_only=bool(row.update_outdated_instances_only),
        fetch_through_registry=bool(row.fetch_through_registry),
        style=row.deployment_style,
        target_groups=row.target_groups,
        blue_green=row.blue_green,
        routing=row.traffic_routing,
        target_instances=row.target_instances,
        progress=BlueGreenProgress(
            provision_requested_at=row.provision_requested_at,
            ready_until=row.ready_until,
            continued=bool(row.continued),
            traffic_step=row.traffic_step if row.traffic_step is not None else -1,
            step_started_at=row.step_started_at,
            green_weight=row.green_weight or 0,
            blue_weight=row.blue_weight or 0,
            terminate_at=row.terminate_at,
            retired_at=row.retired_at,
        ),
        rollback=RollbackInfo(
            row.rollback_deployment_id or "",
            row.rollback_triggering_deployment_id or "",
            row.rollback_message or "",
        ),
        stop_requested=bool(row.stop_requested),
        roll_back_on_stop=bool(row.roll_back_on_stop),
        untouched_healthy=row.untouched_healthy or 0,
        status_messages=row.status_messages,
        alarms=row.alarms,
        alarms_clear_at=row.alarms_clear_at,
    )


def _event(row: Row[*tuple[Any, ...]]) -> TargetEvent:
    """Every step and watcher reads every event of the deployment (thousands for a big one):
    positional fields, a status table and one shared empty Diagnostics keep it cheap."""
    _, name, status, started_at, ended_at, error_code, script_name, message, log_tail = row
    diagnostics = NO_DIAGNOSTICS
    if error_code or script_name or message or log_tail:
        code = ErrorCode(error_code) if error_code else None
        diagnostics = Diagnostics(code, script_name, message, log_tail)
    return TargetEvent(EVENT_NAMES[name], EVENT_STATUSES[status], started_at, ended_at, diagnostics)


def _target(row: Row[*tuple[Any, ...]], events: Sequence[TargetEvent]) -> Target:
    return Target(
        deployment_id=row.deployment_id,
        instance_name=row.instance_name,
        status=TargetStatus(row.status),
        updated_at=row.updated_at,
        events=tuple(events),
        instance_revision=row.instance_revision,
        label=TargetLabel(row.label or ""),
    )
