"""What a decision on one deployment is: the snapshot it is made on (`Snapshot`), and the
changes to store and the acts to perform after they commit (`Decision`). Made by
`next_step.decide`, stored by the deployment store, performed by the runner's acts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.core.diagnostics import Diagnostics, ErrorCode
from services.orchestrator.domain import (
    BlueGreenProgress,
    Deployment,
    ErrorInformation,
    EventRef,
    PlannedTarget,
    Target,
)
from services.orchestrator.states import (
    DeploymentStatus,
    EventStatus,
    TargetStatus,
)

EVENT_BACKSTOP = timedelta(hours=4)
"""How long an event may stay in flight before the decision fails it: longer than any event
the fleet still tracks can live (its start deadline, an hour of scripts and the grace, and a
wait behind another deployment's hook on the same host), so the fleet decides first whenever
it can."""
FLEET_VERDICTS = frozenset({ErrorCode.AGENT_ISSUE, ErrorCode.TIMEOUT})
"""Why the fleet fails an event itself, not having heard how it ended on the host."""


@dataclass(frozen=True)
class Snapshot:
    """One deployment as stored: what `decide` reads."""

    deployment: Deployment
    targets: tuple[Target, ...]
    """In rollout order; each with its events in order (an event's index is its position)."""
    event_backstop: timedelta = EVENT_BACKSTOP


@dataclass(frozen=True)
class EventChange:
    """An event started (InProgress) or failed by the backstop deadline (Failed)."""

    ref: EventRef
    status: EventStatus
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    started_at: datetime | None = None
    """When an event started (None: now) — a chained one as the one before it ended."""


@dataclass(frozen=True)
class TargetChange:
    instance_name: str
    status: TargetStatus


@dataclass(frozen=True)
class RollbackPlan:
    reason: str
    targets: tuple[PlannedTarget, ...]
    """Who the rollback touches and with which events; the store gives it the group's last
    successful revision."""


@dataclass(frozen=True)
class Finish:
    status: DeploymentStatus
    error: ErrorInformation | None
    """None keeps what is recorded (a stop's MANUAL_STOP)."""
    rollback: RollbackPlan | None = None


@dataclass(frozen=True)
class Decision:
    """The changes to store, in order, and the acts to perform after they are committed."""

    begin: bool = False
    """Created → InProgress."""
    events: tuple[EventChange, ...] = ()
    targets: tuple[TargetChange, ...] = ()
    skip_unstarted: bool = False
    """Stopping: targets not started (or Ready) and events not started become Skipped."""
    ready: bool = False
    """InProgress → Ready (the replacement fleet waits for continue-deployment)."""
    progress: BlueGreenProgress | None = None
    """The blue/green progress to store, when it changed."""
    finish: Finish | None = None
    weights: dict[str, int] = field(default_factory=dict)
    """Per-instance load-balancer weights to set (in every target group) before dispatching."""
    provision: int = 0
    """Ask the provisioner for this many replacement instances."""
    collect_green: int = 0
    """Look for this many provisioned instances online; they become the replacement fleet."""
    retire: tuple[str, ...] = ()
    """Original instances to retire (TERMINATE)."""
    running: tuple[EventRef, ...] = ()
    """Every event started and not ended once the decision is applied."""
    held: tuple[EventRef, ...] = ()
    """The events not started here that agents hold and may still run or have run (sent with
    an earlier event of their chain, `lifecycle.chain`): a stop cancels them with the running
    ones, and their results are waited for."""
    wake_at: datetime | None = None
    """When to decide again if nothing happens before."""

    @property
    def started(self) -> tuple[EventRef, ...]:
        """Events to dispatch (agents) or run (traffic)."""
        return tuple(c.ref for c in self.events if c.status is EventStatus.IN_PROGRESS)
