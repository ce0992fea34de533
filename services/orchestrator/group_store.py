"""Persistence of deployment groups and what they have been through (the groups table).

Every public method is one transaction, so each change is all-or-nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import utcnow
from services.core.db import Database
from services.core.errors import AlreadyExists, FailedPrecondition, NotFound
from services.orchestrator.groups import (
    DeploymentGroup,
    GroupChange,
    GroupRecord,
    LastDeployment,
)
from services.orchestrator.outbox import DeliveryStore
from services.orchestrator.schema import DeploymentRow, GroupRow
from services.orchestrator.states import ACTIVE_DEPLOYMENT, DeploymentStatus


class GroupStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, application_name: str, group: DeploymentGroup) -> DeploymentGroup:
        """Insert `group` (its id and time are assigned here)."""
        row = GroupRow(id=str(uuid.uuid4()), application_name=application_name, created_at=utcnow())
        _set_group_fields(row, group)
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(
                f"deployment group {group.name!r} already exists for application "
                f"{application_name!r}"
            ) from None
        return _group(row)

    async def get(self, application_name: str, name: str) -> DeploymentGroup:
        async with self._db.read() as session:
            return _group(await _group_row(session, application_name, name))

    async def all(self) -> list[DeploymentGroup]:
        async with self._db.read() as session:
            rows = await session.scalars(select(GroupRow).order_by(GroupRow.created_at))
            return [_group(row) for row in rows]

    async def update(
        self, application_name: str, name: str, change: GroupChange
    ) -> DeploymentGroup:
        """Apply the fields `change` sets; a rename also renames the group in its deployments."""
        try:
            async with self._db.transaction() as session:
                row = await _group_row(session, application_name, name, lock=True)
                updated = change.apply(_group(row))
                if updated.tag_filters and updated.tag_set:
                    raise FailedPrecondition(
                        f"deployment group {name!r} would have both "
                        "onPremisesInstanceTagFilters and onPremisesTagSet; clear one of them"
                    )
                _set_group_fields(row, updated)
                if updated.name != name:
                    await session.flush()
                    await session.execute(
                        update(DeploymentRow)
                        .where(DeploymentRow.group_id == row.id)
                        .values(group_name=updated.name)
                    )
                return updated
        except IntegrityError:
            raise AlreadyExists(
                f"newDeploymentGroupName: deployment group {change.new_name!r} already exists "
                f"for application {application_name!r}"
            ) from None

    async def record(self, application_name: str, name: str) -> GroupRecord:
        """The group with its target revision, last deployments and last trigger deliveries."""
        async with self._db.read() as session:
            row = await _group_row(session, application_name, name)
            attempted = await newest_deployment(session, row.id)
            succeeded = await newest_deployment(session, row.id, DeploymentStatus.SUCCEEDED)
            deliveries = await DeliveryStore.newest_per_trigger(session, row.id)
            return GroupRecord(
                group=_group(row),
                target_revision=succeeded.revision if succeeded else None,
                last_successful=_last(succeeded),
                last_attempted=_last(attempted),
                deliveries=deliveries,
            )

    async def delete(self, application_name: str, name: str) -> None:
        """Refused while the group has an active deployment; its history stays readable."""
        async with self._db.transaction() as session:
            row = await _group_row(session, application_name, name, lock=True)
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


async def _group_row(
    session: AsyncSession, application_name: str, name: str, lock: bool = False
) -> GroupRow:
    query = select(GroupRow).where(
        GroupRow.application_name == application_name, GroupRow.name == name
    )
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(
            f"deployment group {name!r} does not exist for application {application_name!r}"
        )
    return row


async def newest_deployment(
    session: AsyncSession, group_id: str, status: DeploymentStatus | None = None
) -> DeploymentRow | None:
    """The group's most recently created deployment (with `status`, when given)."""
    query = select(DeploymentRow).where(DeploymentRow.group_id == group_id)
    if status is not None:
        query = query.where(DeploymentRow.status == status)
    return await session.scalar(
        query.order_by(DeploymentRow.created_at.desc(), DeploymentRow.id.desc()).limit(1)
    )


def _set_group_fields(row: GroupRow, group: DeploymentGroup) -> None:
    row.name = group.name
    row.config_name = group.config_name
    row.tag_filters = group.tag_filters
    row.tag_set = group.tag_set
    row.auto_rollback = group.auto_rollback
    row.triggers = group.triggers
    row.fetch_through_registry = group.fetch_through_registry
    row.deployment_style = group.style
    row.target_groups = group.target_groups
    row.blue_green = group.blue_green
    row.alarms = group.alarms


def _group(row: GroupRow) -> DeploymentGroup:
    return DeploymentGroup(
        id=row.id,
        application_name=row.application_name,
        name=row.name,
        config_name=row.config_name,
        tag_filters=row.tag_filters,
        created_at=row.created_at,
        tag_set=row.tag_set,
        auto_rollback=row.auto_rollback,
        triggers=row.triggers,
        fetch_through_registry=row.fetch_through_registry,
        style=row.deployment_style,
        target_groups=row.target_groups,
        blue_green=row.blue_green,
        alarms=row.alarms,
    )


def _last(row: DeploymentRow | None) -> LastDeployment | None:
    if row is None:
        return None
    return LastDeployment(
        id=row.id,
        status=DeploymentStatus(row.status),
        created_at=row.created_at,
        ended_at=row.completed_at,
    )
