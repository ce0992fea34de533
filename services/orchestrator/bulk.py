"""The rows of a deployment that a step reads or writes many at a time — a wave of a thousand
hosts reports, starts or ends at once: results recorded with one statement (by the rule in
results.py), the rows a decision changes loaded in one query each, the events of ended targets
skipped in one statement. Part of the deployment store (store.py), inside its transactions.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from deploy.lifecycle import EVENT_NAMES
from services.core.diagnostics import Diagnostics
from services.orchestrator.domain import EventRef
from services.orchestrator.results import EventEnded, EventKey, EventRecord, record_result
from services.orchestrator.schema import DeploymentRow, EventRow, InstanceRevisionRow, TargetRow
from services.orchestrator.states import EventStatus, TargetStatus

EVENT_STATUSES = {status.value: status for status in EventStatus}
"""A stored status's enum member, by value (read for thousands of rows)."""
NO_DIAGNOSTICS = Diagnostics()
"""One shared empty Diagnostics for the many events that have none."""
PRELOAD_AT_LEAST = 4
"""Rows of this many results, events or targets in one step are loaded together."""
TARGET_ENDED = (TargetStatus.SUCCEEDED, TargetStatus.FAILED)
"""A target's events not started are skipped when it ends so."""


async def record_results(
    session: AsyncSession, deployment: DeploymentRow, results: Sequence[EventEnded], now: datetime
) -> list[float | None]:
    """Record the deployment's results (see results.py): for each, the seconds its event ran,
    or None when it changes nothing. The events they touch are read in one query and written
    in one statement (Core, not ORM objects: a wave of a thousand hosts reports at once)."""
    if not results:
        return []
    events = await _event_records(session, deployment.id, [r.ref for r in results])
    ignore = deployment.ignore_application_stop_failures
    seconds = [record_result(events, result, ignore, now) for result in results]
    keys = {
        (result.ref.instance_name, result.ref.position)
        for result, ran in zip(results, seconds, strict=True)
        if ran is not None
    }
    if keys:
        connection = await session.connection()
        await connection.execute(
            _RECORD_EVENT,
            [_recorded(deployment.id, key, events[key]) for key in sorted(keys)],
        )
        await connection.execute(
            update(TargetRow)
            .where(
                TargetRow.deployment_id == deployment.id,
                TargetRow.instance_name.in_({name for name, _ in keys}),
            )
            .values(updated_at=now)
        )
    return seconds


async def _event_records(
    session: AsyncSession, deployment_id: str, refs: Sequence[EventRef]
) -> dict[EventKey, EventRecord]:
    """The events named and the ones before them, by instance and position."""
    names = {r.instance_name for r in refs}
    positions = {r.position for r in refs} | {r.position - 1 for r in refs}
    rows = await session.execute(
        select(
            EventRow.instance_name,
            EventRow.position,
            EventRow.name,
            EventRow.status,
            EventRow.started_at,
            EventRow.ended_at,
            EventRow.error_code,
        ).where(
            EventRow.deployment_id == deployment_id,
            EventRow.instance_name.in_(names),
            EventRow.position.in_(positions),
        )
    )
    return {
        (instance, position): EventRecord(
            EVENT_NAMES[name], EVENT_STATUSES[status], started, ended, error_code
        )
        for instance, position, name, status, started, ended, error_code in rows
    }


def _recorded(deployment_id: str, key: EventKey, event: EventRecord) -> dict[str, object]:
    diagnostics = event.diagnostics or NO_DIAGNOSTICS
    return {
        "deployment": deployment_id,
        "instance": key[0],
        "at_position": key[1],
        "new_status": event.status,
        "started": event.started_at,
        "ended": event.ended_at,
        "code": diagnostics.error_code,
        "script": diagnostics.script_name,
        "text": diagnostics.message,
        "tail": diagnostics.log_tail,
    }


_RECORD_EVENT = (
    update(EventRow)
    .where(
        EventRow.deployment_id == bindparam("deployment"),
        EventRow.instance_name == bindparam("instance"),
        EventRow.position == bindparam("at_position"),
    )
    .values(
        status=bindparam("new_status"),
        started_at=bindparam("started"),
        ended_at=bindparam("ended"),
        error_code=bindparam("code"),
        script_name=bindparam("script"),
        message=bindparam("text"),
        log_tail=bindparam("tail"),
    )
)
"""A recorded result (a Core statement, executed for a burst of them at once)."""


async def load_rows(
    session: AsyncSession,
    deployment_id: str,
    events: Collection[EventRef],
    targets: Collection[str],
) -> list[object]:
    """The rows of the events and targets a decision changes, loaded in two queries rather
    than one or more each (a wave of a thousand hosts starts or ends at once): the session's
    `get` then finds them in its identity map, which the caller keeps alive by holding the
    returned list. Only the runner of a deployment writes its events, under the deployment
    row's lock."""
    rows: list[object] = []
    if len(events) >= PRELOAD_AT_LEAST:
        names = {r.instance_name for r in events}
        positions = {r.position for r in events}
        rows.extend(
            await session.scalars(
                select(EventRow).where(
                    EventRow.deployment_id == deployment_id,
                    EventRow.instance_name.in_(names),
                    EventRow.position.in_(positions),
                )
            )
        )
    if len(targets) >= PRELOAD_AT_LEAST:
        rows.extend(
            await session.scalars(
                select(TargetRow).where(
                    TargetRow.deployment_id == deployment_id, TargetRow.instance_name.in_(targets)
                )
            )
        )
    return rows


async def instance_revisions(
    session: AsyncSession, group_id: str, instances: Collection[str]
) -> dict[str, InstanceRevisionRow]:
    """The group's revision records of these instances, by name, read in one query (a
    decision may start or end a thousand targets at once)."""
    if not instances:
        return {}
    rows = await session.scalars(
        select(InstanceRevisionRow).where(
            InstanceRevisionRow.group_id == group_id,
            InstanceRevisionRow.instance_name.in_(instances),
        )
    )
    return {row.instance_name: row for row in rows}


async def skip_pending_events(
    session: AsyncSession, deployment_id: str, instances: Collection[str]
) -> None:
    """The events not started of targets that ended become Skipped (one statement; the rows
    the session holds are updated from what it returns, not by testing each one it holds)."""
    if not instances:
        return
    await session.execute(
        update(EventRow)
        .where(
            EventRow.deployment_id == deployment_id,
            EventRow.instance_name.in_(instances),
            EventRow.status == EventStatus.PENDING,
        )
        .values(status=EventStatus.SKIPPED)
        .execution_options(synchronize_session="fetch")
    )
