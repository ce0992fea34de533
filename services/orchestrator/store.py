"""Persistence of deployment groups, deployments, targets and events (the orchestrator's tables).

Every public method is one transaction, so each state change is all-or-nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import as_utc, utcnow
from services.core.db import Database
from services.core.diagnostics import Diagnostics
from services.core.errors import FailedPrecondition, NotFound
from services.core.revision import revision_from_json, revision_to_json
from services.core.signal import ChangeSignal
from services.orchestrator.bluegreen import TrafficRouting, rollback_blue_green
from services.orchestrator.bulk import (
    TARGET_ENDED,
    instance_revisions,
    load_rows,
    record_results,
    skip_pending_events,
)
from services.orchestrator.decision import (
    Decision,
    EventChange,
    Finish,
    RollbackPlan,
    Snapshot,
    TargetChange,
)
from services.orchestrator.domain import (
    AutoRollbackConfig,
    Creator,
    Deployment,
    DeploymentGroup,
    DeploymentQuery,
    DeploymentRequest,
    ErrorInformation,
    EventRef,
    InstanceRevision,
    PlannedTarget,
    Target,
    TargetLabel,
    TriggerConfig,
    TriggerEvent,
)
from services.orchestrator.group_store import (
    alarms_to_json,
    auto_rollback_to_json,
    blue_green_from_json,
    blue_green_to_json,
    filters_to_json,
    newest_deployment,
    routing_to_json,
    style_to_json,
    triggers_of,
)
from services.orchestrator.happenings import (
    Decide,
    Happening,
    Step,
)
from services.orchestrator.known import KnownTargets
from services.orchestrator.notifications import deployment_payload, instance_payload
from services.orchestrator.outbox import DeliveryStore
from services.orchestrator.recording import insert_deployment, record_happening
from services.orchestrator.results import EventEnded
from services.orchestrator.rows import (
    deployment_from_row,
    read_targets,
    running_events,
    target_counts,
)
from services.orchestrator.schema import (
    CursorRow,
    DeploymentRow,
    EventRow,
    GroupRow,
    InstanceRevisionRow,
    TargetRow,
    TriggerDeliveryRow,
)
from services.orchestrator.states import (
    ACTIVE_DEPLOYMENT,
    DeploymentStatus,
    EventStatus,
    TargetStatus,
    deployment_transition,
    event_transition,
    target_transition,
)

FLEET_CURSOR = "fleet"


class DeploymentStore:
    def __init__(self, db: Database, outbox: ChangeSignal | None = None) -> None:
        self._db = db
        self._outbox = outbox or ChangeSignal()
        """Notified after trigger deliveries were queued, so the dispatcher sends them now."""

    async def create(
        self,
        request: DeploymentRequest,
        group: DeploymentGroup,
        minimum_healthy: int,
        targets: Sequence[PlannedTarget],
        error: ErrorInformation | None,
        untouched_healthy: int = 0,
        routing: TrafficRouting | None = None,
    ) -> str:
        """Insert a deployment with its targets and their pending events, status Created —
        or Failed at once when `error` says it cannot run. One deployment at a time per group
        (CodeDeploy's rule): FailedPrecondition names the active one."""
        async with self._db.transaction() as session:
            await session.get(GroupRow, group.id, with_for_update=True)  # serializes creates
            active = await session.scalar(
                select(DeploymentRow.id).where(
                    DeploymentRow.group_id == group.id,
                    DeploymentRow.status.in_([str(s) for s in ACTIVE_DEPLOYMENT]),
                )
            )
            if active is not None:
                raise FailedPrecondition(
                    f"deployment group {group.name!r} already has an active deployment "
                    f"{active}; wait for it to finish or stop it"
                )
            row = insert_deployment(
                session,
                DeploymentRow(
                    application_name=request.application_name,
                    group_name=group.name,
                    group_id=group.id,
                    config_name=request.config_name,
                    minimum_healthy=minimum_healthy,
                    untouched_healthy=untouched_healthy,
                    revision=revision_to_json(request.revision),
                    description=request.description,
                    creator=request.creator,
                    file_exists_behavior=request.file_exists_behavior,
                    ignore_application_stop_failures=request.ignore_application_stop_failures,
                    update_outdated_instances_only=request.update_outdated_instances_only,
                    fetch_through_registry=group.fetch_through_registry,
                    deployment_style=style_to_json(group.style),
                    target_groups=json.dumps(list(group.traffic_groups)),
                    auto_rollback=auto_rollback_to_json(
                        request.auto_rollback or group.auto_rollback
                    ),
                    blue_green=blue_green_to_json(group.blue_green),
                    traffic_routing=routing_to_json(routing or TrafficRouting()),
                    target_instances=json.dumps(filters_to_json(request.target_instances)),
                    alarms=alarms_to_json(request.alarms or group.alarms),
                ),
                targets,
                error,
            )
            if error is not None:
                await self._notify(session, row, TriggerEvent.DEPLOYMENT_FAILURE)
        return row.id

    async def get(self, deployment_id: str) -> Deployment:
        async with self._db.read() as session:
            return deployment_from_row(await _deployment_row(session, deployment_id))

    async def group_of(self, deployment_id: str) -> tuple[str, str] | None:
        """(application, deployment group) of a deployment, None when there is none: what a
        call naming the deployment is authorized against."""
        async with self._db.read() as session:
            row = (
                await session.execute(
                    select(DeploymentRow.application_name, DeploymentRow.group_name).where(
                        DeploymentRow.id == deployment_id
                    )
                )
            ).first()
            return None if row is None else (row[0], row[1])

    async def page(self, q: DeploymentQuery) -> list[tuple[datetime, str]]:
        """(create time, id) of up to q.limit deployments, newest first (keyset paging)."""
        query = select(DeploymentRow.created_at, DeploymentRow.id).order_by(
            DeploymentRow.created_at.desc(), DeploymentRow.id.desc()
        )
        if q.application_name:
            query = query.where(DeploymentRow.application_name == q.application_name)
        if q.group_id:
            query = query.where(DeploymentRow.group_id == q.group_id)
        if q.statuses:
            query = query.where(DeploymentRow.status.in_([str(s) for s in q.statuses]))
        if q.created_from is not None:
            query = query.where(DeploymentRow.created_at >= q.created_from)
        if q.created_to is not None:
            query = query.where(DeploymentRow.created_at <= q.created_to)
        if q.after is not None:
            created, last_id = q.after
            query = query.where(
                (DeploymentRow.created_at < created)
                | ((DeploymentRow.created_at == created) & (DeploymentRow.id < last_id))
            )
        async with self._db.read() as session:
            rows = await session.execute(query.limit(q.limit))
            return [(as_utc(created) or utcnow(), id_) for created, id_ in rows]

    async def active_ids(self, group_id: str = "") -> list[str]:
        query = select(DeploymentRow.id).where(
            DeploymentRow.status.in_([str(s) for s in ACTIVE_DEPLOYMENT])
        )
        if group_id:
            query = query.where(DeploymentRow.group_id == group_id)
        async with self._db.read() as session:
            return list(await session.scalars(query.order_by(DeploymentRow.created_at)))

    async def last_successful(self, group_id: str) -> Deployment | None:
        async with self._db.read() as session:
            row = await newest_deployment(session, group_id, DeploymentStatus.SUCCEEDED)
            return deployment_from_row(row) if row else None

    async def instance_revisions(self, group_id: str) -> dict[str, InstanceRevision]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(InstanceRevisionRow).where(InstanceRevisionRow.group_id == group_id)
            )
            return {
                row.instance_name: InstanceRevision(
                    revision_from_json(row.revision) if row.revision else None,
                    as_utc(row.updated_at) or utcnow(),
                )
                for row in rows
            }

    async def targets(self, deployment_id: str, with_events: bool = True) -> list[Target]:
        """The deployment's targets (`with_events`: and their lifecycle events)."""
        async with self._db.read() as session:
            await _deployment_row(session, deployment_id)
            return await read_targets(session, deployment_id, with_events=with_events)

    async def with_targets(self, deployment_id: str) -> tuple[Deployment, list[Target]]:
        """The deployment and its targets with their events, as one read sees them."""
        async with self._db.read() as session:
            deployment = deployment_from_row(await _deployment_row(session, deployment_id))
            return deployment, await read_targets(session, deployment_id)

    async def with_counts(self, deployment_id: str) -> tuple[Deployment, dict[TargetStatus, int]]:
        """The deployment and how many of its targets are in each status, as one read sees
        them (its overview: what GetDeployment and a summary watcher show)."""
        async with self._db.read() as session:
            deployment = deployment_from_row(await _deployment_row(session, deployment_id))
            return deployment, await target_counts(session, deployment_id)

    async def target(self, deployment_id: str, instance_name: str) -> Target:
        async with self._db.read() as session:
            await _deployment_row(session, deployment_id)
            for target in await read_targets(session, deployment_id, (instance_name,)):
                return target
        raise NotFound(f"target {instance_name!r} is not part of deployment {deployment_id}")

    async def step(
        self,
        deployment_id: str,
        happened: Sequence[Happening],
        decide: Decide,
        cursor: int = 0,
        known: KnownTargets | None = None,
    ) -> Step:
        """Record what happened (and the fleet `cursor`, if given), decide on the deployment
        as it now stands and apply the decision — one transaction. NotFound: no such
        deployment; FailedPrecondition: a stop or continue the deployment's state does not
        allow (nothing is recorded). `known`: the targets as the deployment's runner's last
        step left them (only the runner of a deployment may pass them), kept up to date."""
        known = known or KnownTargets()
        try:
            step = await self._step(deployment_id, happened, decide, cursor, known)
        except BaseException:
            known.forget()
            raise
        if step.recorded:
            known.stepped(step.targets, step.decision)
        return step

    async def _step(
        self,
        deployment_id: str,
        happened: Sequence[Happening],
        decide: Decide,
        cursor: int,
        known: KnownTargets,
    ) -> Step:
        now = utcnow()
        async with self._db.transaction() as session:
            if cursor:
                await _advance_cursor(session, cursor)
            row = await _deployment_row(session, deployment_id, lock=True)
            results = [
                h for h in happened if isinstance(h, EventEnded) and h.ref.deployment_id == row.id
            ]
            ended = [
                (result, seconds)
                for result, seconds in zip(
                    results, await record_results(session, row, results, now), strict=True
                )
                if seconds is not None
            ]
            changed = bool(ended)
            for happening in happened:
                if not isinstance(happening, EventEnded):
                    await record_happening(session, row, happening, now)
                    changed = True  # anything but a result asks for a decision
            if not changed:
                return Step(recorded=False, decision=Decision(), happened=tuple(happened))
            deployment = deployment_from_row(row)
            wanted = known.to_read(happened)
            read = await read_targets(session, deployment_id, wanted)
            targets = known.merged(read, wanted)
            decision = decide(Snapshot(deployment, targets), now)
            rollback_id = await self._apply(session, row, decision, now)
        return Step(True, decision, tuple(happened), deployment, targets, tuple(ended), rollback_id)

    async def _apply(
        self, session: AsyncSession, row: DeploymentRow, decision: Decision, now: datetime
    ) -> str:
        """Store a decision's changes with their trigger deliveries; returns the id of the
        rollback it created, if any."""
        if decision.begin:
            row.status = deployment_transition(
                DeploymentStatus.CREATED, DeploymentStatus.IN_PROGRESS
            )
            row.started_at = now
            await self._notify(session, row, TriggerEvent.DEPLOYMENT_START)
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
            await self._notify(session, row, TriggerEvent.DEPLOYMENT_READY)
        if decision.finish is not None:
            return await self._finish(session, row, decision.finish, now)
        return ""

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
            await self._notify(session, row, trigger, change.instance_name)

    async def _finish(
        self, session: AsyncSession, row: DeploymentRow, finish: Finish, now: datetime
    ) -> str:
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
            await self._roll_back(session, row, finish.rollback) if finish.rollback else ""
        )
        await self._notify(session, row, trigger)
        if rollback_id:
            await self._notify(session, row, TriggerEvent.DEPLOYMENT_ROLLBACK)
        return rollback_id

    async def in_progress_events(self, deployment_id: str) -> list[EventRef]:
        """Events dispatched but not finished: re-sent after a restart (dispatch is idempotent)."""
        async with self._db.read() as session:
            return await running_events(session, deployment_id)

    async def cursor(self) -> int:
        async with self._db.read() as session:
            row = await session.get(CursorRow, FLEET_CURSOR)
            return row.sequence if row else 0

    async def _roll_back(
        self, session: AsyncSession, row: DeploymentRow, plan: RollbackPlan
    ) -> str:
        """Create the rollback of `row`: its instances get the group's last successful
        revision, with its options. Returns the new id, or "" (and says why) when there is
        no earlier successful revision."""
        reason = plan.reason
        good = await newest_deployment(session, row.group_id, DeploymentStatus.SUCCEEDED)
        if good is None:
            row.rollback_message = (
                f"{reason}, but there is no earlier successful deployment to roll back to."
            )
            return ""
        blue_green = blue_green_from_json(row.blue_green)
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
                auto_rollback=auto_rollback_to_json(AutoRollbackConfig()),
                rollback_triggering_deployment_id=row.id,
                rollback_message=f"Rolls back {row.id}: {reason}.",
                blue_green=blue_green_to_json(rollback_blue_green(blue_green)),
                traffic_routing=routing_to_json(TrafficRouting()),
                target_instances="[]",
            ),
            plan.targets,
            None,
        )
        row.rollback_deployment_id = rollback.id
        row.rollback_message = f"{reason}: rolled back by {rollback.id}."
        return rollback.id

    async def _notify(
        self, session: AsyncSession, row: DeploymentRow, event: TriggerEvent, instance: str = ""
    ) -> None:
        """Queue a delivery for every trigger of the group that wants `event` (the outbox:
        written with the state change, sent after it commits)."""
        triggers = [t for t in await _group_triggers(session, row.group_id) if event in t.events]
        if not triggers:
            return
        await session.flush()
        deployment = deployment_from_row(row)
        if instance:
            target = next(
                t
                for t in await read_targets(session, row.id, (instance,))
                if t.instance_name == instance
            )
            payloads = {
                t.name: instance_payload(t.name, event, deployment, target) for t in triggers
            }
        else:
            statuses = await session.scalars(
                select(TargetRow.status).where(TargetRow.deployment_id == row.id)
            )
            targets = [TargetStatus(s) for s in statuses]
            payloads = {
                t.name: deployment_payload(t.name, event, deployment, targets) for t in triggers
            }
        now = utcnow()
        for trigger in triggers:
            session.add(
                TriggerDeliveryRow(
                    group_id=row.group_id,
                    trigger_name=trigger.name,
                    url=trigger.url,
                    event=event,
                    deployment_id=row.id,
                    instance_id=instance,
                    payload=json.dumps(payloads[trigger.name]),
                    status=DeliveryStore.PENDING,
                    attempts=0,
                    http_status=0,
                    error="",
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        if not sa_event.contains(session.sync_session, "after_commit", self._wake):
            sa_event.listen(session.sync_session, "after_commit", self._wake, once=True)

    def _wake(self, _session: object) -> None:
        self._outbox.notify()


async def _deployment_row(
    session: AsyncSession, deployment_id: str, lock: bool = False
) -> DeploymentRow:
    row = await session.get(DeploymentRow, deployment_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"deployment {deployment_id!r} does not exist")
    return row


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


async def _group_triggers(session: AsyncSession, group_id: str) -> tuple[TriggerConfig, ...]:
    """The group's triggers, read once per transaction (`session.info` keeps them): a decision
    may notify for a thousand targets."""
    known: dict[str, tuple[TriggerConfig, ...]] = session.info.setdefault("group_triggers", {})
    if group_id not in known:
        group = await session.get(GroupRow, group_id)
        known[group_id] = triggers_of(group) if group else ()
    return known[group_id]


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


async def _advance_cursor(session: AsyncSession, sequence: int) -> None:
    """Move the fleet cursor forward to `sequence` (never back): one statement once the
    cursor exists."""
    moved = await session.execute(
        update(CursorRow)
        .where(CursorRow.name == FLEET_CURSOR, CursorRow.sequence < sequence)
        .values(sequence=sequence)
    )
    unmoved = moved.rowcount == 0  # type: ignore[attr-defined]
    if unmoved and await session.get(CursorRow, FLEET_CURSOR) is None:
        session.add(CursorRow(name=FLEET_CURSOR, sequence=sequence))


def _set_diagnostics(row: EventRow, diagnostics: Diagnostics) -> None:
    row.error_code = diagnostics.error_code
    row.script_name = diagnostics.script_name
    row.message = diagnostics.message
    row.log_tail = diagnostics.log_tail
