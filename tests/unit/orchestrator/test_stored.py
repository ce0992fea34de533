"""The orchestrator's JSON column types: each of its value types reads back as written, a row
that predates a field ("{}" or "[]", as the migrations add columns) reads as the type's
defaults, and the stored forms are those the tables already hold."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.types import TypeDecorator

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
from services.orchestrator.stored import (
    ALARMS,
    AUTO_ROLLBACK,
    BLUE_GREEN,
    ROUTING,
    STYLE,
    TAG_FILTERS,
    TAG_SET,
    TRIGGERS,
)

WEB = TagFilter("role", "web", TagFilterType.KEY_AND_VALUE)
EU = TagFilter("region", "", TagFilterType.KEY_ONLY)


def stored(column: TypeDecorator[Any], value: Any) -> Any:
    return column.process_bind_param(value, None)  # type: ignore[arg-type]


def read(column: TypeDecorator[Any], text: str | None) -> Any:
    return column.process_result_value(text, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (TAG_FILTERS, (WEB, EU)),
        (TAG_SET, ((WEB,), (EU, WEB))),
        (AUTO_ROLLBACK, AutoRollbackConfig(True, frozenset(AutoRollbackEvent))),
        (ALARMS, AlarmConfig(True, True, ("cpu-high", "errors"))),
        (STYLE, DeploymentStyle(DeploymentType.BLUE_GREEN, DeploymentOption.WITH_TRAFFIC_CONTROL)),
        (
            BLUE_GREEN,
            BlueGreenConfig(
                ready_action=ReadyAction.STOP_DEPLOYMENT,
                ready_wait_seconds=60,
                blue_action=BlueInstanceAction.KEEP_ALIVE,
                termination_wait_seconds=5,
                green_fleet=GreenFleetAction.PROVISION,
                provisioner="http://127.0.0.1:9/provision",
                provision_timeout_seconds=30,
            ),
        ),
        (ROUTING, TrafficRouting(TrafficRoutingType.CANARY, 10, 60)),
        (
            TRIGGERS,
            (TriggerConfig("ops", "http://127.0.0.1:9/hook", frozenset(TriggerEvent)),),
        ),
    ],
)
def test_a_value_reads_back_as_written(column: TypeDecorator[Any], value: Any) -> None:
    assert read(column, stored(column, value)) == value


@pytest.mark.parametrize(
    ("column", "empty", "default"),
    [
        (TAG_SET, "[]", ()),
        (AUTO_ROLLBACK, "{}", AutoRollbackConfig()),
        (ALARMS, "{}", AlarmConfig()),
        (STYLE, "{}", DeploymentStyle()),
        (BLUE_GREEN, "{}", BlueGreenConfig()),
        (ROUTING, "{}", TrafficRouting()),
        (TRIGGERS, "[]", ()),
    ],
)
def test_a_row_from_before_its_field_reads_as_the_default(
    column: TypeDecorator[Any], empty: str, default: Any
) -> None:
    assert read(column, empty) == default
    assert read(column, None) is None  # missing stays missing


def test_the_stored_forms_are_those_the_tables_hold() -> None:
    assert json.loads(stored(TAG_FILTERS, (WEB,)) or "") == [
        {"key": "role", "value": "web", "type": "KEY_AND_VALUE"}
    ]
    assert json.loads(stored(STYLE, DeploymentStyle()) or "") == {
        "type": "IN_PLACE",
        "option": "WITHOUT_TRAFFIC_CONTROL",
    }
    rollback = AutoRollbackConfig(True, frozenset({AutoRollbackEvent.DEPLOYMENT_FAILURE}))
    assert json.loads(stored(AUTO_ROLLBACK, rollback) or "") == {
        "enabled": True,
        "events": ["DEPLOYMENT_FAILURE"],
    }
