"""The orchestrator's domain: deployment groups, deployments, targets and lifecycle events."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from deploy.hookoutput import OutputLine
from deploy.lifecycle import EVENT_NAMES, LifecycleEvent
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.errors import InvalidArgument
from services.core.revision import RevisionLocation
from services.core.tags import Tag, TagFilter, TagFilterType, matches_any
from services.core.urls import redact_url
from services.orchestrator.bluegreen import BlueGreenConfig, TrafficRouting
from services.orchestrator.states import DeploymentStatus, EventStatus, TargetStatus

_V = TypeVar("_V")


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


class AutoRollbackEvent(StrEnum):
    DEPLOYMENT_FAILURE = "DEPLOYMENT_FAILURE"
    DEPLOYMENT_STOP_ON_ALARM = "DEPLOYMENT_STOP_ON_ALARM"
    DEPLOYMENT_STOP_ON_REQUEST = "DEPLOYMENT_STOP_ON_REQUEST"


@dataclass(frozen=True)
class AutoRollbackConfig:
    enabled: bool = False
    events: frozenset[AutoRollbackEvent] = frozenset()

    def covers(self, event: AutoRollbackEvent) -> bool:
        return self.enabled and event in self.events


MAX_ALARMS = 10
"""CodeDeploy's model limit of alarms in one alarm configuration."""


@dataclass(frozen=True)
class AlarmConfig:
    """CodeDeploy's alarmConfiguration; each alarm is a Prometheus alerting rule by name."""

    enabled: bool = False
    ignore_poll_failure: bool = False
    """An unreadable Prometheus lets the deployment go on (else it fails it)."""
    alarms: tuple[str, ...] = ()

    @property
    def watched(self) -> bool:
        return self.enabled and bool(self.alarms)


class TriggerEvent(StrEnum):
    DEPLOYMENT_START = "DeploymentStart"
    DEPLOYMENT_SUCCESS = "DeploymentSuccess"
    DEPLOYMENT_FAILURE = "DeploymentFailure"
    DEPLOYMENT_STOP = "DeploymentStop"
    DEPLOYMENT_ROLLBACK = "DeploymentRollback"
    DEPLOYMENT_READY = "DeploymentReady"
    INSTANCE_START = "InstanceStart"
    INSTANCE_SUCCESS = "InstanceSuccess"
    INSTANCE_FAILURE = "InstanceFailure"
    INSTANCE_READY = "InstanceReady"


@dataclass(frozen=True)
class TriggerConfig:
    """A webhook: each of `events` is POSTed as JSON to `url`."""

    name: str
    url: str
    events: frozenset[TriggerEvent]


@dataclass(frozen=True)
class TriggerDelivery:
    """The newest delivery of one trigger, as the group shows it."""

    event: TriggerEvent
    deployment_id: str
    instance_id: str
    status: str
    attempts: int
    http_status: int
    error: str
    last_attempt_at: datetime | None


class DeploymentType(StrEnum):
    IN_PLACE = "IN_PLACE"
    BLUE_GREEN = "BLUE_GREEN"


class DeploymentOption(StrEnum):
    WITH_TRAFFIC_CONTROL = "WITH_TRAFFIC_CONTROL"
    WITHOUT_TRAFFIC_CONTROL = "WITHOUT_TRAFFIC_CONTROL"


@dataclass(frozen=True)
class DeploymentStyle:
    type: DeploymentType = DeploymentType.IN_PLACE
    option: DeploymentOption = DeploymentOption.WITHOUT_TRAFFIC_CONTROL

    @property
    def with_traffic_control(self) -> bool:
        return self.option is DeploymentOption.WITH_TRAFFIC_CONTROL


MAX_TARGET_GROUPS = 10
"""CodeDeploy's limit of target groups in a group's load balancer info."""


@dataclass(frozen=True)
class DeploymentGroup:
    id: str
    application_name: str
    name: str
    config_name: str
    tag_filters: tuple[TagFilter, ...]
    created_at: datetime
    tag_set: tuple[tuple[TagFilter, ...], ...] = ()
    """Groups of filters an instance must all match (any filter within a group)."""
    auto_rollback: AutoRollbackConfig = AutoRollbackConfig()
    triggers: tuple[TriggerConfig, ...] = ()
    fetch_through_registry: bool = False
    """Hosts download S3 revisions from the registry's copy (no S3 access needed on hosts)."""
    style: DeploymentStyle = DeploymentStyle()
    target_groups: tuple[str, ...] = ()
    """The traffic service's target groups that serve the group's instances."""
    blue_green: BlueGreenConfig = field(default_factory=BlueGreenConfig)
    alarms: AlarmConfig = AlarmConfig()

    def check(self) -> DeploymentGroup:
        """InvalidArgument naming the field that makes the group's settings inconsistent."""
        if self.style.type is DeploymentType.BLUE_GREEN and not self.style.with_traffic_control:
            raise InvalidArgument(
                "deploymentStyle.deploymentOption: BLUE_GREEN needs WITH_TRAFFIC_CONTROL (a load "
                "balancer to switch)"
            )
        self.blue_green.check()
        if self.style.with_traffic_control and not self.target_groups:
            raise InvalidArgument(
                "loadBalancerInfo.targetGroupInfoList: WITH_TRAFFIC_CONTROL needs at least one "
                "target group"
            )
        if len(self.target_groups) > MAX_TARGET_GROUPS:
            raise InvalidArgument(
                f"loadBalancerInfo.targetGroupInfoList: at most {MAX_TARGET_GROUPS} target groups"
            )
        return self

    @property
    def traffic_groups(self) -> tuple[str, ...]:
        """The target groups a deployment moves instances in and out of (none without
        traffic control)."""
        return self.target_groups if self.style.with_traffic_control else ()

    @property
    def blue_green_style(self) -> bool:
        return self.style.type is DeploymentType.BLUE_GREEN

    def member_tags(self) -> tuple[Tag, ...]:
        """Tags that make an instance a member (a provisioned replacement fleet gets them):
        the first key-and-value filter, or the first of each tag-set group."""
        groups = self.tag_set or (self.tag_filters,)
        tags = []
        for filters in groups:
            usable = [f for f in filters if f.type is TagFilterType.KEY_AND_VALUE]
            if usable:
                tags.append(Tag(usable[0].key, usable[0].value))
        return tuple(tags)

    def matches(self, tags: Sequence[Tag]) -> bool:
        """Whether an instance with `tags` belongs to the group: any flat filter, or at least
        one filter of every tag-set group; a group without filters has no instances."""
        if self.tag_set:
            return all(matches_any(filters, tags) for filters in self.tag_set)
        return matches_any(self.tag_filters, tags)


@dataclass(frozen=True)
class GroupChange:
    """UpdateDeploymentGroup: None leaves a field as it is."""

    new_name: str | None = None
    config_name: str | None = None
    tag_filters: tuple[TagFilter, ...] | None = None
    tag_set: tuple[tuple[TagFilter, ...], ...] | None = None
    auto_rollback: AutoRollbackConfig | None = None
    triggers: tuple[TriggerConfig, ...] | None = None
    fetch_through_registry: bool | None = None
    style: DeploymentStyle | None = None
    target_groups: tuple[str, ...] | None = None
    blue_green: BlueGreenConfig | None = None
    alarms: AlarmConfig | None = None

    def apply(self, group: DeploymentGroup) -> DeploymentGroup:
        def keep(value: _V | None, current: _V) -> _V:
            return current if value is None else value

        return dataclasses.replace(
            group,
            name=keep(self.new_name, group.name),
            config_name=keep(self.config_name, group.config_name),
            tag_filters=keep(self.tag_filters, group.tag_filters),
            tag_set=keep(self.tag_set, group.tag_set),
            auto_rollback=keep(self.auto_rollback, group.auto_rollback),
            triggers=group.triggers
            if self.triggers is None
            else keep_trigger_secrets(self.triggers, group.triggers),
            fetch_through_registry=keep(self.fetch_through_registry, group.fetch_through_registry),
            style=keep(self.style, group.style),
            target_groups=keep(self.target_groups, group.target_groups),
            blue_green=keep(self.blue_green, group.blue_green),
            alarms=keep(self.alarms, group.alarms),
        ).check()


def keep_trigger_secrets(
    given: tuple[TriggerConfig, ...], current: tuple[TriggerConfig, ...]
) -> tuple[TriggerConfig, ...]:
    """A trigger given back with the redacted URL the API showed keeps its stored URL, so
    get → edit → update does not replace a secret token with REDACTED."""
    stored = {t.name: t.url for t in current}
    return tuple(
        dataclasses.replace(t, url=stored[t.name])
        if t.name in stored and t.url == redact_url(stored[t.name]) != stored[t.name]
        else t
        for t in given
    )


@dataclass(frozen=True)
class LastDeployment:
    id: str
    status: DeploymentStatus
    created_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class GroupRecord:
    """A group with what it has been through: GetDeploymentGroup's answer."""

    group: DeploymentGroup
    target_revision: RevisionLocation | None
    last_successful: LastDeployment | None
    last_attempted: LastDeployment | None
    deliveries: dict[str, TriggerDelivery]
    """The newest delivery of each trigger, by trigger name."""


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
    auto_rollback: AutoRollbackConfig = AutoRollbackConfig()
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
    style: DeploymentStyle = DeploymentStyle()
    target_groups: tuple[str, ...] = ()
    """The target groups instances leave before they are touched and rejoin after (with
    traffic control); fixed at creation."""
    blue_green: BlueGreenConfig = field(default_factory=BlueGreenConfig)
    routing: TrafficRouting = field(default_factory=TrafficRouting)
    target_instances: tuple[TagFilter, ...] = ()
    progress: BlueGreenProgress = BlueGreenProgress()
    alarms: AlarmConfig = AlarmConfig()
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
