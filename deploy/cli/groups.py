"""The deployment group verbs, and the flags of a group's configuration (tag sets, automatic
rollback, alarms, triggers) that a deployment may override."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from deploy.cli import load_balancing, render
from deploy.cli.shorthand import parse_list, parse_nested, parse_structure, require
from deploy.cli.values import Result, tag_filters
from deploy.client import DeployClient
from deploy.errors import ClientError
from deploy.v1 import orchestrator_pb2

_E = TypeVar("_E")


def _tag_set(text: str | None) -> list[orchestrator_pb2.TagFilterGroup]:
    """--on-premises-tag-set as the AWS CLI takes it in JSON:
    {"onPremisesTagSetList": [[{"Key": …, "Value": …, "Type": …}, …], …]}."""
    if not text:
        return []
    flag = "--on-premises-tag-set"
    groups = parse_structure(flag, text).get("onPremisesTagSetList")
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise ClientError(f'{flag}: expected JSON {{"onPremisesTagSetList": [[{{…}}], …]}}')
    return [
        orchestrator_pb2.TagFilterGroup(filters=tag_filters(flag, [json.dumps(group)]))
        for group in groups
    ]


def _names(flag: str, value: Any, known: Mapping[str, _E]) -> list[_E]:
    """A list of enum names, given as a JSON list or comma-separated (brackets optional)."""
    items = value if isinstance(value, list) else str(value).strip("[]").split(",")
    numbers = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        if item not in known:
            raise ClientError(f"{flag}: unknown event {item!r}; use {', '.join(known)}")
        numbers.append(known[item])
    return numbers


AUTO_ROLLBACK_EVENTS = {
    name.removeprefix("AUTO_ROLLBACK_EVENT_"): number
    for name, number in orchestrator_pb2.AutoRollbackEvent.items()
    if number
}


TRIGGER_EVENTS = {
    render.trigger_event(number): number
    for _, number in orchestrator_pb2.TriggerEventType.items()
    if number
}


def auto_rollback(text: str) -> orchestrator_pb2.AutoRollbackConfiguration:
    """--auto-rollback-configuration enabled=true,events=DEPLOYMENT_FAILURE,… (or JSON)."""
    flag = "--auto-rollback-configuration"
    raw = parse_structure(flag, text)
    enabled = str(raw.get("enabled", "false")).lower()
    if enabled not in ("true", "false"):
        raise ClientError(f"{flag}: enabled must be true or false")
    return orchestrator_pb2.AutoRollbackConfiguration(
        enabled=enabled == "true",
        events=_names(flag, raw.get("events", []), AUTO_ROLLBACK_EVENTS),
    )


def alarms(flag: str, text: str) -> orchestrator_pb2.AlarmConfiguration:
    """--alarm-configuration enabled=true,ignorePollAlarmFailure=false,alarms=[{name=A},…]
    (or JSON); an alarm is a Prometheus alerting rule, by name."""
    raw = parse_nested(flag, text)
    flags = {}
    for key in ("enabled", "ignorePollAlarmFailure"):
        value = str(raw.get(key, "false")).lower()
        if value not in ("true", "false"):
            raise ClientError(f"{flag}: {key} must be true or false")
        flags[key] = value == "true"
    alarms = raw.get("alarms", [])
    if not isinstance(alarms, list) or not all(isinstance(a, dict) for a in alarms):
        raise ClientError(f"{flag}: alarms must be a list like [{{name=A}},{{name=B}}]")
    return orchestrator_pb2.AlarmConfiguration(
        enabled=flags["enabled"],
        ignore_poll_alarm_failure=flags["ignorePollAlarmFailure"],
        alarms=[orchestrator_pb2.Alarm(name=str(a.get("name", ""))) for a in alarms],
    )


def _triggers(values: list[str]) -> list[orchestrator_pb2.TriggerConfig]:
    """--trigger-configurations triggerName=n,triggerTargetUrl=URL,triggerEvents=A,B … (or a
    JSON list); triggerTargetArn is accepted for triggerTargetUrl."""
    flag = "--trigger-configurations"
    triggers = []
    for item in parse_list(flag, values):
        if "triggerTargetArn" in item and "triggerTargetUrl" not in item:
            item["triggerTargetUrl"] = item["triggerTargetArn"]
        name, url = require(flag, item, "triggerName", "triggerTargetUrl")
        events = _names(flag, item.get("triggerEvents", []), TRIGGER_EVENTS)
        triggers.append(
            orchestrator_pb2.TriggerConfig(
                trigger_name=name,
                trigger_target_url=url,
                trigger_events=events,
            )
        )
    return triggers


def create_deployment_group(client: DeployClient, args: argparse.Namespace) -> Result:
    request = orchestrator_pb2.CreateDeploymentGroupRequest(
        application_name=args.application_name,
        deployment_group_name=args.deployment_group_name,
        deployment_config_name=args.deployment_config_name or "",
        service_role_arn=args.service_role_arn or "",
        on_premises_instance_tag_filters=tag_filters(
            "--on-premises-instance-tag-filters", args.on_premises_instance_tag_filters
        ),
        on_premises_tag_set=_tag_set(getattr(args, "on_premises_tag_set", None)),
        trigger_configurations=_triggers(getattr(args, "trigger_configurations", None) or []),
        fetch_revisions_through_registry=getattr(args, "fetch_revisions_through_registry", False),
    )
    if getattr(args, "auto_rollback_configuration", None):
        request.auto_rollback_configuration.CopyFrom(
            auto_rollback(args.auto_rollback_configuration)
        )
    if getattr(args, "deployment_style", None):
        request.deployment_style.CopyFrom(load_balancing.deployment_style(args.deployment_style))
    if getattr(args, "load_balancer_info", None):
        request.load_balancer_info.CopyFrom(
            load_balancing.load_balancer_info(args.load_balancer_info)
        )
    if getattr(args, "blue_green_deployment_configuration", None):
        request.blue_green_deployment_configuration.CopyFrom(
            load_balancing.blue_green_configuration(args.blue_green_deployment_configuration)
        )
    if getattr(args, "alarm_configuration", None):
        request.alarm_configuration.CopyFrom(
            alarms("--alarm-configuration", args.alarm_configuration)
        )
    response = client.call(client.orchestrator.CreateDeploymentGroup, request)
    return {"deploymentGroupId": response.deployment_group_id}


def update_deployment_group(client: DeployClient, args: argparse.Namespace) -> Result:
    """Change only what is given; a list flag given without values clears that list."""
    request = orchestrator_pb2.UpdateDeploymentGroupRequest(
        application_name=args.application_name,
        current_deployment_group_name=args.current_deployment_group_name,
    )
    if args.new_deployment_group_name is not None:
        request.new_deployment_group_name = args.new_deployment_group_name
    if args.deployment_config_name is not None:
        request.deployment_config_name = args.deployment_config_name
    if args.on_premises_instance_tag_filters is not None:
        request.on_premises_instance_tag_filters.SetInParent()
        request.on_premises_instance_tag_filters.filters.extend(
            tag_filters("--on-premises-instance-tag-filters", args.on_premises_instance_tag_filters)
        )
    if args.on_premises_tag_set is not None:
        request.on_premises_tag_set.SetInParent()
        request.on_premises_tag_set.groups.extend(_tag_set(args.on_premises_tag_set))
    if args.auto_rollback_configuration is not None:
        request.auto_rollback_configuration.CopyFrom(
            auto_rollback(args.auto_rollback_configuration)
        )
    if args.trigger_configurations is not None:
        request.trigger_configurations.SetInParent()
        request.trigger_configurations.triggers.extend(_triggers(args.trigger_configurations))
    if getattr(args, "fetch_revisions_through_registry", None) is not None:
        request.fetch_revisions_through_registry = args.fetch_revisions_through_registry
    if getattr(args, "deployment_style", None) is not None:
        request.deployment_style.CopyFrom(load_balancing.deployment_style(args.deployment_style))
    if getattr(args, "load_balancer_info", None) is not None:
        request.load_balancer_info.CopyFrom(
            load_balancing.load_balancer_info(args.load_balancer_info)
        )
    if getattr(args, "blue_green_deployment_configuration", None) is not None:
        request.blue_green_deployment_configuration.CopyFrom(
            load_balancing.blue_green_configuration(args.blue_green_deployment_configuration)
        )
    if getattr(args, "alarm_configuration", None) is not None:
        request.alarm_configuration.CopyFrom(
            alarms("--alarm-configuration", args.alarm_configuration)
        )
    client.call(client.orchestrator.UpdateDeploymentGroup, request)
    return {"hooksNotCleanedUp": []}


def delete_deployment_group(client: DeployClient, args: argparse.Namespace) -> Result:
    client.call(
        client.orchestrator.DeleteDeploymentGroup,
        orchestrator_pb2.DeleteDeploymentGroupRequest(
            application_name=args.application_name,
            deployment_group_name=args.deployment_group_name,
        ),
    )
    return {"hooksNotCleanedUp": []}


def get_deployment_group(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.orchestrator.GetDeploymentGroup,
        orchestrator_pb2.GetDeploymentGroupRequest(
            application_name=args.application_name, deployment_group_name=args.deployment_group_name
        ),
    )
    return {"deploymentGroupInfo": render.deployment_group(response.deployment_group_info)}


def list_deployment_groups(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.orchestrator.ListDeploymentGroups,
        orchestrator_pb2.ListDeploymentGroupsRequest(application_name=args.application_name),
    )
    return {
        "applicationName": response.application_name,
        "deploymentGroups": list(response.deployment_groups),
    }
