"""A deployment group's settings ↔ their messages: tag filters and tag sets, auto rollback,
alarms, triggers, deployment style, load balancer and blue/green configuration — each read and
checked here, naming its field (part of the service's edge, with convert.py and requests.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from deploy.v1 import common_pb2, orchestrator_pb2
from services.core.convert import enum_from_proto, tag_filter_from_proto
from services.core.errors import InvalidArgument
from services.core.names import check_name
from services.core.tags import TagFilter, check_tag_filters
from services.core.urls import check_http_url
from services.orchestrator.bluegreen import (
    BlueGreenConfig,
    BlueInstanceAction,
    GreenFleetAction,
    ReadyAction,
)
from services.orchestrator.groups import (
    MAX_ALARMS,
    AlarmConfig,
    AutoRollbackConfig,
    AutoRollbackEvent,
    DeploymentOption,
    DeploymentStyle,
    DeploymentType,
    TriggerConfig,
    TriggerEvent,
)

pb = orchestrator_pb2

_AUTO_ROLLBACK_EVENT = {
    AutoRollbackEvent.DEPLOYMENT_FAILURE: pb.AUTO_ROLLBACK_EVENT_DEPLOYMENT_FAILURE,
    AutoRollbackEvent.DEPLOYMENT_STOP_ON_ALARM: pb.AUTO_ROLLBACK_EVENT_DEPLOYMENT_STOP_ON_ALARM,
    AutoRollbackEvent.DEPLOYMENT_STOP_ON_REQUEST: pb.AUTO_ROLLBACK_EVENT_DEPLOYMENT_STOP_ON_REQUEST,
}


TRIGGER_EVENTS = {
    TriggerEvent.DEPLOYMENT_START: pb.TRIGGER_EVENT_TYPE_DEPLOYMENT_START,
    TriggerEvent.DEPLOYMENT_SUCCESS: pb.TRIGGER_EVENT_TYPE_DEPLOYMENT_SUCCESS,
    TriggerEvent.DEPLOYMENT_FAILURE: pb.TRIGGER_EVENT_TYPE_DEPLOYMENT_FAILURE,
    TriggerEvent.DEPLOYMENT_STOP: pb.TRIGGER_EVENT_TYPE_DEPLOYMENT_STOP,
    TriggerEvent.DEPLOYMENT_ROLLBACK: pb.TRIGGER_EVENT_TYPE_DEPLOYMENT_ROLLBACK,
    TriggerEvent.DEPLOYMENT_READY: pb.TRIGGER_EVENT_TYPE_DEPLOYMENT_READY,
    TriggerEvent.INSTANCE_START: pb.TRIGGER_EVENT_TYPE_INSTANCE_START,
    TriggerEvent.INSTANCE_SUCCESS: pb.TRIGGER_EVENT_TYPE_INSTANCE_SUCCESS,
    TriggerEvent.INSTANCE_FAILURE: pb.TRIGGER_EVENT_TYPE_INSTANCE_FAILURE,
    TriggerEvent.INSTANCE_READY: pb.TRIGGER_EVENT_TYPE_INSTANCE_READY,
}


MAX_TRIGGERS = 10
"""CodeDeploy's limit per deployment group."""
MAX_TAG_SET_GROUPS = 3


def tag_filters_from_proto(
    field: str, messages: Iterable[common_pb2.TagFilter]
) -> tuple[TagFilter, ...]:
    return tuple(
        check_tag_filters(
            field, [tag_filter_from_proto(f, f"{field}[{i}]") for i, f in enumerate(messages)]
        )
    )


def tag_set_from_proto(groups: Iterable[pb.TagFilterGroup]) -> tuple[tuple[TagFilter, ...], ...]:
    """Up to three groups of filters, each non-empty (an instance must match one of each)."""
    tag_set = tuple(
        tag_filters_from_proto(f"onPremisesTagSet[{i}]", group.filters)
        for i, group in enumerate(groups)
    )
    if any(not filters for filters in tag_set):
        raise InvalidArgument("onPremisesTagSet: every group needs at least one tag filter")
    if len(tag_set) > MAX_TAG_SET_GROUPS:
        raise InvalidArgument(f"onPremisesTagSet has more than {MAX_TAG_SET_GROUPS} groups")
    return tag_set


def auto_rollback_from_proto(
    message: pb.AutoRollbackConfiguration, field: str
) -> AutoRollbackConfig:
    events = frozenset(
        enum_from_proto(_AUTO_ROLLBACK_EVENT, e, f"{field}.events[{i}]")
        for i, e in enumerate(message.events)
    )
    if message.enabled and not events:
        raise InvalidArgument(f"{field}.events: name at least one event when enabled")
    return AutoRollbackConfig(message.enabled, events)


def auto_rollback_to_proto(config: AutoRollbackConfig) -> pb.AutoRollbackConfiguration:
    return pb.AutoRollbackConfiguration(
        enabled=config.enabled, events=sorted(_AUTO_ROLLBACK_EVENT[e] for e in config.events)
    )


def alarms_from_proto(message: pb.AlarmConfiguration, field: str) -> AlarmConfig:
    """Unique alarm names of 1 to 255 characters, at most ten; enabled needs at least one."""
    if len(message.alarms) > MAX_ALARMS:
        raise InvalidArgument(f"{field}.alarms: at most {MAX_ALARMS} alarms")
    names: list[str] = []
    for i, alarm in enumerate(message.alarms):
        name = alarm.name.strip()
        if not name or len(name) > 255 or not name.isprintable():
            raise InvalidArgument(f"{field}.alarms[{i}].name: 1 to 255 printable characters")
        if name in names:
            raise InvalidArgument(f"{field}.alarms[{i}].name: {name!r} is named twice")
        names.append(name)
    if message.enabled and not names:
        raise InvalidArgument(f"{field}.alarms: name at least one alarm when enabled")
    return AlarmConfig(message.enabled, message.ignore_poll_alarm_failure, tuple(names))


def alarms_to_proto(config: AlarmConfig) -> pb.AlarmConfiguration:
    return pb.AlarmConfiguration(
        enabled=config.enabled,
        ignore_poll_alarm_failure=config.ignore_poll_failure,
        alarms=[pb.Alarm(name=name) for name in config.alarms],
    )


def triggers_from_proto(
    messages: Sequence[pb.TriggerConfig], field: str
) -> tuple[TriggerConfig, ...]:
    """Webhook triggers: unique names, http(s) URLs, at least one event each, at most ten."""
    if len(messages) > MAX_TRIGGERS:
        raise InvalidArgument(f"{field}: at most {MAX_TRIGGERS} triggers per deployment group")
    triggers: list[TriggerConfig] = []
    for i, message in enumerate(messages):
        where = f"{field}[{i}]"
        name = check_name(f"{where}.triggerName", message.trigger_name)
        if any(t.name == name for t in triggers):
            raise InvalidArgument(f"{where}.triggerName {name!r} is used twice")
        url = check_http_url(f"{where}.triggerTargetUrl", message.trigger_target_url)
        events = frozenset(
            enum_from_proto(TRIGGER_EVENTS, e, f"{where}.triggerEvents[{j}]")
            for j, e in enumerate(message.trigger_events)
        )
        if not events:
            raise InvalidArgument(f"{where}.triggerEvents: name at least one event")
        triggers.append(TriggerConfig(name, url, events))
    return tuple(triggers)


_DEPLOYMENT_TYPE = {
    DeploymentType.IN_PLACE: pb.DEPLOYMENT_TYPE_IN_PLACE,
    DeploymentType.BLUE_GREEN: pb.DEPLOYMENT_TYPE_BLUE_GREEN,
}


_DEPLOYMENT_OPTION = {
    DeploymentOption.WITH_TRAFFIC_CONTROL: pb.DEPLOYMENT_OPTION_WITH_TRAFFIC_CONTROL,
    DeploymentOption.WITHOUT_TRAFFIC_CONTROL: pb.DEPLOYMENT_OPTION_WITHOUT_TRAFFIC_CONTROL,
}


def style_from_proto(message: pb.DeploymentStyle) -> DeploymentStyle:
    """Unset fields take CodeDeploy's defaults (IN_PLACE, WITHOUT_TRAFFIC_CONTROL)."""
    default = DeploymentStyle()
    return DeploymentStyle(
        enum_from_proto(_DEPLOYMENT_TYPE, message.deployment_type, "deploymentStyle.deploymentType")
        if message.deployment_type
        else default.type,
        enum_from_proto(
            _DEPLOYMENT_OPTION, message.deployment_option, "deploymentStyle.deploymentOption"
        )
        if message.deployment_option
        else default.option,
    )


def style_to_proto(style: DeploymentStyle) -> pb.DeploymentStyle:
    return pb.DeploymentStyle(
        deployment_type=_DEPLOYMENT_TYPE[style.type],
        deployment_option=_DEPLOYMENT_OPTION[style.option],
    )


def target_groups_from_proto(message: pb.LoadBalancerInfo) -> tuple[str, ...]:
    names: list[str] = []
    for i, group in enumerate(message.target_group_info_list):
        name = check_name(f"loadBalancerInfo.targetGroupInfoList[{i}].name", group.name)
        if name in names:
            raise InvalidArgument(
                f"loadBalancerInfo.targetGroupInfoList[{i}].name {name!r} is listed twice"
            )
        names.append(name)
    return tuple(names)


def load_balancer_to_proto(target_groups: Sequence[str]) -> pb.LoadBalancerInfo:
    return pb.LoadBalancerInfo(
        target_group_info_list=[pb.LoadBalancerTargetGroup(name=n) for n in target_groups]
    )


_READY_ACTION = {
    ReadyAction.CONTINUE_DEPLOYMENT: pb.READY_ACTION_CONTINUE_DEPLOYMENT,
    ReadyAction.STOP_DEPLOYMENT: pb.READY_ACTION_STOP_DEPLOYMENT,
}


_BLUE_ACTION = {
    BlueInstanceAction.TERMINATE: pb.BLUE_INSTANCE_ACTION_TERMINATE,
    BlueInstanceAction.KEEP_ALIVE: pb.BLUE_INSTANCE_ACTION_KEEP_ALIVE,
}


_GREEN_ACTION = {
    GreenFleetAction.DISCOVER_EXISTING: pb.GREEN_FLEET_PROVISIONING_ACTION_DISCOVER_EXISTING,
    GreenFleetAction.PROVISION: pb.GREEN_FLEET_PROVISIONING_ACTION_PROVISION,
}


def wait_seconds(seconds: int, minutes: int) -> int:
    """A wait given in seconds, else in minutes (CodeDeploy's unit)."""
    return seconds or minutes * 60


def blue_green_from_proto(message: pb.BlueGreenDeploymentConfiguration) -> BlueGreenConfig:
    default = BlueGreenConfig()
    ready = message.deployment_ready_option
    terminate = message.terminate_blue_instances_on_deployment_success
    green = message.green_fleet_provisioning_option
    where = "blueGreenDeploymentConfiguration"
    return BlueGreenConfig(
        ready_action=(
            enum_from_proto(
                _READY_ACTION, ready.action_on_timeout, f"{where}.deploymentReadyOption"
            )
            if ready.action_on_timeout
            else default.ready_action
        ),
        ready_wait_seconds=wait_seconds(ready.wait_time_in_seconds, ready.wait_time_in_minutes),
        blue_action=(
            enum_from_proto(_BLUE_ACTION, terminate.action, f"{where}.terminateBlueInstances")
            if terminate.action
            else default.blue_action
        ),
        termination_wait_seconds=wait_seconds(
            terminate.termination_wait_time_in_seconds, terminate.termination_wait_time_in_minutes
        ),
        green_fleet=(
            enum_from_proto(_GREEN_ACTION, green.action, f"{where}.greenFleetProvisioningOption")
            if green.action
            else default.green_fleet
        ),
        provisioner=green.provisioner_name,
        provision_timeout_seconds=green.timeout_in_seconds or default.provision_timeout_seconds,
    ).check()


def blue_green_to_proto(config: BlueGreenConfig) -> pb.BlueGreenDeploymentConfiguration:
    return pb.BlueGreenDeploymentConfiguration(
        terminate_blue_instances_on_deployment_success=pb.BlueInstanceTerminationOption(
            action=_BLUE_ACTION[config.blue_action],
            termination_wait_time_in_minutes=config.termination_wait_seconds // 60,
            termination_wait_time_in_seconds=config.termination_wait_seconds,
        ),
        deployment_ready_option=pb.DeploymentReadyOption(
            action_on_timeout=_READY_ACTION[config.ready_action],
            wait_time_in_minutes=config.ready_wait_seconds // 60,
            wait_time_in_seconds=config.ready_wait_seconds,
        ),
        green_fleet_provisioning_option=pb.GreenFleetProvisioningOption(
            action=_GREEN_ACTION[config.green_fleet],
            provisioner_name=config.provisioner,
            timeout_in_seconds=config.provision_timeout_seconds,
        ),
    )
