"""Parsing the load-balancing flags: deployment style, load balancer info, the blue/green
configuration, the replacement fleet (--target-instances) and traffic routing. Each accepts the
AWS CLI's nested shorthand or JSON, and waits given in minutes (CodeDeploy's unit) also take
a ...InSeconds form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from deploy.cli.shorthand import parse_nested
from deploy.errors import ClientError
from deploy.v1 import common_pb2, orchestrator_pb2

_E = TypeVar("_E")


def _names(enum: Any, prefix: str) -> dict[str, Any]:
    return {name.removeprefix(prefix): number for name, number in enum.items() if number}


DEPLOYMENT_TYPES = _names(orchestrator_pb2.DeploymentType, "DEPLOYMENT_TYPE_")
DEPLOYMENT_OPTIONS = _names(orchestrator_pb2.DeploymentOption, "DEPLOYMENT_OPTION_")
READY_ACTIONS = _names(orchestrator_pb2.ReadyAction, "READY_ACTION_")
BLUE_ACTIONS = _names(orchestrator_pb2.BlueInstanceAction, "BLUE_INSTANCE_ACTION_")
GREEN_ACTIONS = {
    **_names(orchestrator_pb2.GreenFleetProvisioningAction, "GREEN_FLEET_PROVISIONING_ACTION_"),
    # CodeDeploy's name for a fleet that is copied rather than found.
    "COPY_AUTO_SCALING_GROUP": orchestrator_pb2.GREEN_FLEET_PROVISIONING_ACTION_PROVISION,
}
ROUTING_TYPES = {
    "AllAtOnce": orchestrator_pb2.TRAFFIC_ROUTING_TYPE_ALL_AT_ONCE,
    "TimeBasedCanary": orchestrator_pb2.TRAFFIC_ROUTING_TYPE_TIME_BASED_CANARY,
    "TimeBasedLinear": orchestrator_pb2.TRAFFIC_ROUTING_TYPE_TIME_BASED_LINEAR,
}
TAG_FILTER_TYPES = _names(common_pb2.TagFilterType, "TAG_FILTER_TYPE_")


def _choice(flag: str, key: str, raw: Mapping[str, Any], choices: Mapping[str, _E]) -> _E:
    value = str(raw[key])
    if value not in choices:
        raise ClientError(f"{flag}: {key} must be one of {', '.join(choices)}, not {value!r}")
    return choices[value]


def _number(flag: str, raw: Mapping[str, Any], key: str) -> int:
    value = str(raw.get(key, "0"))
    if not value.isdigit():
        raise ClientError(f"{flag}: {key} must be a whole number, not {value!r}")
    return int(value)


def _section(flag: str, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ClientError(f"{flag}: {key} must be a structure {{…}}")
    return value


def _known(flag: str, raw: Mapping[str, Any], *keys: str) -> None:
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ClientError(f"{flag}: unknown key {unknown[0]!r} (known: {', '.join(keys)})")


def deployment_style(text: str) -> orchestrator_pb2.DeploymentStyle:
    """--deployment-style deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL."""
    flag = "--deployment-style"
    raw = parse_nested(flag, text)
    _known(flag, raw, "deploymentType", "deploymentOption")
    style = orchestrator_pb2.DeploymentStyle()
    if "deploymentType" in raw:
        style.deployment_type = _choice(flag, "deploymentType", raw, DEPLOYMENT_TYPES)
    if "deploymentOption" in raw:
        style.deployment_option = _choice(flag, "deploymentOption", raw, DEPLOYMENT_OPTIONS)
    return style


def load_balancer_info(text: str) -> orchestrator_pb2.LoadBalancerInfo:
    """--load-balancer-info targetGroupInfoList=[{name=a},{name=b}]."""
    flag = "--load-balancer-info"
    raw = parse_nested(flag, text)
    _known(flag, raw, "targetGroupInfoList")
    groups = raw.get("targetGroupInfoList", [])
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and g.get("name") for g in groups
    ):
        raise ClientError(f"{flag}: targetGroupInfoList must be a list of {{name=…}}")
    return orchestrator_pb2.LoadBalancerInfo(
        target_group_info_list=[
            orchestrator_pb2.LoadBalancerTargetGroup(name=str(g["name"])) for g in groups
        ]
    )


def blue_green_configuration(text: str) -> orchestrator_pb2.BlueGreenDeploymentConfiguration:
    """--blue-green-deployment-configuration
    terminateBlueInstancesOnDeploymentSuccess={action=TERMINATE,terminationWaitTimeInMinutes=5},
    deploymentReadyOption={actionOnTimeout=STOP_DEPLOYMENT,waitTimeInMinutes=60},
    greenFleetProvisioningOption={action=DISCOVER_EXISTING|PROVISION,provisionerName=…}."""
    flag = "--blue-green-deployment-configuration"
    raw = parse_nested(flag, text)
    terminate_key, ready_key, green_key = (
        "terminateBlueInstancesOnDeploymentSuccess",
        "deploymentReadyOption",
        "greenFleetProvisioningOption",
    )
    _known(flag, raw, terminate_key, ready_key, green_key)
    config = orchestrator_pb2.BlueGreenDeploymentConfiguration()
    terminate = _section(flag, raw, terminate_key)
    _known(
        flag,
        terminate,
        "action",
        "terminationWaitTimeInMinutes",
        "terminationWaitTimeInSeconds",
    )
    option = config.terminate_blue_instances_on_deployment_success
    if "action" in terminate:
        option.action = _choice(flag, "action", terminate, BLUE_ACTIONS)
    option.termination_wait_time_in_minutes = _number(
        flag, terminate, "terminationWaitTimeInMinutes"
    )
    option.termination_wait_time_in_seconds = _number(
        flag, terminate, "terminationWaitTimeInSeconds"
    )
    ready = _section(flag, raw, ready_key)
    _known(flag, ready, "actionOnTimeout", "waitTimeInMinutes", "waitTimeInSeconds")
    ready_option = config.deployment_ready_option
    if "actionOnTimeout" in ready:
        ready_option.action_on_timeout = _choice(flag, "actionOnTimeout", ready, READY_ACTIONS)
    ready_option.wait_time_in_minutes = _number(flag, ready, "waitTimeInMinutes")
    ready_option.wait_time_in_seconds = _number(flag, ready, "waitTimeInSeconds")
    green = _section(flag, raw, green_key)
    _known(flag, green, "action", "provisionerName", "timeoutInSeconds")
    green_option = config.green_fleet_provisioning_option
    if "action" in green:
        green_option.action = _choice(flag, "action", green, GREEN_ACTIONS)
    green_option.provisioner_name = str(green.get("provisionerName", ""))
    green_option.timeout_in_seconds = _number(flag, green, "timeoutInSeconds")
    return config


def target_instances(text: str) -> orchestrator_pb2.TargetInstances:
    """--target-instances tagFilters=[{Key=role,Value=green,Type=KEY_AND_VALUE}]."""
    flag = "--target-instances"
    raw = parse_nested(flag, text)
    _known(flag, raw, "tagFilters")
    filters = raw.get("tagFilters", [])
    if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
        raise ClientError(f"{flag}: tagFilters must be a list of {{Key=…,Value=…,Type=…}}")
    return orchestrator_pb2.TargetInstances(tag_filters=[tag_filter(flag, f) for f in filters])


def tag_filter(flag: str, item: Mapping[str, Any]) -> common_pb2.TagFilter:
    """{Key, Value, Type} (Type KEY_AND_VALUE unless given) → a TagFilter."""
    kind = str(item.get("Type", "KEY_AND_VALUE"))
    if kind not in TAG_FILTER_TYPES:
        raise ClientError(f"{flag}: Type must be KEY_ONLY, VALUE_ONLY or KEY_AND_VALUE")
    return common_pb2.TagFilter(
        key=str(item.get("Key", "")), value=str(item.get("Value", "")), type=TAG_FILTER_TYPES[kind]
    )


def traffic_routing(text: str) -> orchestrator_pb2.TrafficRoutingConfig:
    """--traffic-routing-config type=TimeBasedCanary,timeBasedCanary={canaryPercentage=10,
    canaryInterval=5} (minutes; canaryIntervalSeconds / linearIntervalSeconds for seconds)."""
    flag = "--traffic-routing-config"
    raw = parse_nested(flag, text)
    _known(flag, raw, "type", "timeBasedCanary", "timeBasedLinear")
    config = orchestrator_pb2.TrafficRoutingConfig(
        type=_choice(flag, "type", {"type": raw.get("type", "AllAtOnce")}, ROUTING_TYPES)
    )
    canary = _section(flag, raw, "timeBasedCanary")
    if canary:
        _known(flag, canary, "canaryPercentage", "canaryInterval", "canaryIntervalSeconds")
        config.time_based_canary.canary_percentage = _number(flag, canary, "canaryPercentage")
        config.time_based_canary.canary_interval = _number(flag, canary, "canaryInterval")
        config.time_based_canary.canary_interval_seconds = _number(
            flag, canary, "canaryIntervalSeconds"
        )
    linear = _section(flag, raw, "timeBasedLinear")
    if linear:
        _known(flag, linear, "linearPercentage", "linearInterval", "linearIntervalSeconds")
        config.time_based_linear.linear_percentage = _number(flag, linear, "linearPercentage")
        config.time_based_linear.linear_interval = _number(flag, linear, "linearInterval")
        config.time_based_linear.linear_interval_seconds = _number(
            flag, linear, "linearIntervalSeconds"
        )
    return config
