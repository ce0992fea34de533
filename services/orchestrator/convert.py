"""Orchestrator messages ↔ domain objects: deployments, their targets and events, deployment
configs and paging (a group's settings: group_convert.py)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from deploy.hookoutput import line_to_proto
from deploy.v1 import common_pb2, orchestrator_pb2
from services.core.convert import (
    diagnostics_to_proto,
    enum_from_proto,
    revision_to_proto,
    tag_filter_to_proto,
    time_from_proto,
    timestamp,
)
from services.core.errors import InvalidArgument
from services.core.urls import redact_url
from services.orchestrator.bluegreen import (
    TrafficRouting,
    TrafficRoutingType,
)
from services.orchestrator.configs import DeploymentConfig, MinimumHealthyType
from services.orchestrator.domain import (
    Creator,
    Deployment,
    DeploymentErrorCode,
    DeploymentQuery,
    FileExistsBehavior,
    HookLine,
    Target,
    TargetEvent,
    TargetLabel,
)
from services.orchestrator.group_convert import (
    TRIGGER_EVENTS,
    alarms_to_proto,
    auto_rollback_to_proto,
    blue_green_to_proto,
    load_balancer_to_proto,
    style_to_proto,
    wait_seconds,
)
from services.orchestrator.groups import GroupRecord, LastDeployment
from services.orchestrator.states import (
    DeliveryStatus,
    DeploymentStatus,
    EventStatus,
    TargetStatus,
)

pb = orchestrator_pb2

_DELIVERY_STATUS = {
    DeliveryStatus.PENDING: pb.TRIGGER_DELIVERY_STATUS_PENDING,
    DeliveryStatus.DELIVERED: pb.TRIGGER_DELIVERY_STATUS_DELIVERED,
    DeliveryStatus.FAILED: pb.TRIGGER_DELIVERY_STATUS_FAILED,
}
_CREATOR = {
    Creator.USER: pb.DEPLOYMENT_CREATOR_USER,
    Creator.ROLLBACK: pb.DEPLOYMENT_CREATOR_CODE_DEPLOY_ROLLBACK,
    Creator.AUTO_UPDATE: pb.DEPLOYMENT_CREATOR_CODE_DEPLOY_AUTO_UPDATE,
}
_TARGET_LABEL = {
    TargetLabel.NONE: pb.TARGET_LABEL_UNSPECIFIED,
    TargetLabel.BLUE: pb.TARGET_LABEL_BLUE,
    TargetLabel.GREEN: pb.TARGET_LABEL_GREEN,
}
_FILE_EXISTS = {
    common_pb2.FILE_EXISTS_BEHAVIOR_DISALLOW: FileExistsBehavior.DISALLOW,
    common_pb2.FILE_EXISTS_BEHAVIOR_OVERWRITE: FileExistsBehavior.OVERWRITE,
    common_pb2.FILE_EXISTS_BEHAVIOR_RETAIN: FileExistsBehavior.RETAIN,
}


_DEPLOYMENT_STATUS = {
    DeploymentStatus.CREATED: pb.DEPLOYMENT_STATUS_CREATED,
    DeploymentStatus.QUEUED: pb.DEPLOYMENT_STATUS_QUEUED,
    DeploymentStatus.IN_PROGRESS: pb.DEPLOYMENT_STATUS_IN_PROGRESS,
    DeploymentStatus.READY: pb.DEPLOYMENT_STATUS_READY,
    DeploymentStatus.SUCCEEDED: pb.DEPLOYMENT_STATUS_SUCCEEDED,
    DeploymentStatus.FAILED: pb.DEPLOYMENT_STATUS_FAILED,
    DeploymentStatus.STOPPED: pb.DEPLOYMENT_STATUS_STOPPED,
}


_TARGET_STATUS = {
    TargetStatus.PENDING: pb.TARGET_STATUS_PENDING,
    TargetStatus.IN_PROGRESS: pb.TARGET_STATUS_IN_PROGRESS,
    TargetStatus.READY: pb.TARGET_STATUS_READY,
    TargetStatus.SUCCEEDED: pb.TARGET_STATUS_SUCCEEDED,
    TargetStatus.FAILED: pb.TARGET_STATUS_FAILED,
    TargetStatus.SKIPPED: pb.TARGET_STATUS_SKIPPED,
}


_EVENT_STATUS = {
    EventStatus.PENDING: common_pb2.LIFECYCLE_EVENT_STATUS_PENDING,
    EventStatus.IN_PROGRESS: common_pb2.LIFECYCLE_EVENT_STATUS_IN_PROGRESS,
    EventStatus.SUCCEEDED: common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
    EventStatus.FAILED: common_pb2.LIFECYCLE_EVENT_STATUS_FAILED,
    EventStatus.SKIPPED: common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED,
}


_ERROR_CODE = {
    DeploymentErrorCode.HEALTH_CONSTRAINTS: pb.DEPLOYMENT_ERROR_CODE_HEALTH_CONSTRAINTS,
    DeploymentErrorCode.HEALTH_CONSTRAINTS_INVALID: (
        pb.DEPLOYMENT_ERROR_CODE_HEALTH_CONSTRAINTS_INVALID
    ),
    DeploymentErrorCode.NO_INSTANCES: pb.DEPLOYMENT_ERROR_CODE_NO_INSTANCES,
    DeploymentErrorCode.INTERNAL_ERROR: pb.DEPLOYMENT_ERROR_CODE_INTERNAL_ERROR,
    DeploymentErrorCode.MANUAL_STOP: pb.DEPLOYMENT_ERROR_CODE_MANUAL_STOP,
    DeploymentErrorCode.TIMEOUT: pb.DEPLOYMENT_ERROR_CODE_TIMEOUT,
    DeploymentErrorCode.AGENT_ISSUE: pb.DEPLOYMENT_ERROR_CODE_AGENT_ISSUE,
    DeploymentErrorCode.ALARM_ACTIVE: pb.DEPLOYMENT_ERROR_CODE_ALARM_ACTIVE,
}


_MINIMUM_TYPE = {
    MinimumHealthyType.HOST_COUNT: pb.MINIMUM_HEALTHY_HOSTS_TYPE_HOST_COUNT,
    MinimumHealthyType.FLEET_PERCENT: pb.MINIMUM_HEALTHY_HOSTS_TYPE_FLEET_PERCENT,
    MinimumHealthyType.MOST_CONCURRENCY: pb.MINIMUM_HEALTHY_HOSTS_TYPE_MOST_CONCURRENCY,
}


def file_exists_from_proto(value: int) -> FileExistsBehavior | None:
    """None when unset: the appspec's value, else DISALLOW, applies on the host."""
    if value == common_pb2.FILE_EXISTS_BEHAVIOR_UNSPECIFIED:
        return None
    try:
        return _FILE_EXISTS[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument("fileExistsBehavior must be DISALLOW, OVERWRITE or RETAIN") from None


def file_exists_to_proto(
    value: FileExistsBehavior | None,
) -> common_pb2.FileExistsBehavior.ValueType:
    if value is None:
        return common_pb2.FILE_EXISTS_BEHAVIOR_UNSPECIFIED
    return {v: k for k, v in _FILE_EXISTS.items()}[value]


def deployment_status_from_proto(value: int) -> DeploymentStatus:
    for status, number in _DEPLOYMENT_STATUS.items():
        if number == value:
            return status
    raise InvalidArgument(f"includeOnlyStatuses: unknown status {value}")


def config_from_proto(
    name: str, minimum: pb.MinimumHealthyHosts, routing: pb.TrafficRoutingConfig
) -> DeploymentConfig:
    for kind, number in _MINIMUM_TYPE.items():
        if number == minimum.type:
            return DeploymentConfig(name, kind, minimum.value, routing=routing_from_proto(routing))
    raise InvalidArgument("minimumHealthyHosts.type is required: HOST_COUNT or FLEET_PERCENT")


def config_to_proto(config: DeploymentConfig) -> pb.DeploymentConfigInfo:
    return pb.DeploymentConfigInfo(
        deployment_config_id=config.id,
        deployment_config_name=config.name,
        minimum_healthy_hosts=pb.MinimumHealthyHosts(
            type=_MINIMUM_TYPE[config.minimum_type], value=config.minimum_value
        ),
        compute_platform="Server",
        traffic_routing_config=routing_to_proto(config.routing),
    )


_ROUTING_TYPE = {
    TrafficRoutingType.ALL_AT_ONCE: pb.TRAFFIC_ROUTING_TYPE_ALL_AT_ONCE,
    TrafficRoutingType.CANARY: pb.TRAFFIC_ROUTING_TYPE_TIME_BASED_CANARY,
    TrafficRoutingType.LINEAR: pb.TRAFFIC_ROUTING_TYPE_TIME_BASED_LINEAR,
}


def routing_from_proto(message: pb.TrafficRoutingConfig) -> TrafficRouting:
    kind = (
        enum_from_proto(_ROUTING_TYPE, message.type, "trafficRoutingConfig.type")
        if message.type
        else TrafficRoutingType.ALL_AT_ONCE
    )
    if kind is TrafficRoutingType.CANARY:
        canary = message.time_based_canary
        return TrafficRouting(
            kind,
            canary.canary_percentage,
            wait_seconds(canary.canary_interval_seconds, canary.canary_interval),
        ).check()
    if kind is TrafficRoutingType.LINEAR:
        linear = message.time_based_linear
        return TrafficRouting(
            kind,
            linear.linear_percentage,
            wait_seconds(linear.linear_interval_seconds, linear.linear_interval),
        ).check()
    return TrafficRouting()


def routing_to_proto(routing: TrafficRouting) -> pb.TrafficRoutingConfig:
    message = pb.TrafficRoutingConfig(type=_ROUTING_TYPE[routing.type])
    if routing.type is TrafficRoutingType.CANARY:
        message.time_based_canary.CopyFrom(
            pb.TimeBasedCanary(
                canary_percentage=routing.percentage,
                canary_interval=routing.interval_seconds // 60,
                canary_interval_seconds=routing.interval_seconds,
            )
        )
    elif routing.type is TrafficRoutingType.LINEAR:
        message.time_based_linear.CopyFrom(
            pb.TimeBasedLinear(
                linear_percentage=routing.percentage,
                linear_interval=routing.interval_seconds // 60,
                linear_interval_seconds=routing.interval_seconds,
            )
        )
    return message


def traffic_shift_to_proto(deployment: Deployment) -> pb.TrafficShift | None:
    if not deployment.blue_green_style:
        return None
    steps = deployment.routing.steps()
    progress = deployment.progress
    step = progress.traffic_step
    next_step = (
        progress.step_started_at + timedelta(seconds=deployment.routing.interval_seconds)
        if progress.step_started_at is not None and 0 <= step < len(steps) - 1
        else None
    )
    return pb.TrafficShift(
        green_percent=steps[step] if step >= 0 else 0,
        steps=steps,
        step=step,
        next_step_time=timestamp(next_step),
        green_weight=progress.green_weight,
        blue_weight=progress.blue_weight,
        ready_wait_until=timestamp(
            progress.ready_until if deployment.status is DeploymentStatus.READY else None
        ),
    )


def _last_to_proto(last: LastDeployment | None) -> pb.LastDeploymentInfo | None:
    if last is None:
        return None
    return pb.LastDeploymentInfo(
        deployment_id=last.id,
        status=_DEPLOYMENT_STATUS[last.status],
        create_time=timestamp(last.created_at),
        end_time=timestamp(last.ended_at),
    )


def group_to_proto(record: GroupRecord) -> pb.DeploymentGroupInfo:
    group = record.group
    info = pb.DeploymentGroupInfo(
        application_name=group.application_name,
        deployment_group_id=group.id,
        deployment_group_name=group.name,
        deployment_config_name=group.config_name,
        on_premises_instance_tag_filters=[tag_filter_to_proto(f) for f in group.tag_filters],
        on_premises_tag_set=[
            pb.TagFilterGroup(filters=[tag_filter_to_proto(f) for f in filters])
            for filters in group.tag_set
        ],
        auto_rollback_configuration=auto_rollback_to_proto(group.auto_rollback),
        target_revision=(
            revision_to_proto(record.target_revision) if record.target_revision else None
        ),
        last_successful_deployment=_last_to_proto(record.last_successful),
        last_attempted_deployment=_last_to_proto(record.last_attempted),
        fetch_revisions_through_registry=group.fetch_through_registry,
        deployment_style=style_to_proto(group.style),
        load_balancer_info=load_balancer_to_proto(group.target_groups),
        blue_green_deployment_configuration=(
            blue_green_to_proto(group.blue_green) if group.blue_green_style else None
        ),
        alarm_configuration=alarms_to_proto(group.alarms),
    )
    for trigger in group.triggers:
        message = info.trigger_configurations.add(
            trigger_name=trigger.name,
            trigger_target_url=redact_url(trigger.url),
            trigger_events=sorted(TRIGGER_EVENTS[e] for e in trigger.events),
        )
        delivery = record.deliveries.get(trigger.name)
        if delivery is not None:
            message.last_delivery.CopyFrom(
                pb.TriggerDelivery(
                    event=TRIGGER_EVENTS[delivery.event],
                    deployment_id=delivery.deployment_id,
                    instance_id=delivery.instance_id,
                    status=delivery.status,
                    delivery_status=_DELIVERY_STATUS[delivery.status],
                    attempts=delivery.attempts,
                    http_status=delivery.http_status,
                    error=delivery.error,
                    last_attempt_time=timestamp(delivery.last_attempt_at),
                )
            )
    return info


def deployment_to_proto(
    deployment: Deployment, counts: Mapping[TargetStatus, int]
) -> pb.DeploymentInfo:
    """The deployment as the API shows it; `counts`: its targets by status (the overview)."""
    info = pb.DeploymentInfo(
        deployment_id=deployment.id,
        application_name=deployment.application_name,
        deployment_group_name=deployment.group_name,
        deployment_config_name=deployment.config_name,
        status=_DEPLOYMENT_STATUS[deployment.status],
        revision=revision_to_proto(deployment.revision),
        create_time=timestamp(deployment.created_at),
        start_time=timestamp(deployment.started_at),
        complete_time=timestamp(deployment.completed_at),
        deployment_overview=pb.DeploymentOverview(
            pending=counts.get(TargetStatus.PENDING, 0),
            in_progress=counts.get(TargetStatus.IN_PROGRESS, 0),
            succeeded=counts.get(TargetStatus.SUCCEEDED, 0),
            failed=counts.get(TargetStatus.FAILED, 0),
            skipped=counts.get(TargetStatus.SKIPPED, 0),
            ready=counts.get(TargetStatus.READY, 0),
        ),
        description=deployment.description,
        creator=deployment.creator,
        deployment_creator=_CREATOR[deployment.creator],
        file_exists_behavior=file_exists_to_proto(deployment.file_exists_behavior),
        ignore_application_stop_failures=deployment.ignore_application_stop_failures,
        rollback_info=pb.RollbackInfo(
            rollback_deployment_id=deployment.rollback.rollback_deployment_id,
            rollback_triggering_deployment_id=deployment.rollback.rollback_triggering_deployment_id,
            rollback_message=deployment.rollback.message,
        ),
        update_outdated_instances_only=deployment.update_outdated_instances_only,
        auto_rollback_configuration=auto_rollback_to_proto(deployment.auto_rollback),
        deployment_status_messages=deployment.status_messages,
        deployment_style=style_to_proto(deployment.style),
        load_balancer_info=load_balancer_to_proto(deployment.target_groups),
        blue_green_deployment_configuration=(
            blue_green_to_proto(deployment.blue_green) if deployment.blue_green_style else None
        ),
        target_instances=pb.TargetInstances(
            tag_filters=[tag_filter_to_proto(f) for f in deployment.target_instances]
        ),
        traffic_shift=traffic_shift_to_proto(deployment),
        alarm_configuration=alarms_to_proto(deployment.alarms),
        instance_termination_wait_time_started=timestamp(
            deployment.progress.terminate_at
            - timedelta(seconds=deployment.blue_green.termination_wait_seconds)
            if deployment.progress.terminate_at is not None
            else None
        ),
    )
    if deployment.error is not None:
        info.error_information.code = _ERROR_CODE[deployment.error.code]
        info.error_information.message = deployment.error.message
    return info


def event_to_proto(event: TargetEvent) -> pb.LifecycleEvent:
    return pb.LifecycleEvent(
        lifecycle_event_name=event.name,
        status=_EVENT_STATUS[event.status],
        start_time=timestamp(event.started_at),
        end_time=timestamp(event.ended_at),
        diagnostics=diagnostics_to_proto(event.diagnostics),
    )


def hook_line_to_proto(hook: HookLine) -> pb.HookOutputLine:
    return pb.HookOutputLine(
        target_id=hook.target_id,
        lifecycle_event_name=hook.lifecycle_event,
        line=line_to_proto(hook.line),
    )


def target_to_proto(target: Target) -> pb.InstanceTarget:
    return pb.InstanceTarget(
        deployment_id=target.deployment_id,
        target_id=target.instance_name,
        target_arn=f"arn:opendeploy:fleet:instance/{target.instance_name}",
        status=_TARGET_STATUS[target.status],
        last_updated_at=timestamp(target.updated_at),
        lifecycle_events=[event_to_proto(e) for e in target.events],
        instance_revision=(
            revision_to_proto(target.instance_revision) if target.instance_revision else None
        ),
        instance_label=target.label,
        label=_TARGET_LABEL[target.label],
    )


MAX_PAGE = 100


def next_token(last: tuple[datetime, str]) -> str:
    """An opaque token naming the last deployment of a page."""
    created, deployment_id = last
    return base64.urlsafe_b64encode(f"{created.isoformat()}|{deployment_id}".encode()).decode()


def _after(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        created, _, deployment_id = base64.urlsafe_b64decode(token).decode().partition("|")
        return datetime.fromisoformat(created), deployment_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("nextToken is not one this service returned") from None


def _time(message: pb.TimeRange, field: Literal["start", "end"]) -> datetime | None:
    if not message.HasField(field):
        return None
    return time_from_proto(getattr(message, field), f"createTimeRange.{field}")


def deployment_query_from_proto(
    request: pb.ListDeploymentsRequest, group_id: str | None
) -> DeploymentQuery:
    """`group_id`: the group named by the request (None: deployments of every group)."""
    if request.max_items > MAX_PAGE:
        raise InvalidArgument(f"maxItems must be at most {MAX_PAGE}")
    return DeploymentQuery(
        application_name=request.application_name or None,
        group_id=group_id,
        statuses=tuple(deployment_status_from_proto(s) for s in request.include_only_statuses),
        created_from=_time(request.create_time_range, "start"),
        created_to=_time(request.create_time_range, "end"),
        after=_after(request.next_token),
        limit=request.max_items or MAX_PAGE,
    )
