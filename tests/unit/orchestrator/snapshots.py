"""Snapshots of deployments and their targets for the pure decision tests, written short:
a target's events as one letter each."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from deploy.lifecycle import ALLOW_TRAFFIC_EVENTS, IN_PLACE_EVENTS
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.revision import RevisionLocation, RevisionType
from services.orchestrator.decision import Decision, Snapshot
from services.orchestrator.domain import (
    Creator,
    Deployment,
    EventRef,
    Target,
    TargetEvent,
    TargetLabel,
)
from services.orchestrator.groups import (
    AutoRollbackConfig,
    AutoRollbackEvent,
    DeploymentStyle,
    DeploymentType,
)
from services.orchestrator.next_step import decide
from services.orchestrator.states import DeploymentStatus as D
from services.orchestrator.states import EventStatus as E
from services.orchestrator.states import TargetStatus as T

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(seconds=5)
LETTERS = {"P": E.PENDING, "R": E.IN_PROGRESS, "S": E.SUCCEEDED, "F": E.FAILED, "K": E.SKIPPED}
GREEN_EVENTS = IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS
ON_FAILURE = AutoRollbackConfig(True, frozenset({AutoRollbackEvent.DEPLOYMENT_FAILURE}))


def target(
    name: str,
    status: T,
    events: str,
    label: TargetLabel = TargetLabel.NONE,
    names: tuple[str, ...] = IN_PLACE_EVENTS,
    started: datetime = EARLIER,
    code: ErrorCode | None = None,
) -> Target:
    """`events`: one letter per event (P pending, R running, S succeeded, F failed, K skipped);
    a failed event has error code `code`."""
    return Target(
        deployment_id="d-1",
        instance_name=name,
        status=status,
        updated_at=EARLIER,
        label=label,
        events=tuple(
            TargetEvent(
                name=names[i],
                status=LETTERS[letter],
                started_at=None if letter == "P" else started,
                diagnostics=Diagnostics(error_code=code if letter == "F" else None),
            )
            for i, letter in enumerate(events)
        ),
    )


def deployment(**changes: object) -> Deployment:
    base = Deployment(
        id="d-1",
        application_name="app",
        group_name="web",
        group_id="g-1",
        config_name="OneAtATime",
        minimum_healthy=2,
        status=D.IN_PROGRESS,
        revision=RevisionLocation(RevisionType.REGISTRY, digest="sha256:" + "1" * 64),
        description="",
        creator=Creator.USER,
        file_exists_behavior=None,
        ignore_application_stop_failures=False,
        created_at=EARLIER,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def blue_green(**changes: object) -> Deployment:
    style = DeploymentStyle(DeploymentType.BLUE_GREEN)
    return deployment(
        **({"style": style, "minimum_healthy": 0, "target_groups": ("web",)} | changes)
    )


def decided(d: Deployment, *targets: Target, now: datetime = NOW) -> Decision:
    return decide(Snapshot(d, targets), now)


def ref(instance: str, position: int, names: tuple[str, ...] = IN_PLACE_EVENTS) -> EventRef:
    return EventRef("d-1", instance, position, names[position])


def target_moves(decision: Decision) -> list[tuple[str, T]]:
    return [(c.instance_name, c.status) for c in decision.targets]
