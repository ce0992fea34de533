"""Persistence of deployment groups, deployments, targets and events (the orchestrator's tables).

Every public method is one transaction, so each state change is all-or-nothing.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import as_utc, utcnow
from services.core.db import Database
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.errors import FailedPrecondition, NotFound
from services.core.revision import revision_from_json, revision_to_json
from services.core.signal import ChangeSignal
from services.orchestrator.bluegreen import TrafficRouting, rollback_blue_green
from services.orchestrator.domain import (
    AutoRollbackConfig,
    AutoRollbackEvent,
    BlueGreenProgress,
    Creator,
    Deployment,
    DeploymentErrorCode,
    DeploymentGroup,
    DeploymentQuery,
    DeploymentRequest,
    DeploymentType,
    ErrorInformation,
    FileExistsBehavior,
    InstanceRevision,
    LifecycleEvent,
    PlannedTarget,
    RollbackInfo,
    Target,
    TargetLabel,
    TriggerEvent,
)
from services.orchestrator.group_store import (
    auto_rollback_from_json,
    auto_rollback_to_json,
    blue_green_from_json,
    blue_green_to_json,
    filters_from_json,
    filters_to_json,
    newest_deployment,
    routing_from_json,
    routing_to_json,
    style_from_json,
    style_to_json,
    triggers_of,
)
from services.orchestrator.lifecycle import (
    ALLOW_TRAFFIC_EVENTS,
    BLOCK_TRAFFIC_EVENTS,
    REROUTE_GATE,
)
from services.orchestrator.notifications import deployment_payload, instance_payload
from services.orchestrator.outbox import DeliveryStore
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
_ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class EventRef:
    """One lifecycle event of one instance in one deployment; also its agent command's id."""

    deployment_id: str
    instance_name: str
    position: int
    name: str

    @property
    def command_id(self) -> str:
        return f"{self.deployment_id}:{self.instance_name}:{self.position}:{self.name}"

    @classmethod
    def parse(cls, command_id: str) -> EventRef | None:
        parts = command_id.split(":")
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])


@dataclass(frozen=True)
class EventResult:
    """What recording an event's result did."""

    recorded: bool
    """False when the event was not in progress (a duplicate report)."""
    duration_seconds: float = 0.0
    next_event: EventRef | None = None
    """The instance's next event, now InProgress, to dispatch."""


def new_deployment_id() -> str:
    """CodeDeploy's form: d- and nine upper-case letters or digits."""
    return "d-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


@dataclass(frozen=True)
class StopResult:
    in_flight: tuple[EventRef, ...]
    """Lifecycle events still running: the deployment is Stopped when they end."""


@dataclass(frozen=True)
class FinishResult:
    finished: bool
    """False when the deployment had already finished."""
    rollback_id: str = ""
    """The rollback deployment created with it, to start."""


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
            row = _insert_deployment(
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
                ),
                targets,
                error,
            )
            if error is not None:
                await self._notify(session, row, TriggerEvent.DEPLOYMENT_FAILURE)
        return row.id

    async def get(self, deployment_id: str) -> Deployment:
        async with self._db.read() as session:
            return _deployment(await _deployment_row(session, deployment_id))

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
            return _deployment(row) if row else None

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

    async def targets(self, deployment_id: str) -> list[Target]:
        async with self._db.read() as session:
            await _deployment_row(session, deployment_id)
            return await _targets(session, deployment_id)

    async def target(self, deployment_id: str, instance_name: str) -> Target:
        async with self._db.read() as session:
            await _deployment_row(session, deployment_id)
            for target in await _targets(session, deployment_id, instance_name):
                return target
        raise NotFound(f"target {instance_name!r} is not part of deployment {deployment_id}")

    async def begin(self, deployment_id: str) -> DeploymentStatus:
        """Created → InProgress. Returns the status it is in afterwards."""
        async with self._db.transaction() as session:
            row = await _deployment_row(session, deployment_id, lock=True)
            status = DeploymentStatus(row.status)
            if status is DeploymentStatus.CREATED:
                row.status = deployment_transition(status, DeploymentStatus.IN_PROGRESS)
                row.started_at = utcnow()
                await self._notify(session, row, TriggerEvent.DEPLOYMENT_START)
            return DeploymentStatus(row.status)

    async def start_targets(self, deployment_id: str, instances: Sequence[str]) -> list[EventRef]:
        """Targets Pending → InProgress with their first event InProgress; returns those events."""
        started: list[EventRef] = []
        now = utcnow()
        async with self._db.transaction() as session:
            deployment = await _deployment_row(session, deployment_id)
            for instance in instances:
                target = await session.get(TargetRow, (deployment_id, instance))
                if target is None:
                    continue
                target.status = target_transition(
                    TargetStatus(target.status), TargetStatus.IN_PROGRESS
                )
                target.updated_at = now
                await _record_attempt(session, deployment, instance, now)
                first = await session.get(EventRow, (deployment_id, instance, 0))
                if first is not None:
                    started.append(_start_event(first, now))
                await self._notify(session, deployment, TriggerEvent.INSTANCE_START, instance)
        return started

    async def resume_targets(self, deployment_id: str, instances: Sequence[str]) -> list[EventRef]:
        """Blue/green reroute: Ready targets → InProgress with their next event started."""
        started: list[EventRef] = []
        now = utcnow()
        async with self._db.transaction() as session:
            for instance in instances:
                target = await session.get(TargetRow, (deployment_id, instance))
                if target is None or target.status != TargetStatus.READY:
                    continue
                target.status = target_transition(TargetStatus.READY, TargetStatus.IN_PROGRESS)
                target.updated_at = now
                nxt = await session.scalar(
                    select(EventRow)
                    .where(
                        EventRow.deployment_id == deployment_id,
                        EventRow.instance_name == instance,
                        EventRow.status == EventStatus.PENDING,
                    )
                    .order_by(EventRow.position)
                    .limit(1)
                )
                if nxt is not None:
                    started.append(_start_event(nxt, now))
        return started

    async def add_targets(self, deployment_id: str, targets: Sequence[PlannedTarget]) -> None:
        """Blue/green with a provisioned replacement fleet: its instances join the deployment."""
        now = utcnow()
        async with self._db.transaction() as session:
            await _deployment_row(session, deployment_id, lock=True)
            existing = {
                name
                for name in await session.scalars(
                    select(TargetRow.instance_name).where(TargetRow.deployment_id == deployment_id)
                )
            }
            new = [t for t in targets if t.instance_name not in existing]
            _add_targets(session, deployment_id, new, now, first_position=len(existing))

    async def record_progress(self, deployment_id: str, **changes: object) -> None:
        """Store how far a blue/green deployment got (BlueGreenProgress fields)."""
        allowed = {f.name for f in dataclasses.fields(BlueGreenProgress)}
        unknown = set(changes) - allowed
        assert not unknown, f"not progress fields: {unknown}"
        async with self._db.transaction() as session:
            row = await _deployment_row(session, deployment_id, lock=True)
            for name, value in changes.items():
                setattr(row, name, value)

    async def mark_ready(self, deployment_id: str, until: datetime) -> None:
        """InProgress → Ready: the replacement fleet waits for continue-deployment."""
        async with self._db.transaction() as session:
            row = await _deployment_row(session, deployment_id, lock=True)
            row.status = deployment_transition(DeploymentStatus(row.status), DeploymentStatus.READY)
            row.ready_until = until
            await self._notify(session, row, TriggerEvent.DEPLOYMENT_READY)

    async def continue_deployment(self, deployment_id: str, termination: bool) -> None:
        """Ready → InProgress (reroute now), or with `termination` end the termination wait.
        FailedPrecondition when the deployment is not waiting that way."""
        now = utcnow()
        async with self._db.transaction() as session:
            row = await _deployment_row(session, deployment_id, lock=True)
            status = DeploymentStatus(row.status)
            if termination:
                terminate_at = as_utc(row.terminate_at)
                if status not in ACTIVE_DEPLOYMENT or terminate_at is None or terminate_at <= now:
                    raise FailedPrecondition(
                        f"deployment {deployment_id} is not waiting to terminate its original "
                        "instances"
                    )
                row.terminate_at = now
                return
            if status is not DeploymentStatus.READY:
                raise FailedPrecondition(
                    f"deployment {deployment_id} is {status}, not Ready: there is no rerouting "
                    "to continue"
                )
            row.status = deployment_transition(status, DeploymentStatus.IN_PROGRESS)
            row.continued = True

    async def in_progress_events(self, deployment_id: str) -> list[EventRef]:
        """Events dispatched but not finished: re-sent after a restart (dispatch is idempotent)."""
        async with self._db.read() as session:
            return await _running_events(session, deployment_id)

    async def finish_event(
        self,
        ref: EventRef,
        succeeded: bool,
        diagnostics: Diagnostics,
        sequence: int,
        continue_on_failure: bool,
    ) -> EventResult:
        """Record an event's result, start the instance's next event or finish its target, and
        advance the fleet cursor — in one transaction. A deployment asked to stop starts no
        further event: the target ends Failed (half-deployed) unless this was its last event."""
        now = utcnow()
        async with self._db.transaction() as session:
            await _advance_cursor(session, sequence)
            event = await session.get(
                EventRow,
                (ref.deployment_id, ref.instance_name, ref.position),
                with_for_update=True,
            )
            if event is None or event.status != EventStatus.IN_PROGRESS:
                return EventResult(recorded=False)
            event.status = event_transition(
                EventStatus.IN_PROGRESS, EventStatus.SUCCEEDED if succeeded else EventStatus.FAILED
            )
            event.ended_at = now
            started = as_utc(event.started_at)
            duration = (now - started).total_seconds() if started else 0.0
            _set_diagnostics(event, diagnostics)
            deployment = await _deployment_row(session, ref.deployment_id)
            target = await session.get(TargetRow, (ref.deployment_id, ref.instance_name))
            assert target is not None, "every event belongs to a target"
            target.updated_at = now
            nxt = await session.get(
                EventRow, (ref.deployment_id, ref.instance_name, ref.position + 1)
            )
            passed = succeeded or continue_on_failure
            if passed and nxt is not None and not deployment.stop_requested:
                if target.label == TargetLabel.GREEN and nxt.name == REROUTE_GATE:
                    target.status = target_transition(
                        TargetStatus(target.status), TargetStatus.READY
                    )
                    await self._notify(
                        session, deployment, TriggerEvent.INSTANCE_READY, ref.instance_name
                    )
                    return EventResult(True, duration)
                return EventResult(True, duration, _start_event(nxt, now))
            final = TargetStatus.SUCCEEDED if passed and nxt is None else TargetStatus.FAILED
            target.status = target_transition(TargetStatus(target.status), final)
            await _skip_pending_events(session, ref.deployment_id, ref.instance_name)
            if final is TargetStatus.SUCCEEDED and target.label != TargetLabel.BLUE:
                await _record_success(session, deployment, ref.instance_name, now)
            trigger = (
                TriggerEvent.INSTANCE_SUCCESS
                if final is TargetStatus.SUCCEEDED
                else TriggerEvent.INSTANCE_FAILURE
            )
            await self._notify(session, deployment, trigger, ref.instance_name)
            return EventResult(True, duration)

    async def skip_cursor(self, sequence: int) -> None:
        """Advance the cursor past an update that needs no state change."""
        async with self._db.transaction() as session:
            await _advance_cursor(session, sequence)

    async def cursor(self) -> int:
        async with self._db.read() as session:
            row = await session.get(CursorRow, FLEET_CURSOR)
            return row.sequence if row else 0

    async def request_stop(self, deployment_id: str, roll_back: bool | None) -> StopResult:
        """Start no more instances or events; `roll_back` None takes the deployment's
        DEPLOYMENT_STOP_ON_REQUEST setting. FailedPrecondition once it has finished."""
        now = utcnow()
        async with self._db.transaction() as session:
            row = await _deployment_row(session, deployment_id, lock=True)
            if DeploymentStatus(row.status) not in ACTIVE_DEPLOYMENT:
                raise FailedPrecondition(
                    f"deployment {deployment_id} has already finished ({row.status})"
                )
            if not row.stop_requested:
                config = auto_rollback_from_json(row.auto_rollback)
                row.stop_requested = True
                row.roll_back_on_stop = (
                    config.covers(AutoRollbackEvent.DEPLOYMENT_STOP_ON_REQUEST)
                    if roll_back is None
                    else roll_back
                )
                row.error_code = DeploymentErrorCode.MANUAL_STOP
                row.error_message = "The deployment was stopped by a user request."
                row.status_messages = json.dumps(
                    [*json.loads(row.status_messages or "[]"), "Stop requested"]
                )
                await _skip_pending(session, deployment_id, now)
            return StopResult(in_flight=tuple(await _running_events(session, deployment_id)))

    async def finish(
        self,
        deployment_id: str,
        status: DeploymentStatus,
        error: ErrorInformation | None,
        roll_back: str = "",
    ) -> FinishResult:
        """InProgress → Succeeded/Failed/Stopped; targets never started become Skipped and every
        target records the revision its instance was left on. A non-empty `roll_back` (its
        reason) also creates the rollback deployment, in the same transaction."""
        now = utcnow()
        async with self._db.transaction() as session:
            row = await _deployment_row(session, deployment_id, lock=True)
            current = DeploymentStatus(row.status)
            if current not in ACTIVE_DEPLOYMENT:
                return FinishResult(finished=False)
            row.status = deployment_transition(current, status)
            row.completed_at = now
            if error is not None:
                row.error_code, row.error_message = error.code, error.message
            await _skip_pending(session, deployment_id, now)
            await _record_instance_revisions(session, row)
            trigger = {
                DeploymentStatus.SUCCEEDED: TriggerEvent.DEPLOYMENT_SUCCESS,
                DeploymentStatus.FAILED: TriggerEvent.DEPLOYMENT_FAILURE,
                DeploymentStatus.STOPPED: TriggerEvent.DEPLOYMENT_STOP,
            }[status]
            rollback_id = await self._roll_back(session, row, roll_back) if roll_back else ""
            await self._notify(session, row, trigger)
            if rollback_id:
                await self._notify(session, row, TriggerEvent.DEPLOYMENT_ROLLBACK)
            return FinishResult(True, rollback_id)

    async def _roll_back(self, session: AsyncSession, row: DeploymentRow, reason: str) -> str:
        """Create the rollback of `row`: its instances get the group's last successful
        revision, with its options. Returns the new id, or "" (and says why) when there is
        no earlier successful revision."""
        good = await newest_deployment(session, row.group_id, DeploymentStatus.SUCCEEDED)
        if good is None:
            row.rollback_message = (
                f"{reason}, but there is no earlier successful deployment to roll back to."
            )
            return ""
        targets = await _rollback_targets(session, row)
        blue_green = blue_green_from_json(row.blue_green)
        rollback = _insert_deployment(
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
            targets,
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
        group = await session.get(GroupRow, row.group_id)
        triggers = [t for t in triggers_of(group) if event in t.events] if group else []
        if not triggers:
            return
        await session.flush()
        deployment = _deployment(row)
        if instance:
            target = next(
                t for t in await _targets(session, row.id, instance) if t.instance_name == instance
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


def _insert_deployment(
    session: AsyncSession,
    row: DeploymentRow,
    targets: Sequence[PlannedTarget],
    error: ErrorInformation | None,
) -> DeploymentRow:
    """Add a new deployment (fields other than identity and state already set on `row`) with
    its targets and their events: Created, or Failed at once with `error`."""
    now = utcnow()
    row.id = new_deployment_id()
    row.status = DeploymentStatus.FAILED if error else DeploymentStatus.CREATED
    row.created_at = now
    row.completed_at = now if error else None
    row.error_code = error.code if error else None
    row.error_message = error.message if error else None
    session.add(row)
    _add_targets(session, row.id, targets, now, skipped=error is not None)
    return row


def _add_targets(
    session: AsyncSession,
    deployment_id: str,
    targets: Sequence[PlannedTarget],
    now: datetime,
    skipped: bool = False,
    first_position: int = 0,
) -> None:
    for position, planned in enumerate(targets, start=first_position):
        session.add(
            TargetRow(
                deployment_id=deployment_id,
                instance_name=planned.instance_name,
                position=position,
                status=TargetStatus.SKIPPED if skipped else TargetStatus.PENDING,
                updated_at=now,
                label=planned.label,
            )
        )
        for index, name in enumerate(planned.events):
            session.add(
                EventRow(
                    deployment_id=deployment_id,
                    instance_name=planned.instance_name,
                    position=index,
                    name=name,
                    status=EventStatus.SKIPPED if skipped else EventStatus.PENDING,
                    script_name="",
                    message="",
                    log_tail="",
                )
            )


async def _rollback_targets(session: AsyncSession, row: DeploymentRow) -> list[PlannedTarget]:
    """The rollback's targets: in place, the same instances and events; blue/green, the
    originals rejoin the load balancer and the replacements leave it — nothing is reinstalled."""
    rows = list(
        await session.scalars(
            select(TargetRow).where(TargetRow.deployment_id == row.id).order_by(TargetRow.position)
        )
    )
    if style_from_json(row.deployment_style).type is DeploymentType.BLUE_GREEN:
        swapped = {
            TargetLabel.BLUE: (TargetLabel.GREEN, ALLOW_TRAFFIC_EVENTS),
            TargetLabel.GREEN: (TargetLabel.BLUE, BLOCK_TRAFFIC_EVENTS),
        }
        planned = []
        for target in rows:
            label, traffic_events = swapped[TargetLabel(target.label)]
            planned.append(PlannedTarget(target.instance_name, traffic_events, label))
        return planned
    positions = await session.execute(
        select(EventRow.position, EventRow.name)
        .where(EventRow.deployment_id == row.id)
        .distinct()
        .order_by(EventRow.position)
    )
    names = tuple(name for _, name in positions)
    return [PlannedTarget(t.instance_name, names) for t in rows]


async def _targets(session: AsyncSession, deployment_id: str, instance: str = "") -> list[Target]:
    targets = select(TargetRow).where(TargetRow.deployment_id == deployment_id)
    events = select(EventRow).where(EventRow.deployment_id == deployment_id)
    if instance:
        targets = targets.where(TargetRow.instance_name == instance)
        events = events.where(EventRow.instance_name == instance)
    by_instance: dict[str, list[LifecycleEvent]] = {}
    for event in await session.scalars(events.order_by(EventRow.instance_name, EventRow.position)):
        by_instance.setdefault(event.instance_name, []).append(_event(event))
    rows = await session.scalars(targets.order_by(TargetRow.position))
    return [_target(t, by_instance.get(t.instance_name, [])) for t in rows]


async def _instance_revision_row(
    session: AsyncSession, deployment: DeploymentRow, instance: str, now: datetime
) -> InstanceRevisionRow:
    row = await session.get(InstanceRevisionRow, (deployment.group_id, instance))
    if row is None:
        row = InstanceRevisionRow(
            group_id=deployment.group_id,
            instance_name=instance,
            revision=None,
            deployment_id=deployment.id,
            updated_at=now,
        )
        session.add(row)
    return row


async def _record_attempt(
    session: AsyncSession, deployment: DeploymentRow, instance: str, now: datetime
) -> None:
    row = await _instance_revision_row(session, deployment, instance, now)
    row.deployment_id, row.updated_at = deployment.id, now


async def _record_success(
    session: AsyncSession, deployment: DeploymentRow, instance: str, now: datetime
) -> None:
    row = await _instance_revision_row(session, deployment, instance, now)
    row.revision, row.updated_at = deployment.revision, now


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


async def _skip_pending(session: AsyncSession, deployment_id: str, now: datetime) -> None:
    """Targets not started, or waiting to reroute (Ready), become Skipped, and every event
    not started with them."""
    await session.execute(
        update(TargetRow)
        .where(
            TargetRow.deployment_id == deployment_id,
            TargetRow.status.in_([TargetStatus.PENDING, TargetStatus.READY]),
        )
        .values(status=TargetStatus.SKIPPED, updated_at=now)
    )
    await session.execute(
        update(EventRow)
        .where(EventRow.deployment_id == deployment_id, EventRow.status == EventStatus.PENDING)
        .values(status=EventStatus.SKIPPED)
    )


async def _advance_cursor(session: AsyncSession, sequence: int) -> None:
    row = await session.get(CursorRow, FLEET_CURSOR, with_for_update=True)
    if row is None:
        session.add(CursorRow(name=FLEET_CURSOR, sequence=sequence))
    elif sequence > row.sequence:
        row.sequence = sequence


async def _skip_pending_events(session: AsyncSession, deployment_id: str, instance: str) -> None:
    await session.execute(
        update(EventRow)
        .where(
            EventRow.deployment_id == deployment_id,
            EventRow.instance_name == instance,
            EventRow.status == EventStatus.PENDING,
        )
        .values(status=EventStatus.SKIPPED)
    )


async def _running_events(session: AsyncSession, deployment_id: str) -> list[EventRef]:
    rows = await session.scalars(
        select(EventRow).where(
            EventRow.deployment_id == deployment_id,
            EventRow.status == EventStatus.IN_PROGRESS,
        )
    )
    return [_ref(row) for row in rows]


def _start_event(row: EventRow, now: datetime) -> EventRef:
    row.status = event_transition(EventStatus(row.status), EventStatus.IN_PROGRESS)
    row.started_at = now
    return _ref(row)


def _ref(row: EventRow) -> EventRef:
    return EventRef(row.deployment_id, row.instance_name, row.position, row.name)


def _set_diagnostics(row: EventRow, diagnostics: Diagnostics) -> None:
    row.error_code = diagnostics.error_code
    row.script_name = diagnostics.script_name
    row.message = diagnostics.message
    row.log_tail = diagnostics.log_tail


def _deployment(row: DeploymentRow) -> Deployment:
    return Deployment(
        id=row.id,
        application_name=row.application_name,
        group_name=row.group_name,
        group_id=row.group_id,
        config_name=row.config_name,
        minimum_healthy=row.minimum_healthy,
        status=DeploymentStatus(row.status),
        revision=revision_from_json(row.revision),
        description=row.description,
        creator=Creator(row.creator),
        file_exists_behavior=(
            FileExistsBehavior(row.file_exists_behavior) if row.file_exists_behavior else None
        ),
        ignore_application_stop_failures=row.ignore_application_stop_failures,
        created_at=as_utc(row.created_at) or utcnow(),
        started_at=as_utc(row.started_at),
        completed_at=as_utc(row.completed_at),
        error=(
            ErrorInformation(DeploymentErrorCode(row.error_code), row.error_message or "")
            if row.error_code
            else None
        ),
        auto_rollback=auto_rollback_from_json(row.auto_rollback),
        update_outdated_instances_only=bool(row.update_outdated_instances_only),
        fetch_through_registry=bool(row.fetch_through_registry),
        style=style_from_json(row.deployment_style),
        target_groups=tuple(json.loads(row.target_groups or "[]")),
        blue_green=blue_green_from_json(row.blue_green),
        routing=routing_from_json(row.traffic_routing),
        target_instances=filters_from_json(json.loads(row.target_instances or "[]")),
        progress=BlueGreenProgress(
            provision_requested_at=as_utc(row.provision_requested_at),
            ready_until=as_utc(row.ready_until),
            continued=bool(row.continued),
            traffic_step=row.traffic_step if row.traffic_step is not None else -1,
            step_started_at=as_utc(row.step_started_at),
            green_weight=row.green_weight or 0,
            blue_weight=row.blue_weight or 0,
            terminate_at=as_utc(row.terminate_at),
        ),
        rollback=RollbackInfo(
            row.rollback_deployment_id or "",
            row.rollback_triggering_deployment_id or "",
            row.rollback_message or "",
        ),
        stop_requested=bool(row.stop_requested),
        roll_back_on_stop=bool(row.roll_back_on_stop),
        untouched_healthy=row.untouched_healthy or 0,
        status_messages=tuple(json.loads(row.status_messages or "[]")),
    )


def _event(row: EventRow) -> LifecycleEvent:
    return LifecycleEvent(
        name=row.name,
        status=EventStatus(row.status),
        started_at=as_utc(row.started_at),
        ended_at=as_utc(row.ended_at),
        diagnostics=Diagnostics(
            error_code=ErrorCode(row.error_code) if row.error_code else None,
            script_name=row.script_name,
            message=row.message,
            log_tail=row.log_tail,
        ),
    )


def _target(row: TargetRow, events: Sequence[LifecycleEvent]) -> Target:
    return Target(
        deployment_id=row.deployment_id,
        instance_name=row.instance_name,
        status=TargetStatus(row.status),
        updated_at=as_utc(row.updated_at) or utcnow(),
        events=tuple(events),
        instance_revision=(
            revision_from_json(row.instance_revision) if row.instance_revision else None
        ),
        label=TargetLabel(row.label or ""),
    )
