"""Trigger notifications queued in the transaction of the state change that causes them (the
outbox, outbox.py): a notification is never lost to a crash, and never sent for a change that
did not commit."""

from __future__ import annotations

import json

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import utcnow
from services.core.signal import ChangeSignal
from services.orchestrator.groups import TriggerConfig, TriggerEvent
from services.orchestrator.notifications import deployment_payload, instance_payload
from services.orchestrator.rows import deployment_from_row, read_targets
from services.orchestrator.schema import DeploymentRow, GroupRow, TargetRow, TriggerDeliveryRow
from services.orchestrator.states import DeliveryStatus, TargetStatus


class TriggerQueue:
    """Queues a delivery for every trigger of a deployment's group that wants an event, in the
    transaction of the state change (the outbox); the delivery loop is woken once it commits."""

    def __init__(self, wake: ChangeSignal) -> None:
        self._signal = wake

    async def queue(
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
                    status=DeliveryStatus.PENDING,
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
        self._signal.notify()


async def _group_triggers(session: AsyncSession, group_id: str) -> tuple[TriggerConfig, ...]:
    """The group's triggers, read once per transaction (`session.info` keeps them): a decision
    may notify for a thousand targets."""
    known: dict[str, tuple[TriggerConfig, ...]] = session.info.setdefault("group_triggers", {})
    if group_id not in known:
        group = await session.get(GroupRow, group_id)
        known[group_id] = group.triggers if group else ()
    return known[group_id]
