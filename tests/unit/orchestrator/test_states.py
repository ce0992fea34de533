"""The state machines: allowed moves pass, others raise InvalidTransition naming the states."""

from __future__ import annotations

import pytest

from services.core.errors import InvalidTransition
from services.orchestrator.states import (
    ACTIVE_DEPLOYMENT,
    TERMINAL_DEPLOYMENT,
    DeliveryStatus,
    DeploymentStatus,
    EventStatus,
    TargetStatus,
    delivery_transition,
    deployment_transition,
    event_transition,
    target_transition,
)


def test_terminal_and_active_are_derived_from_the_table() -> None:
    assert {
        DeploymentStatus.SUCCEEDED,
        DeploymentStatus.FAILED,
        DeploymentStatus.STOPPED,
    } == TERMINAL_DEPLOYMENT
    assert DeploymentStatus.QUEUED in ACTIVE_DEPLOYMENT


def test_allowed_moves() -> None:
    assert deployment_transition(DeploymentStatus.CREATED, DeploymentStatus.IN_PROGRESS) is (
        DeploymentStatus.IN_PROGRESS
    )
    assert target_transition(TargetStatus.PENDING, TargetStatus.SKIPPED) is TargetStatus.SKIPPED
    assert event_transition(EventStatus.IN_PROGRESS, EventStatus.FAILED) is EventStatus.FAILED


def test_illegal_move_names_current_and_allowed_states() -> None:
    with pytest.raises(InvalidTransition, match="is Succeeded and cannot become InProgress"):
        deployment_transition(DeploymentStatus.SUCCEEDED, DeploymentStatus.IN_PROGRESS)
    with pytest.raises(InvalidTransition, match="allowed: Failed, Skipped, Succeeded"):
        event_transition(EventStatus.IN_PROGRESS, EventStatus.PENDING)


def test_a_trigger_delivery_stays_pending_while_retried_and_ends_once() -> None:
    assert delivery_transition(DeliveryStatus.PENDING, DeliveryStatus.PENDING) is (
        DeliveryStatus.PENDING
    )
    assert delivery_transition(DeliveryStatus.PENDING, DeliveryStatus.DELIVERED) is (
        DeliveryStatus.DELIVERED
    )
    with pytest.raises(InvalidTransition, match="trigger delivery is Failed and cannot become"):
        delivery_transition(DeliveryStatus.FAILED, DeliveryStatus.DELIVERED)
