"""When a finished deployment is rolled back (pure): CodeDeploy's automatic-rollback rules."""

from __future__ import annotations

from services.orchestrator.domain import AutoRollbackEvent, Creator, Deployment
from services.orchestrator.states import DeploymentStatus


def rollback_reason(deployment: Deployment, status: DeploymentStatus) -> str:
    """Why `deployment`, ending with `status`, is rolled back; empty when it is not.

    A failure is rolled back when its configuration covers DEPLOYMENT_FAILURE; a stop when the
    stop asked for it (or, without an explicit choice, the configuration covers
    DEPLOYMENT_STOP_ON_REQUEST). A rollback is never itself rolled back.
    """
    if deployment.creator is Creator.ROLLBACK:
        return ""
    if status is DeploymentStatus.FAILED and deployment.auto_rollback.covers(
        AutoRollbackEvent.DEPLOYMENT_FAILURE
    ):
        return "Automatic rollback after the deployment failed"
    if status is DeploymentStatus.STOPPED and deployment.roll_back_on_stop:
        return "Rollback requested when the deployment was stopped"
    return ""
