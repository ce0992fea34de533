"""The state machines of a deployment — and of its trigger deliveries — each one transition
table (DESIGN §5).

"Terminal" and "active" are derived from the tables, never listed twice.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from services.core.errors import InvalidTransition


class DeploymentStatus(StrEnum):
    CREATED = "Created"
    QUEUED = "Queued"
    IN_PROGRESS = "InProgress"
    READY = "Ready"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


class TargetStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    READY = "Ready"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class EventStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class DeliveryStatus(StrEnum):
    """A trigger notification's delivery."""

    PENDING = "Pending"
    """Not sent yet, or to be retried."""
    DELIVERED = "Delivered"
    FAILED = "Failed"
    """Given up after the last retry."""


D, T, E = DeploymentStatus, TargetStatus, EventStatus

DEPLOYMENT_TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    D.CREATED: frozenset({D.QUEUED, D.IN_PROGRESS, D.FAILED, D.STOPPED}),
    D.QUEUED: frozenset({D.IN_PROGRESS, D.FAILED, D.STOPPED}),
    D.IN_PROGRESS: frozenset({D.READY, D.SUCCEEDED, D.FAILED, D.STOPPED}),
    D.READY: frozenset({D.IN_PROGRESS, D.SUCCEEDED, D.FAILED, D.STOPPED}),
    D.SUCCEEDED: frozenset(),
    D.FAILED: frozenset(),
    D.STOPPED: frozenset(),
}

TARGET_TRANSITIONS: dict[TargetStatus, frozenset[TargetStatus]] = {
    T.PENDING: frozenset({T.IN_PROGRESS, T.SKIPPED}),
    T.IN_PROGRESS: frozenset({T.READY, T.SUCCEEDED, T.FAILED}),
    T.READY: frozenset({T.IN_PROGRESS, T.SUCCEEDED, T.FAILED, T.SKIPPED}),
    T.SUCCEEDED: frozenset(),
    T.FAILED: frozenset(),
    T.SKIPPED: frozenset(),
}

EVENT_TRANSITIONS: dict[EventStatus, frozenset[EventStatus]] = {
    # Pending → Succeeded/Failed: a chained event the agent ran before its predecessor's
    # result was recorded; InProgress → Skipped: one cancelled before it started on the host.
    E.PENDING: frozenset({E.IN_PROGRESS, E.SUCCEEDED, E.FAILED, E.SKIPPED}),
    E.IN_PROGRESS: frozenset({E.SUCCEEDED, E.FAILED, E.SKIPPED}),
    E.SUCCEEDED: frozenset(),
    E.FAILED: frozenset(),
    E.SKIPPED: frozenset(),
}

DELIVERY_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.PENDING: frozenset(
        {DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED}
    ),
    DeliveryStatus.DELIVERED: frozenset(),
    DeliveryStatus.FAILED: frozenset(),
}

S = TypeVar("S", DeploymentStatus, TargetStatus, EventStatus, DeliveryStatus)


def _transition(table: dict[S, frozenset[S]], what: str, current: S, target: S) -> S:
    allowed = table[current]
    if target not in allowed:
        names = ", ".join(sorted(allowed)) or "none (it is finished)"
        raise InvalidTransition(f"{what} is {current} and cannot become {target}; allowed: {names}")
    return target


def deployment_transition(current: DeploymentStatus, target: DeploymentStatus) -> DeploymentStatus:
    return _transition(DEPLOYMENT_TRANSITIONS, "deployment", current, target)


def target_transition(current: TargetStatus, target: TargetStatus) -> TargetStatus:
    return _transition(TARGET_TRANSITIONS, "target", current, target)


def event_transition(current: EventStatus, target: EventStatus) -> EventStatus:
    return _transition(EVENT_TRANSITIONS, "lifecycle event", current, target)


def delivery_transition(current: DeliveryStatus, target: DeliveryStatus) -> DeliveryStatus:
    return _transition(DELIVERY_TRANSITIONS, "trigger delivery", current, target)


TERMINAL_DEPLOYMENT = frozenset(s for s, nxt in DEPLOYMENT_TRANSITIONS.items() if not nxt)
ACTIVE_DEPLOYMENT = frozenset(DEPLOYMENT_TRANSITIONS) - TERMINAL_DEPLOYMENT
TERMINAL_TARGET = frozenset(s for s, nxt in TARGET_TRANSITIONS.items() if not nxt)
TERMINAL_EVENT = frozenset(s for s, nxt in EVENT_TRANSITIONS.items() if not nxt)
