"""What a trigger sends: the JSON documents of deployment and instance events, and when to retry.

The shapes follow CodeDeploy's trigger notifications (field names as in its SNS messages), with
real JSON objects where CodeDeploy nests JSON in strings, and ISO-8601 UTC times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from services.orchestrator.domain import Deployment, Target
from services.orchestrator.groups import TriggerEvent
from services.orchestrator.states import TargetStatus

RETRY_DELAYS_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
"""Waits after each failed attempt; when they run out the delivery is given up (Failed)."""


def retry_at(attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts; None: give up."""
    if attempts > len(RETRY_DELAYS_SECONDS):
        return None
    return now + timedelta(seconds=RETRY_DELAYS_SECONDS[attempts - 1])


def _time(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def deployment_payload(
    trigger_name: str,
    event: TriggerEvent,
    deployment: Deployment,
    targets: Sequence[TargetStatus],
) -> dict[str, Any]:
    counts = Counter(targets)
    return {
        "eventTriggerName": trigger_name,
        "event": event.value,
        "applicationName": deployment.application_name,
        "deploymentGroupName": deployment.group_name,
        "deploymentId": deployment.id,
        "creator": deployment.creator.value,
        "createTime": _time(deployment.created_at),
        "completeTime": _time(deployment.completed_at),
        "status": deployment.status.value.upper(),
        "deploymentOverview": {status.value: counts[status] for status in TargetStatus},
        "errorInformation": (
            {"code": deployment.error.code.value, "message": deployment.error.message}
            if deployment.error
            else {}
        ),
        "rollbackInfo": {
            "rollbackDeploymentId": deployment.rollback.rollback_deployment_id,
            "rollbackTriggeringDeploymentId": deployment.rollback.rollback_triggering_deployment_id,
            "rollbackMessage": deployment.rollback.message,
        },
    }


def instance_payload(
    trigger_name: str, event: TriggerEvent, deployment: Deployment, target: Target
) -> dict[str, Any]:
    return {
        "eventTriggerName": trigger_name,
        "event": event.value,
        "applicationName": deployment.application_name,
        "deploymentGroupName": deployment.group_name,
        "deploymentId": deployment.id,
        "instanceId": target.instance_name,
        "lastUpdatedAt": _time(target.updated_at),
        "instanceStatus": target.status.value,
        "lifecycleEvents": [
            {
                "LifecycleEvent": e.name,
                "LifecycleEventStatus": e.status.value,
                "StartTime": _time(e.started_at),
                "EndTime": _time(e.ended_at),
            }
            for e in target.events
        ],
    }
