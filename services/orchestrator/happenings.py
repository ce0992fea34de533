"""What a deployment's runner records before it decides (the happenings: a result, a stop, a
continue, replacements online, an act that failed, alarms) and what a step gives back: what
was recorded and the decision taken on it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.orchestrator.decision import Decision, Snapshot
from services.orchestrator.domain import Deployment, ErrorInformation, Target
from services.orchestrator.results import EventEnded


@dataclass(frozen=True)
class StopRequested:
    roll_back: bool | None
    """None: the deployment's DEPLOYMENT_STOP_ON_REQUEST setting decides."""


@dataclass(frozen=True)
class Continued:
    termination: bool
    """False: reroute a Ready deployment now; True: end the termination wait now."""


@dataclass(frozen=True)
class GreenOnline:
    """The provisioned replacement instances are online: they join the deployment."""

    instances: tuple[str, ...]


@dataclass(frozen=True)
class ActFailed:
    """An act outside the database (provisioning, retirement) failed for good."""

    error: ErrorInformation


@dataclass(frozen=True)
class Retired:
    """The original instances were retired."""


@dataclass(frozen=True)
class AlarmFired:
    """Alarms of the deployment fired: it stops (ALARM_ACTIVE)."""

    alarms: tuple[str, ...]


@dataclass(frozen=True)
class AlarmsClear:
    """The alarms were read and none had fired up to `until` (a traffic step may move on)."""

    until: datetime


Happening = (
    EventEnded
    | StopRequested
    | Continued
    | GreenOnline
    | ActFailed
    | Retired
    | AlarmFired
    | AlarmsClear
    | None
)
"""What is recorded before a decision; None: only the clock moved."""


@dataclass(frozen=True)
class Step:
    """What was recorded and the decision taken on it, as committed."""

    recorded: bool
    """False when nothing that happened changed anything (duplicate reports): nothing was
    decided."""
    decision: Decision
    happened: tuple[Happening, ...] = ()
    deployment: Deployment | None = None
    """As loaded for the decision (before it)."""
    targets: tuple[Target, ...] = ()
    ended: tuple[tuple[EventEnded, float], ...] = ()
    """The events whose results were recorded, with how long each ran (seconds)."""
    rollback_id: str | None = None
    """The rollback deployment created as the deployment finished, to start."""

    @functools.cached_property
    def by_instance(self) -> dict[str, Target]:
        """The targets by instance name."""
        return {t.instance_name: t for t in self.targets}


Decide = Callable[[Snapshot, datetime], Decision]
