"""Trigger deliveries in the outbox: each attempt recorded by the delivery state machine, and an
attempt that ends after its lease ran out (another attempt already ended the delivery) changes
nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.core.db import open_database
from services.orchestrator.outbox import DeliveryStore
from services.orchestrator.schema import TriggerDeliveryRow
from services.orchestrator.states import DeliveryStatus

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_a_late_attempt_does_not_change_a_delivery_that_has_ended(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'orchestrator.db'}", "orchestrator")
    try:
        async with db.transaction() as session:
            row = TriggerDeliveryRow(
                group_id="g",
                trigger_name="chat",
                url="https://hooks.example/deploy",
                event="DeploymentSuccess",
                deployment_id="d-1",
                payload="{}",
                status=DeliveryStatus.PENDING,
                next_attempt_at=T0,
                created_at=T0,
            )
            session.add(row)
            await session.flush()
            delivery_id = row.id
        store = DeliveryStore(db)
        retry = T0 + timedelta(seconds=1)
        assert await store.record(delivery_id, T0, 500, "HTTP 500", retry) is DeliveryStatus.PENDING
        assert await store.record(delivery_id, T0, 204, None, retry) is DeliveryStatus.DELIVERED
        late = await store.record(delivery_id, T0, 0, "timed out", None)
        assert late is DeliveryStatus.DELIVERED
        async with db.read() as session:
            stored = await session.get(TriggerDeliveryRow, delivery_id)
            assert stored is not None
            assert (stored.status, stored.attempts, stored.error) == ("Delivered", 2, "")
    finally:
        await db.close()
