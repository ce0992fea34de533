"""Rollout arithmetic, pure: which targets go next, and when a deployment has succeeded or failed.

CodeDeploy's rule: with M the minimum healthy hosts, never take an instance out of service if
that would leave fewer than M healthy (healthy = not yet touched + succeeded); the deployment
succeeds when every instance is done and at least max(M, 1) succeeded; it fails as soon as no
more instances may start while none is in flight. A deployment asked to stop starts nothing and
is Stopped once nothing is in flight.

Instances of the group that a deployment leaves alone (`--update-outdated-instances-only`,
catch-up) are healthy throughout and count towards M and the success rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.orchestrator.states import TargetStatus


class Outcome(StrEnum):
    CONTINUE = "Continue"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class RolloutSnapshot:
    """The targets of one deployment in rollout order, and its minimum healthy hosts."""

    targets: tuple[tuple[str, TargetStatus], ...]
    minimum_healthy: int
    untouched_healthy: int = 0
    """Instances of the group outside the deployment, healthy throughout."""
    stopping: bool = False


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    start: tuple[str, ...] = ()
    """Targets to start now (only with CONTINUE)."""
    reason: str = ""
    """Why the deployment failed (only with FAILED)."""


def infeasible(instances: int, minimum_healthy: int) -> str | None:
    """Why the deployment cannot run (CodeDeploy's HEALTH_CONSTRAINTS_INVALID); None if it can."""
    if instances > 0 and instances <= minimum_healthy:
        return (
            f"the deployment config needs {minimum_healthy} healthy instance(s) "
            f"but the group has only {instances}"
        )
    return None


def decide(snapshot: RolloutSnapshot) -> Decision:
    """What to do next for one deployment, from its targets' statuses alone."""
    statuses = [status for _, status in snapshot.targets]
    pending = [name for name, status in snapshot.targets if status is TargetStatus.PENDING]
    in_flight = sum(s in (TargetStatus.IN_PROGRESS, TargetStatus.READY) for s in statuses)
    succeeded = statuses.count(TargetStatus.SUCCEEDED)
    failed = statuses.count(TargetStatus.FAILED)
    if not statuses:
        return Decision(Outcome.SUCCEEDED)  # outdated-only, and every instance is up to date
    if snapshot.stopping:
        return Decision(Outcome.CONTINUE if in_flight else Outcome.STOPPED)
    untouched = snapshot.untouched_healthy
    if not pending and not in_flight:
        if succeeded >= 1 and succeeded + untouched >= snapshot.minimum_healthy:
            return Decision(Outcome.SUCCEEDED)
        return Decision(Outcome.FAILED, reason=_too_many_failed(failed, len(statuses)))
    healthy = len(statuses) + untouched - failed - in_flight
    capacity = healthy - snapshot.minimum_healthy
    if pending and capacity > 0:
        return Decision(Outcome.CONTINUE, start=tuple(pending[:capacity]))
    if not in_flight:
        return Decision(Outcome.FAILED, reason=_too_many_failed(failed, len(statuses)))
    return Decision(Outcome.CONTINUE)


def _too_many_failed(failed: int, total: int) -> str:
    return (
        f"The overall deployment failed because too many individual instances failed "
        f"deployment ({failed} of {total}), too few healthy instances are available."
    )
