"""How each of the orchestrator's value types is kept in its tables: a JSON column type per type
(services.core.columns.Json), so that rows hold domain objects and nothing decodes by hand.

The stored forms are those the tables have always held. A decoder accepts the empty object or
list of a row that predates its field (the migrations give added columns those defaults) and
gives the type's defaults for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from services.core.columns import Json
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
    DeploymentOption,
    DeploymentStyle,
    DeploymentType,
    TriggerConfig,
    TriggerEvent,
)

Filters = tuple[TagFilter, ...]


def _filters_to_json(filters: Sequence[TagFilter]) -> list[dict[str, str]]:
    return [dataclasses.asdict(f) for f in filters]


def _filters_from_json(raw: Sequence[Mapping[str, str]]) -> Filters:
    return tuple(TagFilter(f["key"], f["value"], TagFilterType(f["type"])) for f in raw)


TAG_FILTERS = Json[Filters](_filters_to_json, _filters_from_json)
"""Tag filters: a JSON list of {key, value, type} (ORed)."""
TAG_SET = Json[tuple[Filters, ...]](
    lambda groups: [_filters_to_json(group) for group in groups],
    lambda raw: tuple(_filters_from_json(group) for group in raw),
)
"""A tag set: a JSON list of tag filter lists (ANDed)."""


def _auto_rollback_from_json(raw: Mapping[str, Any]) -> AutoRollbackConfig:
    return AutoRollbackConfig(
        bool(raw.get("enabled", False)),
        frozenset(AutoRollbackEvent(e) for e in raw.get("events", [])),
    )


AUTO_ROLLBACK = Json[AutoRollbackConfig](
    lambda config: {"enabled": config.enabled, "events": sorted(config.events)},
    _auto_rollback_from_json,
)


def _alarms_from_json(raw: Mapping[str, Any]) -> AlarmConfig:
    return AlarmConfig(
        bool(raw.get("enabled", False)),
        bool(raw.get("ignore_poll_failure", False)),
        tuple(str(name) for name in raw.get("alarms", [])),
    )


ALARMS = Json[AlarmConfig](dataclasses.asdict, _alarms_from_json)


def _style_from_json(raw: Mapping[str, Any]) -> DeploymentStyle:
    default = DeploymentStyle()
    return DeploymentStyle(
        DeploymentType(raw.get("type", default.type)),
        DeploymentOption(raw.get("option", default.option)),
    )


STYLE = Json[DeploymentStyle](
    lambda style: {"type": style.type, "option": style.option}, _style_from_json
)


def _blue_green_from_json(raw: Mapping[str, Any]) -> BlueGreenConfig:
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


BLUE_GREEN = Json[BlueGreenConfig](dataclasses.asdict, _blue_green_from_json)


def _routing_from_json(raw: Mapping[str, Any]) -> TrafficRouting:
    return TrafficRouting(
        TrafficRoutingType(raw.get("type", TrafficRoutingType.ALL_AT_ONCE)),
        int(raw.get("percentage", 0)),
        int(raw.get("interval_seconds", 0)),
    )


ROUTING = Json[TrafficRouting](dataclasses.asdict, _routing_from_json)

TRIGGERS = Json[tuple[TriggerConfig, ...]](
    lambda triggers: [{"name": t.name, "url": t.url, "events": sorted(t.events)} for t in triggers],
    lambda raw: tuple(
        TriggerConfig(t["name"], t["url"], frozenset(TriggerEvent(e) for e in t["events"]))
        for t in raw
    ),
)
"""A group's triggers: a JSON list of {name, url, events}."""
