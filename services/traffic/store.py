"""Persistence of target groups and targets (the traffic service's tables only).

Every public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import Database
from services.core.errors import AlreadyExists, NotFound
from services.traffic.domain import Provider, Target, TargetGroup, TargetState
from services.traffic.schema import GroupSettings, TargetGroupRow, TargetRow


class TrafficStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, group: TargetGroup) -> None:
        async with self._db.transaction() as session:
            if await session.get(TargetGroupRow, group.name) is not None:
                raise AlreadyExists(f"target group {group.name!r} already exists")
            session.add(
                TargetGroupRow(
                    name=group.name,
                    provider=group.provider,
                    port=group.port,
                    deregistration_delay_seconds=group.deregistration_delay_seconds,
                    settings=GroupSettings(group.load_balancer, group.haproxy_backend),
                )
            )

    async def delete(self, name: str) -> None:
        async with self._db.transaction() as session:
            row = await _group_row(session, name)
            for target in await session.scalars(
                select(TargetRow).where(TargetRow.group_name == name)
            ):
                await session.delete(target)
            await session.delete(row)

    async def names(self) -> list[str]:
        async with self._db.read() as session:
            return list(
                await session.scalars(select(TargetGroupRow.name).order_by(TargetGroupRow.name))
            )

    async def get(self, name: str) -> TargetGroup:
        async with self._db.read() as session:
            row = await _group_row(session, name)
            targets = await session.scalars(
                select(TargetRow)
                .where(TargetRow.group_name == name)
                .order_by(TargetRow.instance_name)
            )
            return TargetGroup(
                name=row.name,
                provider=Provider(row.provider),
                port=row.port,
                deregistration_delay_seconds=row.deregistration_delay_seconds,
                targets=tuple(_target(t) for t in targets),
                load_balancer=row.settings.load_balancer,
                haproxy_backend=row.settings.haproxy_backend,
            )

    async def set_address(self, group: str, instance: str, address: str) -> None:
        """Set (or with "" forget) the address the load balancer uses for the instance."""
        async with self._db.transaction() as session:
            await _group_row(session, group)
            row = await session.get(TargetRow, (group, instance))
            if row is None:
                if not address:
                    return
                row = TargetRow(
                    group_name=group,
                    instance_name=instance,
                    weight=0,
                    state=TargetState.UNUSED,
                )
                session.add(row)
            row.address, row.address_set = address, bool(address)

    async def record(
        self, group: str, instance: str, address: str, weight: int, state: TargetState
    ) -> None:
        """What the load balancer now does with the instance."""
        async with self._db.transaction() as session:
            await _group_row(session, group)
            row = await session.get(TargetRow, (group, instance))
            if row is None:
                row = TargetRow(group_name=group, instance_name=instance, address_set=False)
                session.add(row)
            row.address, row.weight, row.state = address, weight, state

    async def record_weights(self, group: str, weights: Mapping[str, int]) -> None:
        async with self._db.transaction() as session:
            await _group_row(session, group)
            for instance, weight in weights.items():
                row = await session.get(TargetRow, (group, instance))
                if row is not None:
                    row.weight = weight


async def _group_row(session: AsyncSession, name: str) -> TargetGroupRow:
    row = await session.get(TargetGroupRow, name)
    if row is None:
        raise NotFound(f"target group {name!r} does not exist")
    return row


def _target(row: TargetRow) -> Target:
    return Target(
        row.instance_name, row.address, row.weight, TargetState(row.state), row.address_set
    )
