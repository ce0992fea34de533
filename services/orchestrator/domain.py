"""The orchestrator's domain: deployment groups, deployments, targets and lifecycle events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from deploy.hookoutput import OutputLine
from deploy.lifecycle import EVENT_NAMES, LifecycleEvent
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.revision import RevisionLocation
from services.core.tags import TagFilter
from services.orchestrator.bluegreen import BlueGreenConfig, TrafficRouting
from services.orchestrator.groups import (
    AlarmConfig,
    AutoRollbackConfig,
    DeploymentStyle,
    DeploymentType,
)
from services.orchestrator.states import DeploymentStatus, EventStatus, TargetStatus


class FileExistsBehavior(StrEnum):
    DISALLOW = "DISALLOW"
    OVERWRITE = "OVERWRITE"
    RETAIN = "RETAIN"


class DeploymentErrorCode(StrEnum):
    AGENT_ISSUE = "AGENT_ISSUE"
    ALARM_ACTIVE = "ALARM_ACTIVE"
    HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
    HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
    NO_INSTANCES = "NO_INSTANCES"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    MANUAL_STOP = "MANUAL_STOP"
    TIMEOUT = "TIMEOUT"


@dataclass(frozen=True)
class ErrorInformation:
    code: DeploymentErrorCode
    message: str


class Creator(StrEnum):
    """Who created a deployment (CodeDeploy's DeploymentCreator values that apply here)."""

    USER = "user"
    ROLLBACK = "codeDeployRollback"
    AUTO_UPDATE = "CodeDeployAutoUpdate"


@dataclass(frozen=True)
class RollbackInfo:
    rollback_deployment_id: str = ""
    """The deployment that rolled this one back."""
    rollback_triggering_deployment_id: str = ""
    """The deployment this one rolls back."""
    message: str = ""


@dataclass(frozen=True)
class TargetEvent:
    """One of a target's lifecycle events as recorded."""

    name: LifecycleEvent
    status: EventStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    diagnostics: Diagnostics = field(default_factory=Diagnostics)


@dataclass(frozen=True)
class EventRef:
    """One lifecycle event of one instance in one deployment; also its agent command's id."""

    deployment_id: str
    instance_name: str
    position: int
    name: LifecycleEvent

    @property
    def command_id(self) -> str:
        return f"{self.deployment_id}:{self.instance_name}:{self.position}:{self.name}"

    @classmethod
    def parse(cls, command_id: str) -> EventRef | None:
        parts = command_id.split(":")
        event = EVENT_NAMES.get(parts[-1])
        if len(parts) != 4 or not parts[2].isdigit() or event is None:
            return None
        return cls(parts[0], parts[1], int(parts[2]), event)


@dataclass(frozen=True)
class HookLine:
    """A line of hook output of one lifecycle event of one target."""

    target_id: str
    lifecycle_event: str
    line: OutputLine


class TargetLabel(StrEnum):
    """Which fleet of a blue/green deployment a target belongs to (none in place)."""

    NONE = ""
    BLUE = "Blue"
    GREEN = "Green"


@dataclass(frozen=True)
class PlannedTarget:
    """An instance a new deployment will touch, and its lifecycle events in order."""

    instance_name: str
    events: tuple[LifecycleEvent, ...]
    label: TargetLabel = TargetLabel.NONE


@dataclass(frozen=True)
class Target:
    deployment_id: str
    instance_name: str
    status: TargetStatus
    updated_at: datetime
    events: tuple[TargetEvent, ...]
    instance_revision: RevisionLocation | None = None
    """Once the deployment ended: the revision the instance was left on."""
    label: TargetLabel = TargetLabel.NONE


FAILURE_CAUSES: dict[ErrorCode, DeploymentErrorCode] = {
    ErrorCode.AGENT_ISSUE: DeploymentErrorCode.AGENT_ISSUE,
    ErrorCode.TIMEOUT: DeploymentErrorCode.TIMEOUT,
}
"""Lifecycle failures that name the deployment's failure (else HEALTH_CONSTRAINTS): an agent
that went away, or an event that missed its deadline."""


def failure_code(targets: Sequence[Target]) -> DeploymentErrorCode:
    """Why too many instances failed: the cause of the first failed event that has one of
    FAILURE_CAUSES, else CodeDeploy's HEALTH_CONSTRAINTS."""
    for target in targets:
        for event in target.events:
            code = event.diagnostics.error_code
            if event.status is EventStatus.FAILED and code in FAILURE_CAUSES:
                return FAILURE_CAUSES[code]
    return DeploymentErrorCode.HEALTH_CONSTRAINTS


@dataclass(frozen=True)
class BlueGreenProgress:
    """How far a blue/green deployment got beyond its targets' states (stored, so a restart
    resumes it)."""

    provision_requested_at: datetime | None = None
    ready_until: datetime | None = None
    continued: bool = False
    traffic_step: int = -1
    step_started_at: datetime | None = None
    green_weight: int = 0
    blue_weight: int = 0
    terminate_at: datetime | None = None
    retired_at: datetime | None = None
    """When the original instances were retired (TERMINATE)."""


@dataclass(frozen=True)
class Deployment:
    id: str
    application_name: str
    group_name: str
    group_id: str
    config_name: str
    minimum_healthy: int
    """M, fixed at creation from the config and the number of instances."""
    status: DeploymentStatus
    revision: RevisionLocation
    description: str
    creator: Creator
    file_exists_behavior: FileExistsBehavior | None
    ignore_application_stop_failures: bool
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: ErrorInformation | None = None
    auto_rollback: AutoRollbackConfig = field(default_factory=AutoRollbackConfig)
    """The configuration in force: the deployment's own, else its group's at creation."""
    update_outdated_instances_only: bool = False
    rollback: RollbackInfo = RollbackInfo()
    fetch_through_registry: bool = False
    stop_requested: bool = False
    roll_back_on_stop: bool = False
    """Decided when the stop was requested: the request's flag, else the configuration's."""
    untouched_healthy: int = 0
    """Instances of the group this deployment leaves alone (already on its revision): they
    count towards the minimum healthy hosts."""
    status_messages: tuple[str, ...] = ()
    style: DeploymentStyle = field(default_factory=DeploymentStyle)
    target_groups: tuple[str, ...] = ()
    """The target groups instances leave before they are touched and rejoin after (with
    traffic control); fixed at creation."""
    blue_green: BlueGreenConfig = field(default_factory=BlueGreenConfig)
    routing: TrafficRouting = field(default_factory=TrafficRouting)
    target_instances: tuple[TagFilter, ...] = ()
    progress: BlueGreenProgress = BlueGreenProgress()
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    """The configuration in force: the deployment's override, else its group's at creation."""
    alarms_clear_at: datetime | None = None
    """Until when the alarms were read and none had fired (a traffic step waits for it)."""

    @property
    def blue_green_style(self) -> bool:
        return self.style.type is DeploymentType.BLUE_GREEN


@dataclass(frozen=True)
class DeploymentRequest:
    """A validated CreateDeployment: what to deploy where, before the orchestrator resolves it."""

    application_name: str
    group_name: str
    revision: RevisionLocation
    config_name: str
    description: str
    file_exists_behavior: FileExistsBehavior | None
    ignore_application_stop_failures: bool
    auto_rollback: AutoRollbackConfig | None = None
    """None: the group's."""
    update_outdated_instances_only: bool = False
    creator: Creator = Creator.USER
    catch_up_since: datetime | None = None
    """Catch-up: of the outdated instances, only those no deployment touched since then."""
    target_instances: tuple[TagFilter, ...] = ()
    """Blue/green that discovers its replacement fleet: the tags that choose it."""
    alarms: AlarmConfig | None = None
    """None: the group's."""


@dataclass(frozen=True)
class InstanceRevision:
    """What one instance of a group runs, and when a deployment of the group last touched it."""

    current: RevisionLocation | None
    """The last revision that succeeded on it; None: none yet."""
    touched_at: datetime


@dataclass(frozen=True)
class DeploymentQuery:
    """ListDeployments: which deployments, newest first, one page at a time."""

    application_name: str | None = None
    """None: of every application."""
    group_id: str | None = None
    """None: of every group."""
    statuses: tuple[DeploymentStatus, ...] = ()
    created_from: datetime | None = None
    """Inclusive lower bound of the create time; None: none."""
    created_to: datetime | None = None
    """Inclusive upper bound of the create time; None: none."""
    after: tuple[datetime, str] | None = None
    """(create time, id) of the last deployment of the previous page."""
    limit: int = 100
