"""Messages → the AWS CLI's JSON shapes and field names, so aws deploy scripts keep working."""

from __future__ import annotations

from typing import Any, Literal

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from deploy.bundletypes import BUNDLE_NAMES
from deploy.v1 import common_pb2, fleet_pb2, orchestrator_pb2, registry_pb2, traffic_pb2

REVISION_TYPE_NAMES = {
    common_pb2.REVISION_TYPE_REGISTRY: "Registry",
    common_pb2.REVISION_TYPE_S3: "S3",
    common_pb2.REVISION_TYPE_GITHUB: "GitHub",
}
ERROR_CODE_NAMES = {
    common_pb2.LIFECYCLE_ERROR_CODE_SUCCESS: "Success",
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_MISSING: "ScriptMissing",
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_NOT_EXECUTABLE: "ScriptNotExecutable",
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_TIMED_OUT: "ScriptTimedOut",
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_FAILED: "ScriptFailed",
    common_pb2.LIFECYCLE_ERROR_CODE_UNKNOWN_ERROR: "UnknownError",
    common_pb2.LIFECYCLE_ERROR_CODE_INVALID_BUNDLE: "InvalidBundle",
    common_pb2.LIFECYCLE_ERROR_CODE_INVALID_APPSPEC: "InvalidAppSpec",
    common_pb2.LIFECYCLE_ERROR_CODE_INSTALL_FAILED: "InstallFailed",
    common_pb2.LIFECYCLE_ERROR_CODE_AGENT_ISSUE: "AgentIssue",
    common_pb2.LIFECYCLE_ERROR_CODE_TIMEOUT: "Timeout",
}
TAG_FILTER_NAMES = {
    common_pb2.TAG_FILTER_TYPE_KEY_ONLY: "KEY_ONLY",
    common_pb2.TAG_FILTER_TYPE_VALUE_ONLY: "VALUE_ONLY",
    common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE: "KEY_AND_VALUE",
}


CREATORS = {
    orchestrator_pb2.DEPLOYMENT_CREATOR_USER: "user",
    orchestrator_pb2.DEPLOYMENT_CREATOR_CODE_DEPLOY_ROLLBACK: "codeDeployRollback",
    orchestrator_pb2.DEPLOYMENT_CREATOR_CODE_DEPLOY_AUTO_UPDATE: "CodeDeployAutoUpdate",
}
"""CodeDeploy's DeploymentCreator spellings."""


def camel_enum(message: Message, field: str, prefix: str) -> str:
    """DEPLOYMENT_STATUS_IN_PROGRESS → InProgress (CodeDeploy's spelling)."""
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    assert descriptor is not None, f"{field} is an enum field"
    return _camel(descriptor.values_by_number[getattr(message, field)].name.removeprefix(prefix))


def upper_enum(message: Message, field: str, prefix: str) -> str:
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    assert descriptor is not None, f"{field} is an enum field"
    return str(descriptor.values_by_number[getattr(message, field)].name.removeprefix(prefix))


def time(message: Message, field: str) -> str | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime().isoformat(timespec="milliseconds") + "+00:00"


def _compact(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None and v != ""}


def revision(message: common_pb2.RevisionLocation) -> dict[str, Any]:
    kind = REVISION_TYPE_NAMES.get(message.revision_type, "")
    if message.revision_type == common_pb2.REVISION_TYPE_REGISTRY:
        loc = message.registry_location
        return {
            "revisionType": kind,
            "registryLocation": {
                "digest": loc.digest,
                "bundleType": BUNDLE_NAMES.get(loc.bundle_type, ""),
            },
        }
    if message.revision_type == common_pb2.REVISION_TYPE_S3:
        s3 = message.s3_location
        return {
            "revisionType": kind,
            "s3Location": _compact(
                {
                    "bucket": s3.bucket,
                    "key": s3.key,
                    "bundleType": BUNDLE_NAMES.get(s3.bundle_type),
                    "version": s3.version,
                    "eTag": s3.etag,
                    "digest": s3.digest,
                }
            ),
        }
    gh = message.github_location
    return {
        "revisionType": kind,
        "gitHubLocation": _compact(
            {
                "repository": gh.repository,
                "commitId": gh.commit_id,
                "digest": gh.digest,
                "cloneUrl": gh.clone_url,
            }
        ),
    }


def revision_info(message: registry_pb2.GenericRevisionInfo) -> dict[str, Any]:
    return _compact(
        {
            "description": message.description,
            "deploymentGroups": list(message.deployment_groups),
            "firstUsedTime": time(message, "first_used_time"),
            "lastUsedTime": time(message, "last_used_time"),
            "registerTime": time(message, "register_time"),
        }
    )


def application(message: registry_pb2.ApplicationInfo) -> dict[str, Any]:
    return {
        "applicationId": message.application_id,
        "applicationName": message.application_name,
        "createTime": time(message, "create_time"),
        "computePlatform": message.compute_platform,
    }


def tag_filter(message: common_pb2.TagFilter) -> dict[str, Any]:
    return {
        "Key": message.key,
        "Value": message.value,
        "Type": TAG_FILTER_NAMES.get(message.type, ""),
    }


def instance(message: fleet_pb2.InstanceInfo) -> dict[str, Any]:
    return _compact(
        {
            "instanceName": message.instance_name,
            "instanceArn": message.instance_arn,
            "registerTime": time(message, "register_time"),
            "deregisterTime": None,
            "tags": [{"Key": t.key, "Value": t.value} for t in message.tags],
            "registrationStatus": camel_enum(
                message, "registration_status", "REGISTRATION_STATUS_"
            ),
            "health": camel_enum(message, "health", "INSTANCE_HEALTH_"),
            "lastSeenTime": time(message, "last_seen_time"),
            "address": message.address,
        }
    )


def deployment_group(message: orchestrator_pb2.DeploymentGroupInfo) -> dict[str, Any]:
    return _compact(
        {
            "applicationName": message.application_name,
            "deploymentGroupId": message.deployment_group_id,
            "deploymentGroupName": message.deployment_group_name,
            "deploymentConfigName": message.deployment_config_name,
            "onPremisesInstanceTagFilters": [
                tag_filter(f) for f in message.on_premises_instance_tag_filters
            ],
            "onPremisesTagSet": {
                "onPremisesTagSetList": [
                    [tag_filter(f) for f in group.filters] for group in message.on_premises_tag_set
                ]
            },
            "deploymentStyle": deployment_style(message.deployment_style),
            "loadBalancerInfo": load_balancer_info(message.load_balancer_info),
            "blueGreenDeploymentConfiguration": (
                blue_green(message.blue_green_deployment_configuration)
                if message.HasField("blue_green_deployment_configuration")
                else None
            ),
            "autoRollbackConfiguration": auto_rollback(message.auto_rollback_configuration),
            "alarmConfiguration": alarms(message.alarm_configuration),
            "triggerConfigurations": [trigger(t) for t in message.trigger_configurations],
            "targetRevision": (
                revision(message.target_revision) if message.HasField("target_revision") else None
            ),
            "lastSuccessfulDeployment": _last_deployment(message, "last_successful_deployment"),
            "lastAttemptedDeployment": _last_deployment(message, "last_attempted_deployment"),
            "fetchRevisionsThroughRegistry": message.fetch_revisions_through_registry,
            "computePlatform": "Server",
        }
    )


def deployment_style(message: orchestrator_pb2.DeploymentStyle) -> dict[str, Any]:
    return {
        "deploymentType": upper_enum(message, "deployment_type", "DEPLOYMENT_TYPE_"),
        "deploymentOption": upper_enum(message, "deployment_option", "DEPLOYMENT_OPTION_"),
    }


def load_balancer_info(message: orchestrator_pb2.LoadBalancerInfo) -> dict[str, Any] | None:
    if not message.target_group_info_list:
        return None
    return {"targetGroupInfoList": [{"name": g.name} for g in message.target_group_info_list]}


def target_group(message: traffic_pb2.TargetGroupInfo) -> dict[str, Any]:
    provider = upper_enum(message, "provider", "LOAD_BALANCER_PROVIDER_")
    info: dict[str, Any] = {
        "name": message.name,
        "provider": provider,
        "port": message.port,
        "deregistrationDelaySeconds": message.deregistration_delay_seconds,
        "targets": [
            {
                "instanceName": t.instance_name,
                "address": t.address,
                "weight": t.weight,
                "state": camel_enum(t, "state", "TARGET_STATE_"),
                "addressSet": t.address_set,
            }
            for t in message.targets
        ],
    }
    if message.load_balancer:
        info["loadBalancer"] = message.load_balancer
    if provider == "HAPROXY":
        info["haproxy"] = {"backend": message.haproxy.backend}
    return info


def alarms(message: orchestrator_pb2.AlarmConfiguration) -> dict[str, Any]:
    return {
        "enabled": message.enabled,
        "ignorePollAlarmFailure": message.ignore_poll_alarm_failure,
        "alarms": [{"name": a.name} for a in message.alarms],
    }


def auto_rollback(message: orchestrator_pb2.AutoRollbackConfiguration) -> dict[str, Any]:
    events = orchestrator_pb2.AutoRollbackEvent
    return {
        "enabled": message.enabled,
        "events": [events.Name(e).removeprefix("AUTO_ROLLBACK_EVENT_") for e in message.events],
    }


def _camel(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


def trigger_event(number: orchestrator_pb2.TriggerEventType.ValueType) -> str:
    """TRIGGER_EVENT_TYPE_DEPLOYMENT_START → DeploymentStart."""
    return _camel(
        orchestrator_pb2.TriggerEventType.Name(number).removeprefix("TRIGGER_EVENT_TYPE_")
    )


def trigger(message: orchestrator_pb2.TriggerConfig) -> dict[str, Any]:
    result: dict[str, Any] = {
        "triggerName": message.trigger_name,
        "triggerTargetUrl": message.trigger_target_url,
        "triggerEvents": [trigger_event(e) for e in message.trigger_events],
    }
    if message.HasField("last_delivery"):
        delivery = message.last_delivery
        result["lastDelivery"] = _compact(
            {
                "event": trigger_event(delivery.event),
                "deploymentId": delivery.deployment_id,
                "instanceId": delivery.instance_id,
                "status": camel_enum(delivery, "delivery_status", "TRIGGER_DELIVERY_STATUS_"),
                "attempts": delivery.attempts,
                "httpStatus": delivery.http_status or None,
                "error": delivery.error,
                "lastAttemptTime": time(delivery, "last_attempt_time"),
            }
        )
    return result


def _last_deployment(
    message: orchestrator_pb2.DeploymentGroupInfo,
    field: Literal["last_successful_deployment", "last_attempted_deployment"],
) -> dict[str, Any] | None:
    if not message.HasField(field):
        return None
    last: orchestrator_pb2.LastDeploymentInfo = getattr(message, field)
    return _compact(
        {
            "deploymentId": last.deployment_id,
            "status": camel_enum(last, "status", "DEPLOYMENT_STATUS_"),
            "endTime": time(last, "end_time"),
            "createTime": time(last, "create_time"),
        }
    )


def deployment_config(message: orchestrator_pb2.DeploymentConfigInfo) -> dict[str, Any]:
    minimum = message.minimum_healthy_hosts
    return {
        "deploymentConfigId": message.deployment_config_id,
        "deploymentConfigName": message.deployment_config_name,
        "minimumHealthyHosts": {
            "type": upper_enum(minimum, "type", "MINIMUM_HEALTHY_HOSTS_TYPE_"),
            "value": minimum.value,
        },
        "computePlatform": message.compute_platform,
        "trafficRoutingConfig": traffic_routing(message.traffic_routing_config),
    }


def traffic_routing(message: orchestrator_pb2.TrafficRoutingConfig) -> dict[str, Any]:
    names = {
        orchestrator_pb2.TRAFFIC_ROUTING_TYPE_TIME_BASED_CANARY: "TimeBasedCanary",
        orchestrator_pb2.TRAFFIC_ROUTING_TYPE_TIME_BASED_LINEAR: "TimeBasedLinear",
    }
    kind = names.get(message.type, "AllAtOnce")
    routing: dict[str, Any] = {"type": kind}
    if kind == "TimeBasedCanary":
        canary = message.time_based_canary
        routing["timeBasedCanary"] = {
            "canaryPercentage": canary.canary_percentage,
            "canaryInterval": canary.canary_interval,
            "canaryIntervalSeconds": canary.canary_interval_seconds,
        }
    elif kind == "TimeBasedLinear":
        linear = message.time_based_linear
        routing["timeBasedLinear"] = {
            "linearPercentage": linear.linear_percentage,
            "linearInterval": linear.linear_interval,
            "linearIntervalSeconds": linear.linear_interval_seconds,
        }
    return routing


def blue_green(message: orchestrator_pb2.BlueGreenDeploymentConfiguration) -> dict[str, Any]:
    terminate = message.terminate_blue_instances_on_deployment_success
    ready = message.deployment_ready_option
    green = message.green_fleet_provisioning_option
    return {
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": upper_enum(terminate, "action", "BLUE_INSTANCE_ACTION_"),
            "terminationWaitTimeInMinutes": terminate.termination_wait_time_in_minutes,
            "terminationWaitTimeInSeconds": terminate.termination_wait_time_in_seconds,
        },
        "deploymentReadyOption": {
            "actionOnTimeout": upper_enum(ready, "action_on_timeout", "READY_ACTION_"),
            "waitTimeInMinutes": ready.wait_time_in_minutes,
            "waitTimeInSeconds": ready.wait_time_in_seconds,
        },
        "greenFleetProvisioningOption": _compact(
            {
                "action": upper_enum(green, "action", "GREEN_FLEET_PROVISIONING_ACTION_"),
                "provisionerName": green.provisioner_name,
                "timeoutInSeconds": green.timeout_in_seconds,
            }
        ),
    }


def traffic_shift(message: orchestrator_pb2.TrafficShift) -> dict[str, Any]:
    return _compact(
        {
            "greenPercent": message.green_percent,
            "steps": list(message.steps),
            "step": message.step,
            "nextStepTime": time(message, "next_step_time"),
            "greenWeight": message.green_weight,
            "blueWeight": message.blue_weight,
            "readyWaitUntil": time(message, "ready_wait_until"),
        }
    )


def deployment(message: orchestrator_pb2.DeploymentInfo) -> dict[str, Any]:
    overview = message.deployment_overview
    info: dict[str, Any] = {
        "applicationName": message.application_name,
        "deploymentGroupName": message.deployment_group_name,
        "deploymentConfigName": message.deployment_config_name,
        "deploymentId": message.deployment_id,
        "revision": revision(message.revision),
        "status": camel_enum(message, "status", "DEPLOYMENT_STATUS_"),
        "createTime": time(message, "create_time"),
        "startTime": time(message, "start_time"),
        "completeTime": time(message, "complete_time"),
        "deploymentOverview": {
            "Pending": overview.pending,
            "InProgress": overview.in_progress,
            "Succeeded": overview.succeeded,
            "Failed": overview.failed,
            "Skipped": overview.skipped,
            "Ready": overview.ready,
        },
        "description": message.description,
        "creator": CREATORS.get(message.deployment_creator, ""),
        "ignoreApplicationStopFailures": message.ignore_application_stop_failures,
        "deploymentStyle": deployment_style(message.deployment_style),
        "loadBalancerInfo": load_balancer_info(message.load_balancer_info),
        "computePlatform": "Server",
        "updateOutdatedInstancesOnly": message.update_outdated_instances_only,
        "autoRollbackConfiguration": auto_rollback(message.auto_rollback_configuration),
        "alarmConfiguration": alarms(message.alarm_configuration),
        "deploymentStatusMessages": list(message.deployment_status_messages),
    }
    if message.HasField("blue_green_deployment_configuration"):
        info["blueGreenDeploymentConfiguration"] = blue_green(
            message.blue_green_deployment_configuration
        )
        info["trafficShift"] = traffic_shift(message.traffic_shift)
        info["instanceTerminationWaitTimeStarted"] = time(
            message, "instance_termination_wait_time_started"
        )
    if message.target_instances.tag_filters:
        info["targetInstances"] = {
            "tagFilters": [tag_filter(f) for f in message.target_instances.tag_filters]
        }
    rollback = message.rollback_info
    if rollback.ByteSize():
        info["rollbackInfo"] = _compact(
            {
                "rollbackDeploymentId": rollback.rollback_deployment_id,
                "rollbackTriggeringDeploymentId": rollback.rollback_triggering_deployment_id,
                "rollbackMessage": rollback.rollback_message,
            }
        )
    if message.file_exists_behavior:
        info["fileExistsBehavior"] = upper_enum(
            message, "file_exists_behavior", "FILE_EXISTS_BEHAVIOR_"
        )
    if message.HasField("error_information"):
        error = message.error_information
        info["errorInformation"] = {
            "code": upper_enum(error, "code", "DEPLOYMENT_ERROR_CODE_"),
            "message": error.message,
        }
    return _compact(info)


def lifecycle_event(message: orchestrator_pb2.LifecycleEvent) -> dict[str, Any]:
    event: dict[str, Any] = _compact(
        {
            "lifecycleEventName": message.lifecycle_event_name,
            "startTime": time(message, "start_time"),
            "endTime": time(message, "end_time"),
            "status": camel_enum(message, "status", "LIFECYCLE_EVENT_STATUS_"),
        }
    )
    diagnostics = message.diagnostics
    if diagnostics.error_code:
        event["diagnostics"] = {
            "errorCode": ERROR_CODE_NAMES.get(diagnostics.error_code, "UnknownError"),
            "scriptName": diagnostics.script_name,
            "message": diagnostics.message,
            "logTail": diagnostics.log_tail,
        }
    return event


def instance_label(message: orchestrator_pb2.InstanceTarget) -> str:
    """Blue or Green (blue/green), else empty."""
    if message.label == orchestrator_pb2.TARGET_LABEL_UNSPECIFIED:
        return ""
    return camel_enum(message, "label", "TARGET_LABEL_")


def instance_target(message: orchestrator_pb2.InstanceTarget) -> dict[str, Any]:
    return _compact(
        {
            "deploymentId": message.deployment_id,
            "targetId": message.target_id,
            "targetArn": message.target_arn,
            "status": camel_enum(message, "status", "TARGET_STATUS_"),
            "lastUpdatedAt": time(message, "last_updated_at"),
            "lifecycleEvents": [lifecycle_event(e) for e in message.lifecycle_events],
            "instanceRevision": (
                revision(message.instance_revision)
                if message.HasField("instance_revision")
                else None
            ),
            "instanceLabel": instance_label(message),
        }
    )
