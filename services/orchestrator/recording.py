"""What a deployment's rows become when it is created (its targets and their events, Created or
Failed at once), and when something other than a result happens to it: a stop (by request or
by alarm), a continue, a replacement fleet online, an act that failed, the originals retired,
alarms read clear. Part of the deployment store (store.py), inside its transactions."""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from deploy.lifecycle import ALLOW_TRAFFIC_EVENTS, IN_PLACE_EVENTS
from services.core.clock import utcnow
from services.core.errors import FailedPrecondition
from services.orchestrator.domain import (
    DeploymentErrorCode,
    ErrorInformation,
    PlannedTarget,
    TargetLabel,
)
from services.orchestrator.groups import AutoRollbackEvent
from services.orchestrator.happenings import (
    ActFailed,
    AlarmFired,
    AlarmsClear,
    Continued,
    GreenOnline,
    Happening,
    Retired,
    StopRequested,
)
from services.orchestrator.schema import DeploymentRow, EventRow, TargetRow
from services.orchestrator.states import (
    ACTIVE_DEPLOYMENT,
    DeploymentStatus,
    EventStatus,
    TargetStatus,
    deployment_transition,
)

_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_deployment_id() -> str:
    """CodeDeploy's form: d- and nine upper-case letters or digits."""
    return "d-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


def insert_deployment(
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


def _record_stop(row: DeploymentRow, roll_back: bool | None) -> None:
    """Start nothing more; FailedPrecondition once the deployment has finished."""
    if DeploymentStatus(row.status) not in ACTIVE_DEPLOYMENT:
        raise FailedPrecondition(f"deployment {row.id} has already finished ({row.status})")
    if row.stop_requested:
        return
    row.stop_requested = True
    row.roll_back_on_stop = (
        row.auto_rollback.covers(AutoRollbackEvent.DEPLOYMENT_STOP_ON_REQUEST)
        if roll_back is None
        else roll_back
    )
    row.error_code = DeploymentErrorCode.MANUAL_STOP
    row.error_message = "The deployment was stopped by a user request."
    row.status_messages = (*row.status_messages, "Stop requested")


def _record_alarm_stop(row: DeploymentRow, alarms: tuple[str, ...]) -> None:
    """A fired alarm stops the deployment (CodeDeploy: Stopped, ALARM_ACTIVE), rolled back
    when its configuration covers DEPLOYMENT_STOP_ON_ALARM; a deployment already stopping or
    finished stays as it is."""
    if DeploymentStatus(row.status) not in ACTIVE_DEPLOYMENT or row.stop_requested:
        return
    row.stop_requested = True
    row.roll_back_on_stop = row.auto_rollback.covers(AutoRollbackEvent.DEPLOYMENT_STOP_ON_ALARM)
    row.error_code = DeploymentErrorCode.ALARM_ACTIVE
    names = ", ".join(alarms)
    row.error_message = f"The deployment was stopped because the alarm(s) {names} fired."
    row.status_messages = (*row.status_messages, f"Stopped by alarm(s) {names}")


def _record_continue(row: DeploymentRow, termination: bool, now: datetime) -> None:
    """Ready → InProgress (reroute now), or with `termination` end the termination wait.
    FailedPrecondition when the deployment is not waiting that way."""
    status = DeploymentStatus(row.status)
    if termination:
        terminate_at = row.terminate_at
        if status not in ACTIVE_DEPLOYMENT or terminate_at is None or terminate_at <= now:
            raise FailedPrecondition(
                f"deployment {row.id} is not waiting to terminate its original instances"
            )
        row.terminate_at = now
        return
    if status is not DeploymentStatus.READY:
        raise FailedPrecondition(
            f"deployment {row.id} is {status}, not Ready: there is no rerouting to continue"
        )
    row.status = deployment_transition(status, DeploymentStatus.IN_PROGRESS)
    row.continued = True


async def _add_green(
    session: AsyncSession, deployment_id: str, instances: Sequence[str], now: datetime
) -> None:
    """A provisioned replacement fleet joins the deployment (instances already in it are not
    added twice)."""
    existing = set(
        await session.scalars(
            select(TargetRow.instance_name).where(TargetRow.deployment_id == deployment_id)
        )
    )
    events = IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS
    new = [PlannedTarget(n, events, TargetLabel.GREEN) for n in instances if n not in existing]
    _add_targets(session, deployment_id, new, now, first_position=len(existing))


async def record_happening(
    session: AsyncSession, row: DeploymentRow, happened: Happening, now: datetime
) -> None:
    """Store a happening other than a result (None: only the clock moved, nothing to store).
    FailedPrecondition: a stop or continue the deployment's state does not allow."""
    if happened is None:
        return
    if isinstance(happened, StopRequested):
        _record_stop(row, happened.roll_back)
    elif isinstance(happened, Continued):
        _record_continue(row, happened.termination, now)
    elif isinstance(happened, GreenOnline):
        await _add_green(session, row.id, happened.instances, now)
    elif isinstance(happened, ActFailed):
        if DeploymentStatus(row.status) in ACTIVE_DEPLOYMENT and not row.stop_requested:
            row.error_code, row.error_message = happened.error.code, happened.error.message
    elif isinstance(happened, Retired):
        row.retired_at = now
    elif isinstance(happened, AlarmFired):
        _record_alarm_stop(row, happened.alarms)
    elif isinstance(happened, AlarmsClear) and DeploymentStatus(row.status) in ACTIVE_DEPLOYMENT:
        row.alarms_clear_at = happened.until
