"""The trigger outbox: deliveries queued with each state change, and what became of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import Database
from services.orchestrator.groups import TriggerDelivery, TriggerEvent
from services.orchestrator.schema import TriggerDeliveryRow
from services.orchestrator.states import DeliveryStatus, delivery_transition


@dataclass(frozen=True)
class PendingDelivery:
    id: int
    url: str
    payload: str
    attempts: int


class DeliveryStore:
    """The outbox's deliveries: which are due, each attempt's claim and outcome."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def due(self, now: datetime, limit: int) -> list[PendingDelivery]:
        """Pending deliveries whose next attempt is due, oldest first."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(TriggerDeliveryRow)
                .where(
                    TriggerDeliveryRow.status == DeliveryStatus.PENDING,
                    TriggerDeliveryRow.next_attempt_at <= now,
                )
                .order_by(TriggerDeliveryRow.id)
                .limit(limit)
            )
            return [PendingDelivery(r.id, r.url, r.payload, r.attempts) for r in rows]

    async def next_due(self) -> datetime | None:
        """When the next attempt of a pending delivery is due."""
        query = select(func.min(TriggerDeliveryRow.next_attempt_at)).where(
            TriggerDeliveryRow.status == DeliveryStatus.PENDING
        )
        async with self._db.read() as session:
            return await session.scalar(query)

    async def claim(self, delivery: PendingDelivery, now: datetime, until: datetime) -> bool:
        """Take the delivery for one attempt: hidden from `due` until `until` (then due again,
        should this process die mid-attempt). False if someone else has taken or done it."""
        async with self._db.transaction() as session:
            claimed = await session.execute(
                update(TriggerDeliveryRow)
                .where(
                    TriggerDeliveryRow.id == delivery.id,
                    TriggerDeliveryRow.status == DeliveryStatus.PENDING,
                    TriggerDeliveryRow.attempts == delivery.attempts,
                    TriggerDeliveryRow.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def record(
        self,
        delivery_id: int,
        now: datetime,
        http_status: int,
        error: str | None,
        retry_at: datetime | None,
    ) -> DeliveryStatus:
        """Record one attempt: Delivered without `error`, else Pending until `retry_at`, or
        Failed when there is none. Returns the new status — or the one recorded, when an
        earlier attempt (whose lease ran out) already ended the delivery: its outcome stands."""
        async with self._db.transaction() as session:
            row = await session.get(TriggerDeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                return DeliveryStatus.FAILED
            if row.status != DeliveryStatus.PENDING:
                return DeliveryStatus(row.status)
            row.attempts += 1
            row.http_status, row.error, row.last_attempt_at = http_status, error or "", now
            if error is None:
                status = DeliveryStatus.DELIVERED
            elif retry_at is None:
                status = DeliveryStatus.FAILED
            else:
                status = DeliveryStatus.PENDING
                row.next_attempt_at = retry_at
            row.status = delivery_transition(DeliveryStatus(row.status), status)
            return status

    @staticmethod
    async def newest_per_trigger(
        session: AsyncSession, group_id: str
    ) -> dict[str, TriggerDelivery]:
        """The newest delivery of each of the group's triggers, by trigger name."""
        newest = (
            select(func.max(TriggerDeliveryRow.id))
            .where(TriggerDeliveryRow.group_id == group_id)
            .group_by(TriggerDeliveryRow.trigger_name)
        )
        rows = await session.scalars(
            select(TriggerDeliveryRow).where(TriggerDeliveryRow.id.in_(newest))
        )
        return {
            row.trigger_name: TriggerDelivery(
                event=TriggerEvent(row.event),
                deployment_id=row.deployment_id,
                instance_id=row.instance_id,
                status=DeliveryStatus(row.status),
                attempts=row.attempts,
                http_status=row.http_status,
                error=row.error,
                last_attempt_at=row.last_attempt_at,
            )
            for row in rows
        }
