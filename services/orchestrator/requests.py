"""The orchestrator's requests read as checked domain objects: a group to create, a change to
one, a deployment to create, a custom config. Part of the service's edge with convert.py and
group_convert.py: each request field is checked once, where it is read, every error naming the
field, and what comes out is valid (an object's own `check`, for rules across fields, runs
here). The servicer reads only names and ids itself, with the same helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from deploy.v1 import orchestrator_pb2 as pb
from services.core.convert import revision_from_proto
from services.core.errors import InvalidArgument
from services.core.names import check_name, check_text
from services.core.revision import check_revision
from services.orchestrator.configs import (
    DEFAULT_CONFIG_NAME,
    DeploymentConfig,
    check_custom_config,
)
from services.orchestrator.convert import config_from_proto, file_exists_from_proto
from services.orchestrator.domain import DeploymentRequest
from services.orchestrator.group_convert import (
    alarms_from_proto,
    auto_rollback_from_proto,
    blue_green_from_proto,
    style_from_proto,
    tag_filters_from_proto,
    tag_set_from_proto,
    target_groups_from_proto,
    triggers_from_proto,
)
from services.orchestrator.groups import DeploymentGroup, GroupChange

DEPLOYMENT_ID = re.compile(r"^d-[A-Z0-9]{9}\Z")

BOTH_TAG_KINDS = "onPremisesInstanceTagFilters and onPremisesTagSet cannot both be given"


def group_from_proto(request: pb.CreateDeploymentGroupRequest, now: datetime) -> DeploymentGroup:
    """CreateDeploymentGroup's request as a checked group (its id is assigned when stored)."""
    application = check_name("applicationName", request.application_name)
    filters = tag_filters_from_proto(
        "onPremisesInstanceTagFilters", request.on_premises_instance_tag_filters
    )
    tag_set = tag_set_from_proto(request.on_premises_tag_set)
    if filters and tag_set:
        raise InvalidArgument(BOTH_TAG_KINDS)
    return DeploymentGroup(
        id="",
        application_name=application,
        name=check_name("deploymentGroupName", request.deployment_group_name),
        config_name=request.deployment_config_name or DEFAULT_CONFIG_NAME,
        tag_filters=filters,
        created_at=now,
        tag_set=tag_set,
        auto_rollback=auto_rollback_from_proto(
            request.auto_rollback_configuration, "autoRollbackConfiguration"
        ),
        triggers=triggers_from_proto(request.trigger_configurations, "triggerConfigurations"),
        fetch_through_registry=request.fetch_revisions_through_registry,
        style=style_from_proto(request.deployment_style),
        target_groups=target_groups_from_proto(request.load_balancer_info),
        blue_green=blue_green_from_proto(request.blue_green_deployment_configuration),
        alarms=alarms_from_proto(request.alarm_configuration, "alarmConfiguration"),
    ).check()


_Update = pb.UpdateDeploymentGroupRequest
_CHANGES: tuple[tuple[str, str, Callable[[_Update], Any]], ...] = (
    (
        "new_name",
        "new_deployment_group_name",
        lambda r: check_name("newDeploymentGroupName", r.new_deployment_group_name),
    ),
    (
        "config_name",
        "deployment_config_name",
        lambda r: check_name("deploymentConfigName", r.deployment_config_name),
    ),
    (
        "tag_filters",
        "on_premises_instance_tag_filters",
        lambda r: tag_filters_from_proto(
            "onPremisesInstanceTagFilters", r.on_premises_instance_tag_filters.filters
        ),
    ),
    ("tag_set", "on_premises_tag_set", lambda r: tag_set_from_proto(r.on_premises_tag_set.groups)),
    (
        "auto_rollback",
        "auto_rollback_configuration",
        lambda r: auto_rollback_from_proto(
            r.auto_rollback_configuration, "autoRollbackConfiguration"
        ),
    ),
    (
        "triggers",
        "trigger_configurations",
        lambda r: triggers_from_proto(r.trigger_configurations.triggers, "triggerConfigurations"),
    ),
    (
        "fetch_through_registry",
        "fetch_revisions_through_registry",
        lambda r: r.fetch_revisions_through_registry,
    ),
    ("style", "deployment_style", lambda r: style_from_proto(r.deployment_style)),
    (
        "target_groups",
        "load_balancer_info",
        lambda r: target_groups_from_proto(r.load_balancer_info),
    ),
    (
        "blue_green",
        "blue_green_deployment_configuration",
        lambda r: blue_green_from_proto(r.blue_green_deployment_configuration),
    ),
    (
        "alarms",
        "alarm_configuration",
        lambda r: alarms_from_proto(r.alarm_configuration, "alarmConfiguration"),
    ),
)
"""UpdateDeploymentGroup's fields: the GroupChange field each sets, the request field (set
only when given) and how it is read — as CreateDeploymentGroup reads it."""


def group_change_from_proto(request: _Update) -> GroupChange:
    """The fields the request gives, read and checked; those it leaves out stay None, which
    keeps the group's own."""
    change = GroupChange(
        **{name: read(request) for name, field, read in _CHANGES if _given(request, field)}
    )
    if change.tag_filters and change.tag_set:
        raise InvalidArgument(BOTH_TAG_KINDS)
    return change


def deployment_request_from_proto(request: pb.CreateDeploymentRequest) -> DeploymentRequest:
    check_text("description", request.description)
    if not request.HasField("revision"):
        raise InvalidArgument("revision is required")
    return DeploymentRequest(
        application_name=check_name("applicationName", request.application_name),
        group_name=check_name("deploymentGroupName", request.deployment_group_name),
        revision=check_revision(revision_from_proto(request.revision)),
        config_name=request.deployment_config_name,
        description=request.description,
        file_exists_behavior=file_exists_from_proto(request.file_exists_behavior),
        ignore_application_stop_failures=request.ignore_application_stop_failures,
        auto_rollback=(
            auto_rollback_from_proto(
                request.auto_rollback_configuration, "autoRollbackConfiguration"
            )
            if request.HasField("auto_rollback_configuration")
            else None
        ),
        update_outdated_instances_only=request.update_outdated_instances_only,
        target_instances=tag_filters_from_proto(
            "targetInstances.tagFilters", request.target_instances.tag_filters
        ),
        alarms=(
            alarms_from_proto(request.override_alarm_configuration, "overrideAlarmConfiguration")
            if request.HasField("override_alarm_configuration")
            else None
        ),
    )


def custom_config_from_proto(request: pb.CreateDeploymentConfigRequest) -> DeploymentConfig:
    name = check_name("deploymentConfigName", request.deployment_config_name)
    if request.compute_platform not in ("", "Server"):
        raise InvalidArgument("computePlatform must be Server")
    return check_custom_config(
        config_from_proto(name, request.minimum_healthy_hosts, request.traffic_routing_config)
    )


def listed_group_from_proto(request: pb.ListDeploymentsRequest) -> tuple[str, str] | None:
    """The application and group whose deployments to list; None: every group's."""
    if bool(request.application_name) != bool(request.deployment_group_name):
        raise InvalidArgument(
            "applicationName and deploymentGroupName must be given together, or neither"
        )
    if not request.application_name:
        return None
    return (
        check_name("applicationName", request.application_name),
        check_name("deploymentGroupName", request.deployment_group_name),
    )


def deployment_id_from_proto(value: str) -> str:
    if not value:
        raise InvalidArgument("deploymentId is required")
    if not DEPLOYMENT_ID.match(value):
        raise InvalidArgument(f"deploymentId {value[:100]!r} is not a deployment id (d-XXXXXXXXX)")
    return value


def _given(request: _Update, field: str) -> bool:
    return request.HasField(field)  # type: ignore[arg-type]  # a field named in _CHANGES
