"""Persistence of custom deployment configs; the built-in ones live in code (configs.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.core.clock import utcnow
from services.core.db import Database
from services.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.orchestrator.configs import (
    BUILT_IN_CONFIGS,
    RESERVED_PREFIX,
    DeploymentConfig,
    MinimumHealthyType,
)
from services.orchestrator.schema import ConfigRow, DeploymentRow, GroupRow
from services.orchestrator.states import ACTIVE_DEPLOYMENT


def _config(row: ConfigRow) -> DeploymentConfig:
    return DeploymentConfig(
        row.name,
        MinimumHealthyType(row.minimum_type),
        row.minimum_value,
        row.id,
        row.traffic_routing,
    )


class ConfigStore:
    """Built-in configs from code, custom ones from the orchestrator's table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, config: DeploymentConfig) -> DeploymentConfig:
        row = ConfigRow(
            id=str(uuid.uuid4()),
            name=config.name,
            created_at=utcnow(),
            minimum_type=config.minimum_type,
            minimum_value=config.minimum_value,
            traffic_routing=config.routing,
        )
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(f"deployment config {config.name!r} already exists") from None
        return _config(row)

    async def get(self, name: str) -> DeploymentConfig:
        if name in BUILT_IN_CONFIGS:
            return BUILT_IN_CONFIGS[name]
        async with self._db.read() as session:
            row = await session.scalar(select(ConfigRow).where(ConfigRow.name == name))
            if row is None:
                raise NotFound(f"deployment config {name!r} does not exist")
            return _config(row)

    async def names(self) -> list[str]:
        async with self._db.read() as session:
            custom = list(await session.scalars(select(ConfigRow.name)))
        return sorted([*BUILT_IN_CONFIGS, *custom])

    async def delete(self, name: str) -> None:
        """Refused for built-in configs and for configs a group or active deployment uses."""
        if name.startswith(RESERVED_PREFIX):
            raise InvalidArgument(
                f"deploymentConfigName {name!r} is built in and cannot be deleted"
            )
        async with self._db.transaction() as session:
            row = await session.scalar(select(ConfigRow).where(ConfigRow.name == name))
            if row is None:
                raise NotFound(f"deployment config {name!r} does not exist")
            groups = await session.scalar(
                select(func.count()).select_from(GroupRow).where(GroupRow.config_name == name)
            )
            active = await session.scalar(
                select(func.count())
                .select_from(DeploymentRow)
                .where(
                    DeploymentRow.config_name == name,
                    DeploymentRow.status.in_([str(s) for s in ACTIVE_DEPLOYMENT]),
                )
            )
            if groups or active:
                raise FailedPrecondition(
                    f"deployment config {name!r} is in use by {groups} deployment group(s) and "
                    f"{active} active deployment(s)"
                )
            await session.delete(row)
