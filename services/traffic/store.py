"""Persistence of target groups and targets (the traffic service's tables only)."""

from __future__ import annotations

from sqlalchemy import select

from services.core.db import Database
from services.core.errors import NotFound
from services.traffic.domain import Target, TargetGroup
from services.traffic.schema import TargetGroupRow, TargetRow


class TrafficStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def names(self) -> list[str]:
        async with self._db.read() as session:
            return list(
                await session.scalars(select(TargetGroupRow.name).order_by(TargetGroupRow.name))
            )

    async def get(self, name: str) -> TargetGroup:
        async with self._db.read() as session:
            row = await session.get(TargetGroupRow, name)
            if row is None:
                raise NotFound(f"target group {name!r} does not exist")
            targets = await session.scalars(
                select(TargetRow)
                .where(TargetRow.group_name == name)
                .order_by(TargetRow.instance_name)
            )
            return TargetGroup(
                row.name,
                row.provider,
                tuple(Target(t.instance_name, t.address, t.weight) for t in targets),
            )
