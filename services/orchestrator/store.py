"""Persistence of deployment groups, deployments, targets and events (the orchestrator's tables).

Every public method is one transaction, so each state change is all-or-nothing.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import as_utc, utcnow
from services.core.db import Database
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.errors import AlreadyExists, FailedPrecondition, NotFound
from services.core.revision import revision_from_json, revision_to_json
from services.core.tags import TagFilter, TagFilterType
from services.orchestrator.domain import (
    Deployment,
    DeploymentErrorCode,
    DeploymentGroup,
    DeploymentQuery,
    DeploymentRequest,
    ErrorInformation,
    FileExistsBehavior,
    LifecycleEvent,
    Target,
)
from services.orchestrator.schema import CursorRow, DeploymentRow, EventRow, GroupRow, TargetRow
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


class GroupStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        application_name: str,
        name: str,
        config_name: str,
        filters: Sequence[TagFilter],
        tag_set: Sequence[Sequence[TagFilter]] = (),
    ) -> DeploymentGroup:
        row = GroupRow(
            id=str(uuid.uuid4()),
            application_name=application_name,
            name=name,
            config_name=config_name,
            created_at=utcnow(),
            tag_filters=json.dumps([dataclasses.asdict(f) for f in filters]),
            tag_set=json.dumps([[dataclasses.asdict(f) for f in group] for group in tag_set]),
        )
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(
                f"deployment group {name!r} already exists for application {application_name!r}"
            ) from None
        return _group(row)

    async def get(self, application_name: str, name: str) -> DeploymentGroup:
        async with self._db.read() as session:
            row = await session.scalar(
                select(GroupRow).where(
                    GroupRow.application_name == application_name, GroupRow.name == name
                )
            )
            if row is None:
                raise NotFound(
                    f"deployment group {name!r} does not exist for application {application_name!r}"
                )
            return _group(row)

    async def delete(self, application_name: str, name: str) -> None:
        """Refused while the group has an active deployment; its history stays readable."""
        async with self._db.transaction() as session:
            row = await session.scalar(
                select(GroupRow)
                .where(GroupRow.application_name == application_name, GroupRow.name == name)
                .with_for_update()
            )
            if row is None:
                raise NotFound(
                    f"deployment group {name!r} does not exist for application {application_name!r}"
                )
            active = await session.scalar(
                select(DeploymentRow.id).where(
                    DeploymentRow.group_id == row.id,
                    DeploymentRow.status.in_([str(s) for s in ACTIVE_DEPLOYMENT]),
                )
            )
            if active is not None:
                raise FailedPrecondition(
                    f"deployment group {name!r} has an active deployment {active}"
                )
            await session.delete(row)

    async def names(self, application_name: str) -> list[str]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(GroupRow.name)
                .where(GroupRow.application_name == application_name)
                .order_by(GroupRow.name)
            )
            return list(rows)


class DeploymentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        request: DeploymentRequest,
        group: DeploymentGroup,
        minimum_healthy: int,
        instances: Sequence[str],
        events: Sequence[str],
        error: ErrorInformation | None,
    ) -> str:
        """Insert a deployment with its targets and their pending events, status Created —
        or Failed at once when `error` says it cannot run. One deployment at a time per group
        (CodeDeploy's rule): FailedPrecondition names the active one."""
        deployment_id = new_deployment_id()
        now = utcnow()
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
            session.add(
                DeploymentRow(
                    id=deployment_id,
                    application_name=request.application_name,
                    group_name=group.name,
                    group_id=group.id,
                    config_name=request.config_name,
                    minimum_healthy=minimum_healthy,
                    status=DeploymentStatus.FAILED if error else DeploymentStatus.CREATED,
                    revision=revision_to_json(request.revision),
                    description=request.description,
                    creator="user",
                    file_exists_behavior=request.file_exists_behavior,
                    ignore_application_stop_failures=request.ignore_application_stop_failures,
                    error_code=error.code if error else None,
                    error_message=error.message if error else None,
                    created_at=now,
                    completed_at=now if error else None,
                )
            )
            await session.flush()
            for position, instance in enumerate(instances):
                session.add(
                    TargetRow(
                        deployment_id=deployment_id,
                        instance_name=instance,
                        position=position,
                        status=TargetStatus.SKIPPED if error else TargetStatus.PENDING,
                        updated_at=now,
                    )
                )
                for index, event in enumerate(events):
                    session.add(
                        EventRow(
                            deployment_id=deployment_id,
                            instance_name=instance,
                            position=index,
                            name=event,
                            status=EventStatus.SKIPPED if error else EventStatus.PENDING,
                            script_name="",
                            message="",
                            log_tail="",
                        )
                    )
        return deployment_id

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
        if q.group_name:
            query = query.where(DeploymentRow.group_name == q.group_name)
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

    async def active_ids(self) -> list[str]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(DeploymentRow.id)
                .where(DeploymentRow.status.in_([str(s) for s in ACTIVE_DEPLOYMENT]))
                .order_by(DeploymentRow.created_at)
            )
            return list(rows)

    async def targets(self, deployment_id: str) -> list[Target]:
        async with self._db.read() as session:
            await _deployment_row(session, deployment_id)
            targets = await session.scalars(
                select(TargetRow)
                .where(TargetRow.deployment_id == deployment_id)
                .order_by(TargetRow.position)
            )
            events = await session.scalars(
                select(EventRow)
                .where(EventRow.deployment_id == deployment_id)
                .order_by(EventRow.instance_name, EventRow.position)
            )
            by_instance: dict[str, list[LifecycleEvent]] = {}
            for event in events:
                by_instance.setdefault(event.instance_name, []).append(_event(event))
            return [_target(t, by_instance.get(t.instance_name, [])) for t in targets]

    async def target(self, deployment_id: str, instance_name: str) -> Target:
        for target in await self.targets(deployment_id):
            if target.instance_name == instance_name:
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
            return DeploymentStatus(row.status)

    async def start_targets(self, deployment_id: str, instances: Sequence[str]) -> list[EventRef]:
        """Targets Pending → InProgress with their first event InProgress; returns those events."""
        started: list[EventRef] = []
        now = utcnow()
        async with self._db.transaction() as session:
            for instance in instances:
                target = await session.get(TargetRow, (deployment_id, instance))
                if target is None:
                    continue
                target.status = target_transition(
                    TargetStatus(target.status), TargetStatus.IN_PROGRESS
                )
                target.updated_at = now
                first = await session.get(EventRow, (deployment_id, instance, 0))
                if first is not None:
                    started.append(_start_event(first, now))
        return started

    async def in_progress_events(self, deployment_id: str) -> list[EventRef]:
        """Events dispatched but not finished: re-sent after a restart (dispatch is idempotent)."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(EventRow).where(
                    EventRow.deployment_id == deployment_id,
                    EventRow.status == EventStatus.IN_PROGRESS,
                )
            )
            return [_ref(row) for row in rows]

    async def finish_event(
        self,
        ref: EventRef,
        succeeded: bool,
        diagnostics: Diagnostics,
        sequence: int,
        continue_on_failure: bool,
    ) -> EventResult:
        """Record an event's result, start the instance's next event or finish its target, and
        advance the fleet cursor — in one transaction."""
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
            target = await session.get(TargetRow, (ref.deployment_id, ref.instance_name))
            assert target is not None, "every event belongs to a target"
            target.updated_at = now
            nxt = await session.get(
                EventRow, (ref.deployment_id, ref.instance_name, ref.position + 1)
            )
            if (succeeded or continue_on_failure) and nxt is not None:
                return EventResult(True, duration, _start_event(nxt, now))
            final = (
                TargetStatus.SUCCEEDED if succeeded or continue_on_failure else TargetStatus.FAILED
            )
            target.status = target_transition(TargetStatus(target.status), final)
            await _skip_pending_events(session, ref.deployment_id, ref.instance_name)
            return EventResult(True, duration)

    async def skip_cursor(self, sequence: int) -> None:
        """Advance the cursor past an update that needs no state change."""
        async with self._db.transaction() as session:
            await _advance_cursor(session, sequence)

    async def cursor(self) -> int:
        async with self._db.read() as session:
            row = await session.get(CursorRow, FLEET_CURSOR)
            return row.sequence if row else 0

    async def finish(
        self, deployment_id: str, status: DeploymentStatus, error: ErrorInformation | None
    ) -> bool:
        """InProgress → Succeeded/Failed; targets never started become Skipped. False if the
        deployment had already finished."""
        now = utcnow()
        async with self._db.transaction() as session:
            row = await _deployment_row(session, deployment_id, lock=True)
            current = DeploymentStatus(row.status)
            if current not in ACTIVE_DEPLOYMENT:
                return False
            row.status = deployment_transition(current, status)
            row.completed_at = now
            if error is not None:
                row.error_code, row.error_message = error.code, error.message
            await session.execute(
                update(TargetRow)
                .where(
                    TargetRow.deployment_id == deployment_id,
                    TargetRow.status == TargetStatus.PENDING,
                )
                .values(status=TargetStatus.SKIPPED, updated_at=now)
            )
            await session.execute(
                update(EventRow)
                .where(
                    EventRow.deployment_id == deployment_id, EventRow.status == EventStatus.PENDING
                )
                .values(status=EventStatus.SKIPPED)
            )
            return True


async def _deployment_row(
    session: AsyncSession, deployment_id: str, lock: bool = False
) -> DeploymentRow:
    row = await session.get(DeploymentRow, deployment_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"deployment {deployment_id!r} does not exist")
    return row


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


def _filters(raw: list[dict[str, str]]) -> tuple[TagFilter, ...]:
    return tuple(TagFilter(f["key"], f["value"], TagFilterType(f["type"])) for f in raw)


def _group(row: GroupRow) -> DeploymentGroup:
    filters = _filters(json.loads(row.tag_filters))
    tag_set = tuple(_filters(group) for group in json.loads(row.tag_set or "[]"))
    return DeploymentGroup(
        id=row.id,
        application_name=row.application_name,
        name=row.name,
        config_name=row.config_name,
        tag_filters=filters,
        created_at=as_utc(row.created_at) or utcnow(),
        tag_set=tag_set,
    )


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
        creator=row.creator,
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
    )
