"""Persistence of deployment groups, deployments, targets and events (the orchestrator's tables).

Every public method is one transaction, so each state change is all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import utcnow
from services.core.db import Database
from services.core.errors import FailedPrecondition, NotFound
from services.core.signal import ChangeSignal
from services.orchestrator.applying import DecisionWriter
from services.orchestrator.bluegreen import TrafficRouting
from services.orchestrator.bulk import (
    record_results,
)
from services.orchestrator.decision import (
    Decision,
    Snapshot,
)
from services.orchestrator.domain import (
    Deployment,
    DeploymentQuery,
    DeploymentRequest,
    ErrorInformation,
    EventRef,
    InstanceRevision,
    PlannedTarget,
    Target,
)
from services.orchestrator.group_store import newest_deployment
from services.orchestrator.groups import DeploymentGroup, TriggerEvent
from services.orchestrator.happenings import (
    Decide,
    Happening,
    Step,
)
from services.orchestrator.known import KnownTargets
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
    GroupRow,
    InstanceRevisionRow,
)
from services.orchestrator.states import (
    ACTIVE_DEPLOYMENT,
    DeploymentStatus,
    TargetStatus,
)
from services.orchestrator.trigger_queue import TriggerQueue

FLEET_CURSOR = "fleet"


class DeploymentStore:
    def __init__(self, db: Database, outbox: ChangeSignal | None = None) -> None:
        self._db = db
        self._triggers = TriggerQueue(outbox or ChangeSignal())
        """Wakes the dispatcher after trigger deliveries were queued, so it sends them now."""
        self._writer = DecisionWriter(self._triggers)

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
                    revision=request.revision,
                    description=request.description,
                    creator=request.creator,
                    file_exists_behavior=request.file_exists_behavior,
                    ignore_application_stop_failures=request.ignore_application_stop_failures,
                    update_outdated_instances_only=request.update_outdated_instances_only,
                    fetch_through_registry=group.fetch_through_registry,
                    deployment_style=group.style,
                    target_groups=tuple(group.traffic_groups),
                    auto_rollback=request.auto_rollback or group.auto_rollback,
                    blue_green=group.blue_green,
                    traffic_routing=routing or TrafficRouting(),
                    target_instances=tuple(request.target_instances),
                    alarms=request.alarms or group.alarms,
                ),
                targets,
                error,
            )
            if error is not None:
                await self._triggers.queue(session, row, TriggerEvent.DEPLOYMENT_FAILURE)
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
        if q.application_name is not None:
            query = query.where(DeploymentRow.application_name == q.application_name)
        if q.group_id is not None:
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
            return [(created, id_) for created, id_ in rows]

    async def active_ids(self, group_id: str | None = None) -> list[str]:
        """The active deployments (of one group, when named), oldest first."""
        query = select(DeploymentRow.id).where(
            DeploymentRow.status.in_([str(s) for s in ACTIVE_DEPLOYMENT])
        )
        if group_id is not None:
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
                row.instance_name: InstanceRevision(row.revision, row.updated_at) for row in rows
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
            rollback_id = await self._writer.apply(session, row, decision, now)
        return Step(True, decision, tuple(happened), deployment, targets, tuple(ended), rollback_id)

    async def in_progress_events(self, deployment_id: str) -> list[EventRef]:
        """Events dispatched but not finished: re-sent after a restart (dispatch is idempotent)."""
        async with self._db.read() as session:
            return await running_events(session, deployment_id)

    async def cursor(self) -> int:
        async with self._db.read() as session:
            row = await session.get(CursorRow, FLEET_CURSOR)
            return row.sequence if row else 0


async def _deployment_row(
    session: AsyncSession, deployment_id: str, lock: bool = False
) -> DeploymentRow:
    row = await session.get(DeploymentRow, deployment_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"deployment {deployment_id!r} does not exist")
    return row


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
