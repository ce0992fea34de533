"""Persistence of deployment groups and what they have been through (the groups table).

Every public method is one transaction, so each change is all-or-nothing.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import utcnow
from services.core.db import Database
from services.core.errors import AlreadyExists, FailedPrecondition, NotFound
from services.core.revision import revision_from_json
from services.core.tags import TagFilter, TagFilterType
from services.orchestrator.bluegreen import (
    BlueGreenConfig,
    BlueInstanceAction,
    GreenFleetAction,
    ReadyAction,
    TrafficRouting,
    TrafficRoutingType,
)
from services.orchestrator.groups import (
    AlarmConfig,
    AutoRollbackConfig,
    AutoRollbackEvent,
    DeploymentGroup,
    DeploymentOption,
    DeploymentStyle,
    DeploymentType,
    GroupChange,
    GroupRecord,
    LastDeployment,
    TriggerConfig,
    TriggerEvent,
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
                target_revision=revision_from_json(succeeded.revision) if succeeded else None,
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


def filters_to_json(filters: Sequence[TagFilter]) -> list[dict[str, str]]:
    return [dataclasses.asdict(f) for f in filters]


def filters_from_json(raw: list[dict[str, str]]) -> tuple[TagFilter, ...]:
    return tuple(TagFilter(f["key"], f["value"], TagFilterType(f["type"])) for f in raw)


def auto_rollback_to_json(config: AutoRollbackConfig) -> str:
    return json.dumps({"enabled": config.enabled, "events": sorted(config.events)})


def auto_rollback_from_json(text: str) -> AutoRollbackConfig:
    raw = json.loads(text or "{}")
    return AutoRollbackConfig(
        bool(raw.get("enabled", False)),
        frozenset(AutoRollbackEvent(e) for e in raw.get("events", [])),
    )


def alarms_to_json(config: AlarmConfig) -> str:
    return json.dumps(dataclasses.asdict(config))


def alarms_from_json(text: str) -> AlarmConfig:
    raw = json.loads(text or "{}")
    return AlarmConfig(
        bool(raw.get("enabled", False)),
        bool(raw.get("ignore_poll_failure", False)),
        tuple(str(name) for name in raw.get("alarms", [])),
    )


def style_to_json(style: DeploymentStyle) -> str:
    return json.dumps({"type": style.type, "option": style.option})


def style_from_json(text: str) -> DeploymentStyle:
    raw = json.loads(text or "{}")
    default = DeploymentStyle()
    return DeploymentStyle(
        DeploymentType(raw.get("type", default.type)),
        DeploymentOption(raw.get("option", default.option)),
    )


def blue_green_to_json(config: BlueGreenConfig) -> str:
    return json.dumps(dataclasses.asdict(config))


def blue_green_from_json(text: str) -> BlueGreenConfig:
    raw = json.loads(text or "{}")
    default = BlueGreenConfig()
    return BlueGreenConfig(
        ready_action=ReadyAction(raw.get("ready_action", default.ready_action)),
        ready_wait_seconds=int(raw.get("ready_wait_seconds", 0)),
        blue_action=BlueInstanceAction(raw.get("blue_action", default.blue_action)),
        termination_wait_seconds=int(raw.get("termination_wait_seconds", 0)),
        green_fleet=GreenFleetAction(raw.get("green_fleet", default.green_fleet)),
        provisioner=str(raw.get("provisioner", "")),
        provision_timeout_seconds=int(
            raw.get("provision_timeout_seconds", default.provision_timeout_seconds)
        ),
    )


def routing_to_json(routing: TrafficRouting) -> str:
    return json.dumps(dataclasses.asdict(routing))


def routing_from_json(text: str) -> TrafficRouting:
    raw = json.loads(text or "{}")
    return TrafficRouting(
        TrafficRoutingType(raw.get("type", TrafficRoutingType.ALL_AT_ONCE)),
        int(raw.get("percentage", 0)),
        int(raw.get("interval_seconds", 0)),
    )


def triggers_of(row: GroupRow) -> tuple[TriggerConfig, ...]:
    return tuple(
        TriggerConfig(t["name"], t["url"], frozenset(TriggerEvent(e) for e in t["events"]))
        for t in json.loads(row.triggers or "[]")
    )


def _set_group_fields(row: GroupRow, group: DeploymentGroup) -> None:
    row.name = group.name
    row.config_name = group.config_name
    row.tag_filters = json.dumps(filters_to_json(group.tag_filters))
    row.tag_set = json.dumps([filters_to_json(filters) for filters in group.tag_set])
    row.auto_rollback = auto_rollback_to_json(group.auto_rollback)
    row.triggers = json.dumps(
        [{"name": t.name, "url": t.url, "events": sorted(t.events)} for t in group.triggers]
    )
    row.fetch_through_registry = group.fetch_through_registry
    row.deployment_style = style_to_json(group.style)
    row.target_groups = json.dumps(list(group.target_groups))
    row.blue_green = blue_green_to_json(group.blue_green)
    row.alarms = alarms_to_json(group.alarms)


def _group(row: GroupRow) -> DeploymentGroup:
    return DeploymentGroup(
        id=row.id,
        application_name=row.application_name,
        name=row.name,
        config_name=row.config_name,
        tag_filters=filters_from_json(json.loads(row.tag_filters)),
        created_at=row.created_at,
        tag_set=tuple(filters_from_json(group) for group in json.loads(row.tag_set or "[]")),
        auto_rollback=auto_rollback_from_json(row.auto_rollback),
        triggers=triggers_of(row),
        fetch_through_registry=bool(row.fetch_through_registry),
        style=style_from_json(row.deployment_style),
        target_groups=tuple(json.loads(row.target_groups or "[]")),
        blue_green=blue_green_from_json(row.blue_green),
        alarms=alarms_from_json(row.alarms),
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
