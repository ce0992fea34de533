"""A deployment group and its settings (auto rollback, alarms, triggers, deployment style),
changes to it, and what GetDeploymentGroup tells of it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from services.core.errors import InvalidArgument
from services.core.revision import RevisionLocation
from services.core.tags import Tag, TagFilter, TagFilterType, matches_any
from services.core.urls import redact_url
from services.orchestrator.bluegreen import BlueGreenConfig
from services.orchestrator.states import DeliveryStatus, DeploymentStatus

_V = TypeVar("_V")


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
    status: DeliveryStatus
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
