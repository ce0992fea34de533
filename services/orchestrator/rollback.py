"""When a finished deployment is rolled back and what its rollback touches (pure):
CodeDeploy's automatic-rollback rules."""

from __future__ import annotations

from deploy.lifecycle import ALLOW_TRAFFIC_EVENTS, BLOCK_TRAFFIC_EVENTS
from services.orchestrator.domain import (
    Creator,
    Deployment,
    DeploymentErrorCode,
    PlannedTarget,
    Target,
    TargetLabel,
)
from services.orchestrator.groups import AutoRollbackEvent
from services.orchestrator.states import DeploymentStatus


def rollback_reason(deployment: Deployment, status: DeploymentStatus) -> str | None:
    """Why `deployment`, ending with `status`, is rolled back; None when it is not.

    A failure is rolled back when its configuration covers DEPLOYMENT_FAILURE; a stop when the
    stop asked for it (or, without an explicit choice, the configuration covers
    DEPLOYMENT_STOP_ON_REQUEST; for a stop by an alarm, DEPLOYMENT_STOP_ON_ALARM). A rollback
    is never itself rolled back.
    """
    if deployment.creator is Creator.ROLLBACK:
        return None
    if status is DeploymentStatus.FAILED and deployment.auto_rollback.covers(
        AutoRollbackEvent.DEPLOYMENT_FAILURE
    ):
        return "Automatic rollback after the deployment failed"
    if status is DeploymentStatus.STOPPED and deployment.roll_back_on_stop:
        error = deployment.error
        if error is not None and error.code is DeploymentErrorCode.ALARM_ACTIVE:
            return "Automatic rollback after an alarm stopped the deployment"
        return "Rollback requested when the deployment was stopped"
    return None


def rollback_targets(
    deployment: Deployment, targets: tuple[Target, ...]
) -> tuple[PlannedTarget, ...]:
    """The rollback's targets: in place, the same instances and events; blue/green, the
    originals rejoin the load balancer and the replacements leave it — nothing is reinstalled."""
    if deployment.blue_green_style:
        swapped = {
            TargetLabel.BLUE: (TargetLabel.GREEN, ALLOW_TRAFFIC_EVENTS),
            TargetLabel.GREEN: (TargetLabel.BLUE, BLOCK_TRAFFIC_EVENTS),
        }
        planned = []
        for target in targets:
            label, events = swapped[target.label]
            planned.append(PlannedTarget(target.instance_name, events, label))
        return tuple(planned)
    names = max((tuple(e.name for e in t.events) for t in targets), key=len, default=())
    return tuple(PlannedTarget(t.instance_name, names) for t in targets)
