"""A step's decision written to the deployment's rows, inside the step's transaction: events
started or ended, targets moved (with their instances' revision records and trigger
notifications), the deployment's progress and end, and the rollback an end may create. Part of
the deployment store (store.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.diagnostics import Diagnostics
from services.orchestrator.bluegreen import TrafficRouting, rollback_blue_green
from services.orchestrator.bulk import (
    TARGET_ENDED,
    instance_revisions,
    load_rows,
    skip_pending_events,
)
from services.orchestrator.decision import (
    Decision,
    EventChange,
    Finish,
    RollbackPlan,
    TargetChange,
)
from services.orchestrator.domain import Creator, EventRef, TargetLabel
from services.orchestrator.group_store import newest_deployment
from services.orchestrator.groups import AutoRollbackConfig, TriggerEvent
from services.orchestrator.recording import insert_deployment
from services.orchestrator.schema import (
    DeploymentRow,
    EventRow,
    InstanceRevisionRow,
    TargetRow,
)
from services.orchestrator.states import (
    DeploymentStatus,
    EventStatus,
    TargetStatus,
    deployment_transition,
    event_transition,
    target_transition,
)
from services.orchestrator.trigger_queue import TriggerQueue


class DecisionWriter:
    """Applies decisions; queues the trigger notifications they cause with `triggers`."""

    def __init__(self, triggers: TriggerQueue) -> None:
        self._triggers = triggers

    async def apply(
        self, session: AsyncSession, row: DeploymentRow, decision: Decision, now: datetime
    ) -> str | None:
        """Store a decision's changes with their trigger deliveries; returns the id of the
        rollback it created (None: none)."""
        if decision.begin:
            row.status = deployment_transition(
                DeploymentStatus.CREATED, DeploymentStatus.IN_PROGRESS
            )
            row.started_at = now
            await self._triggers.queue(session, row, TriggerEvent.DEPLOYMENT_START)
        names = [t.instance_name for t in decision.targets]
        _kept = await load_rows(session, row.id, [c.ref for c in decision.events], names)
        revisions = await instance_revisions(session, row.group_id, names)
        if decision.skip_unstarted:
            await _skip_pending(session, row.id, now, (*decision.held, *decision.started))
        for change in decision.events:
            await _apply_event(session, change, now)
        # after the events: a decision may fail what an agent held (Pending) and end its target
        ended = [t.instance_name for t in decision.targets if t.status in TARGET_ENDED]
        await skip_pending_events(session, row.id, ended)
        for target in decision.targets:
            await self._apply_target(session, row, target, now, revisions)
        if decision.progress is not None:
            for name, value in dataclasses.asdict(decision.progress).items():
                setattr(row, name, value)
        if decision.ready:
            row.status = deployment_transition(DeploymentStatus(row.status), DeploymentStatus.READY)
            await self._triggers.queue(session, row, TriggerEvent.DEPLOYMENT_READY)
        if decision.finish is not None:
            return await self._finish(session, row, decision.finish, now)
        return None

    async def _apply_target(
        self,
        session: AsyncSession,
        row: DeploymentRow,
        change: TargetChange,
        now: datetime,
        revisions: dict[str, InstanceRevisionRow],
    ) -> None:
        target = await session.get(TargetRow, (row.id, change.instance_name))
        assert target is not None, "a decision changes only the deployment's targets"
        before = TargetStatus(target.status)
        target.status = target_transition(before, change.status)
        target.updated_at = now
        trigger = {
            TargetStatus.READY: TriggerEvent.INSTANCE_READY,
            TargetStatus.SUCCEEDED: TriggerEvent.INSTANCE_SUCCESS,
            TargetStatus.FAILED: TriggerEvent.INSTANCE_FAILURE,
        }.get(change.status)
        if change.status is TargetStatus.IN_PROGRESS and before is TargetStatus.PENDING:
            record = _instance_revision(session, row, change.instance_name, now, revisions)
            record.deployment_id, record.updated_at = row.id, now
            trigger = TriggerEvent.INSTANCE_START
        if change.status is TargetStatus.SUCCEEDED and target.label != TargetLabel.BLUE:
            record = _instance_revision(session, row, change.instance_name, now, revisions)
            record.revision, record.updated_at = row.revision, now
        if trigger is not None:
            await self._triggers.queue(session, row, trigger, change.instance_name)

    async def _finish(
        self, session: AsyncSession, row: DeploymentRow, finish: Finish, now: datetime
    ) -> str | None:
        """The deployment ends: targets never started become Skipped, every target records the
        revision its instance was left on, and the rollback (if planned) is created."""
        row.status = deployment_transition(DeploymentStatus(row.status), finish.status)
        row.completed_at = now
        if finish.error is not None:
            row.error_code, row.error_message = finish.error.code, finish.error.message
        await _skip_pending(session, row.id, now)
        await _record_instance_revisions(session, row)
        trigger = {
            DeploymentStatus.SUCCEEDED: TriggerEvent.DEPLOYMENT_SUCCESS,
            DeploymentStatus.FAILED: TriggerEvent.DEPLOYMENT_FAILURE,
            DeploymentStatus.STOPPED: TriggerEvent.DEPLOYMENT_STOP,
        }[finish.status]
        rollback_id = (
            await self._roll_back(session, row, finish.rollback) if finish.rollback else None
        )
        await self._triggers.queue(session, row, trigger)
        if rollback_id is not None:
            await self._triggers.queue(session, row, TriggerEvent.DEPLOYMENT_ROLLBACK)
        return rollback_id

    async def _roll_back(
        self, session: AsyncSession, row: DeploymentRow, plan: RollbackPlan
    ) -> str | None:
        """Create the rollback of `row`: its instances get the group's last successful
        revision, with its options. Returns the new id, or None (and says why) when there is
        no earlier successful revision."""
        reason = plan.reason
        good = await newest_deployment(session, row.group_id, DeploymentStatus.SUCCEEDED)
        if good is None:
            row.rollback_message = (
                f"{reason}, but there is no earlier successful deployment to roll back to."
            )
            return None
        rollback = insert_deployment(
            session,
            DeploymentRow(
                application_name=row.application_name,
                group_name=row.group_name,
                group_id=row.group_id,
                config_name=row.config_name,
                minimum_healthy=row.minimum_healthy,
                untouched_healthy=row.untouched_healthy,
                revision=good.revision,
                description=f"Rollback of {row.id} to the revision of {good.id}",
                creator=Creator.ROLLBACK,
                file_exists_behavior=row.file_exists_behavior,
                ignore_application_stop_failures=row.ignore_application_stop_failures,
                update_outdated_instances_only=False,
                fetch_through_registry=row.fetch_through_registry,
                deployment_style=row.deployment_style,
                target_groups=row.target_groups,
                auto_rollback=AutoRollbackConfig(),
                rollback_triggering_deployment_id=row.id,
                rollback_message=f"Rolls back {row.id}: {reason}.",
                blue_green=rollback_blue_green(row.blue_green),
                traffic_routing=TrafficRouting(),
                target_instances=(),
            ),
            plan.targets,
            None,
        )
        row.rollback_deployment_id = rollback.id
        row.rollback_message = f"{reason}: rolled back by {rollback.id}."
        return rollback.id


async def _apply_event(session: AsyncSession, change: EventChange, now: datetime) -> None:
    ref = change.ref
    row = await session.get(EventRow, (ref.deployment_id, ref.instance_name, ref.position))
    assert row is not None, "a decision changes only the deployment's events"
    row.status = event_transition(EventStatus(row.status), change.status)
    if change.status is EventStatus.IN_PROGRESS:
        row.started_at = change.started_at or now
        return
    row.ended_at = now
    _set_diagnostics(row, change.diagnostics)


def _instance_revision(
    session: AsyncSession,
    deployment: DeploymentRow,
    instance: str,
    now: datetime,
    revisions: dict[str, InstanceRevisionRow],
) -> InstanceRevisionRow:
    """The instance's revision record (`revisions`: those read), added if it has none."""
    row = revisions.get(instance)
    if row is None:
        row = InstanceRevisionRow(
            group_id=deployment.group_id,
            instance_name=instance,
            revision=None,
            deployment_id=deployment.id,
            updated_at=now,
        )
        session.add(row)
        revisions[instance] = row
    return row


async def _record_instance_revisions(session: AsyncSession, deployment: DeploymentRow) -> None:
    """Each target keeps the revision its instance was left on when the deployment ended."""
    await session.flush()
    current = {
        row.instance_name: row.revision
        for row in await session.scalars(
            select(InstanceRevisionRow).where(InstanceRevisionRow.group_id == deployment.group_id)
        )
    }
    for target in await session.scalars(
        select(TargetRow).where(TargetRow.deployment_id == deployment.id)
    ):
        target.instance_revision = current.get(target.instance_name)


async def _skip_pending(
    session: AsyncSession, deployment_id: str, now: datetime, keep: Sequence[EventRef] = ()
) -> None:
    """Targets not started, or waiting to reroute (Ready), become Skipped, and every event
    not started with them but those in `keep` (held by agents, or started by the decision)."""
    await session.execute(
        update(TargetRow)
        .where(
            TargetRow.deployment_id == deployment_id,
            TargetRow.status.in_([TargetStatus.PENDING, TargetStatus.READY]),
        )
        .values(status=TargetStatus.SKIPPED, updated_at=now)
    )
    kept: dict[str, list[int]] = {}
    for ref in keep:
        kept.setdefault(ref.instance_name, []).append(ref.position)
    pending = (EventRow.deployment_id == deployment_id, EventRow.status == EventStatus.PENDING)
    skip = update(EventRow).values(status=EventStatus.SKIPPED)
    await session.execute(skip.where(*pending, EventRow.instance_name.not_in(kept)))
    for instance_name, positions in kept.items():
        await session.execute(
            skip.where(
                *pending,
                EventRow.instance_name == instance_name,
                EventRow.position.not_in(positions),
            )
        )


def _set_diagnostics(row: EventRow, diagnostics: Diagnostics) -> None:
    row.error_code = diagnostics.error_code
    row.script_name = diagnostics.script_name
    row.message = diagnostics.message
    row.log_tail = diagnostics.log_tail
