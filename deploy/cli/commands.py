"""The CLI's verbs: each turns parsed flags into one or more SDK calls and a JSON-able result."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from deploy.bundle import make_zip, upload_to_s3
from deploy.cli import load_balancing, render
from deploy.cli.shorthand import parse_list, parse_nested, parse_structure, require
from deploy.client import TERMINAL, DeployClient
from deploy.errors import ClientError
from deploy.v1 import common_pb2, fleet_pb2, orchestrator_pb2, registry_pb2

Result = dict[str, Any] | None
_E = TypeVar("_E")

BUNDLE_TYPES = {
    "zip": common_pb2.BUNDLE_TYPE_ZIP,
    "tar": common_pb2.BUNDLE_TYPE_TAR,
    "tgz": common_pb2.BUNDLE_TYPE_TGZ,
}
FILE_EXISTS = {
    "DISALLOW": common_pb2.FILE_EXISTS_BEHAVIOR_DISALLOW,
    "OVERWRITE": common_pb2.FILE_EXISTS_BEHAVIOR_OVERWRITE,
    "RETAIN": common_pb2.FILE_EXISTS_BEHAVIOR_RETAIN,
}


def _bundle_type(flag: str, value: str) -> common_pb2.BundleType.ValueType:
    try:
        return BUNDLE_TYPES[value]
    except KeyError:
        raise ClientError(f"{flag}: bundleType must be zip, tar or tgz, got {value!r}") from None


def _tag_filters(flag: str, values: list[str] | None) -> list[common_pb2.TagFilter]:
    return [load_balancing.tag_filter(flag, item) for item in parse_list(flag, values or [])]


def _tags(flag: str, values: list[str] | None) -> list[common_pb2.Tag]:
    tags = []
    for item in parse_list(flag, values or []):
        key, value = require(flag, item, "Key", "Value")
        tags.append(common_pb2.Tag(key=key, value=value))
    return tags


def revision_from_args(args: argparse.Namespace) -> common_pb2.RevisionLocation:
    """One of --registry-location, --s3-location, --github-location, --revision."""
    given = [
        f
        for f in ("registry_location", "s3_location", "github_location", "revision")
        if getattr(args, f, None)
    ]
    if len(given) != 1:
        raise ClientError(
            "give exactly one of --registry-location, --s3-location, "
            "--github-location or --revision"
        )
    if args.revision:
        return _revision_json(parse_structure("--revision", args.revision))
    if args.registry_location:
        loc = parse_structure("--registry-location", args.registry_location)
        (digest,) = require("--registry-location", loc, "digest")
        return common_pb2.RevisionLocation(
            revision_type=common_pb2.REVISION_TYPE_REGISTRY,
            registry_location=common_pb2.RegistryLocation(
                digest=digest,
                bundle_type=_bundle_type("--registry-location", loc.get("bundleType", "zip")),
            ),
        )
    if args.s3_location:
        loc = parse_structure("--s3-location", args.s3_location)
        bucket, key, kind = require("--s3-location", loc, "bucket", "key", "bundleType")
        return common_pb2.RevisionLocation(
            revision_type=common_pb2.REVISION_TYPE_S3,
            s3_location=common_pb2.S3Location(
                bucket=bucket,
                key=key,
                bundle_type=_bundle_type("--s3-location", kind),
                version=str(loc.get("version", "")),
                etag=str(loc.get("eTag", "")),
            ),
        )
    loc = parse_structure("--github-location", args.github_location)
    repository, commit = require("--github-location", loc, "repository", "commitId")
    return common_pb2.RevisionLocation(
        revision_type=common_pb2.REVISION_TYPE_GITHUB,
        github_location=common_pb2.GitHubLocation(repository=repository, commit_id=commit),
    )


def _revision_json(raw: dict[str, Any]) -> common_pb2.RevisionLocation:
    kind = raw.get("revisionType")
    flags = {
        "Registry": ("registryLocation", "--registry-location"),
        "S3": ("s3Location", "--s3-location"),
        "GitHub": ("gitHubLocation", "--github-location"),
    }
    if kind not in flags:
        raise ClientError("--revision: revisionType must be Registry, S3 or GitHub")
    field, flag = flags[kind]
    inner = raw.get(field)
    if not isinstance(inner, dict):
        raise ClientError(f"--revision: {field} is required for revisionType {kind}")
    text = ",".join(f"{k}={v}" for k, v in inner.items())
    namespace = argparse.Namespace(
        registry_location=None, s3_location=None, github_location=None, revision=None
    )
    setattr(namespace, flag.removeprefix("--").replace("-", "_"), text)
    return revision_from_args(namespace)


# --- applications -----------------------------------------------------------------------------


def create_application(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.registry.CreateApplication,
        registry_pb2.CreateApplicationRequest(application_name=args.application_name),
    )
    return {"applicationId": response.application_id}


def get_application(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.registry.GetApplication,
        registry_pb2.GetApplicationRequest(application_name=args.application_name),
    )
    return {"application": render.application(response.application)}


def list_applications(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(client.registry.ListApplications, registry_pb2.ListApplicationsRequest())
    return {"applications": list(response.applications)}


# --- revisions --------------------------------------------------------------------------------


def push(client: DeployClient, args: argparse.Namespace) -> Result:
    """Bundle a directory, upload it to the registry (or to S3 with --s3-location
    s3://bucket/key), register it, and print how to deploy it."""
    client.call(
        client.registry.GetApplication,
        registry_pb2.GetApplicationRequest(application_name=args.application_name),
    )
    with tempfile.TemporaryDirectory(prefix="deploy-push-") as tmp:
        bundle = Path(tmp) / "bundle.zip"
        digest = make_zip(Path(args.source), bundle, getattr(args, "ignore_hidden_files", False))
        if args.s3_location:
            bucket, key = _s3_url(args.s3_location)
            upload_to_s3(bundle, bucket, key)
            location = common_pb2.RevisionLocation(
                revision_type=common_pb2.REVISION_TYPE_S3,
                s3_location=common_pb2.S3Location(
                    bucket=bucket, key=key, bundle_type=common_pb2.BUNDLE_TYPE_ZIP
                ),
            )
            where = f"--s3-location bucket={bucket},key={key},bundleType=zip"
        else:
            uploaded = client.upload_bundle(bundle, digest)
            location = common_pb2.RevisionLocation(
                revision_type=common_pb2.REVISION_TYPE_REGISTRY,
                registry_location=uploaded.location,
            )
            where = f"--registry-location digest={digest},bundleType=zip"
    registered = client.call(
        client.registry.RegisterApplicationRevision,
        registry_pb2.RegisterApplicationRevisionRequest(
            application_name=args.application_name,
            revision=location,
            description=args.description or "",
        ),
    )
    return {
        "applicationName": args.application_name,
        "revision": render.revision(registered.revision),
        "deployCommand": (
            f"deploy create-deployment --application-name {args.application_name} {where} "
            "--deployment-group-name <deployment-group-name>"
        ),
    }


def _s3_url(value: str) -> tuple[str, str]:
    bucket, _, key = value.removeprefix("s3://").partition("/")
    if not value.startswith("s3://") or not bucket or not key:
        raise ClientError(f"--s3-location {value!r}: expected s3://bucket/key")
    return bucket, key


def register_application_revision(client: DeployClient, args: argparse.Namespace) -> Result:
    client.call(
        client.registry.RegisterApplicationRevision,
        registry_pb2.RegisterApplicationRevisionRequest(
            application_name=args.application_name,
            revision=revision_from_args(args),
            description=args.description or "",
        ),
    )
    return None


def get_application_revision(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.registry.GetApplicationRevision,
        registry_pb2.GetApplicationRevisionRequest(
            application_name=args.application_name, revision=revision_from_args(args)
        ),
    )
    return {
        "applicationName": response.application_name,
        "revision": render.revision(response.revision),
        "revisionInfo": render.revision_info(response.revision_info),
    }


SORT_BY = {
    "registerTime": registry_pb2.REVISION_SORT_BY_REGISTER_TIME,
    "firstUsedTime": registry_pb2.REVISION_SORT_BY_FIRST_USED_TIME,
    "lastUsedTime": registry_pb2.REVISION_SORT_BY_LAST_USED_TIME,
}
SORT_ORDER = {
    "ascending": registry_pb2.SORT_ORDER_ASCENDING,
    "descending": registry_pb2.SORT_ORDER_DESCENDING,
}
DEPLOYED = {
    "include": registry_pb2.DEPLOYED_FILTER_INCLUDE,
    "exclude": registry_pb2.DEPLOYED_FILTER_EXCLUDE,
    "ignore": registry_pb2.DEPLOYED_FILTER_IGNORE,
}


def list_application_revisions(client: DeployClient, args: argparse.Namespace) -> Result:
    revisions = client.revisions(
        registry_pb2.ListApplicationRevisionsRequest(
            application_name=args.application_name,
            sort_by=SORT_BY.get(args.sort_by, registry_pb2.REVISION_SORT_BY_UNSPECIFIED),
            sort_order=SORT_ORDER.get(args.sort_order, registry_pb2.SORT_ORDER_UNSPECIFIED),
            s3_bucket=args.s3_bucket or "",
            s3_key_prefix=args.s3_key_prefix or "",
            deployed=DEPLOYED.get(args.deployed, registry_pb2.DEPLOYED_FILTER_UNSPECIFIED),
        )
    )
    return {"revisions": [render.revision(r) for r in revisions]}


def batch_get_application_revisions(client: DeployClient, args: argparse.Namespace) -> Result:
    """--revisions: a JSON list of RevisionLocation objects (as --revision takes one)."""
    flag = "--revisions"
    raw = parse_list(flag, args.revisions)
    response = client.call(
        client.registry.BatchGetApplicationRevisions,
        registry_pb2.BatchGetApplicationRevisionsRequest(
            application_name=args.application_name,
            revisions=[_revision_json(item) for item in raw],
        ),
    )
    return {
        "applicationName": response.application_name,
        "errorMessage": "",
        "revisions": [
            {
                "revisionLocation": render.revision(r.revision_location),
                "genericRevisionInfo": render.revision_info(r.generic_revision_info),
            }
            for r in response.revisions
        ],
    }


# --- configs and groups -----------------------------------------------------------------------


MINIMUM_TYPES = {
    "HOST_COUNT": orchestrator_pb2.MINIMUM_HEALTHY_HOSTS_TYPE_HOST_COUNT,
    "FLEET_PERCENT": orchestrator_pb2.MINIMUM_HEALTHY_HOSTS_TYPE_FLEET_PERCENT,
}


def create_deployment_config(client: DeployClient, args: argparse.Namespace) -> Result:
    flag = "--minimum-healthy-hosts"
    kind, value = require(flag, parse_structure(flag, args.minimum_healthy_hosts), "type", "value")
    if kind not in MINIMUM_TYPES:
        raise ClientError(f"{flag}: type must be HOST_COUNT or FLEET_PERCENT, got {kind!r}")
    if not value.isdigit():
        raise ClientError(f"{flag}: value must be a whole number, got {value!r}")
    response = client.call(
        client.orchestrator.CreateDeploymentConfig,
        orchestrator_pb2.CreateDeploymentConfigRequest(
            deployment_config_name=args.deployment_config_name,
            minimum_healthy_hosts=orchestrator_pb2.MinimumHealthyHosts(
                type=MINIMUM_TYPES[kind], value=int(value)
            ),
            compute_platform=args.compute_platform or "",
            traffic_routing_config=(
                load_balancing.traffic_routing(args.traffic_routing_config)
                if getattr(args, "traffic_routing_config", None)
                else None
            ),
        ),
    )
    return {"deploymentConfigId": response.deployment_config_id}


def delete_deployment_config(client: DeployClient, args: argparse.Namespace) -> Result:
    client.call(
        client.orchestrator.DeleteDeploymentConfig,
        orchestrator_pb2.DeleteDeploymentConfigRequest(
            deployment_config_name=args.deployment_config_name
        ),
    )
    return None


def get_deployment_config(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.orchestrator.GetDeploymentConfig,
        orchestrator_pb2.GetDeploymentConfigRequest(
            deployment_config_name=args.deployment_config_name
        ),
    )
    return {"deploymentConfigInfo": render.deployment_config(response.deployment_config_info)}


def list_deployment_configs(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.orchestrator.ListDeploymentConfigs, orchestrator_pb2.ListDeploymentConfigsRequest()
    )
    return {"deploymentConfigsList": list(response.deployment_configs_list)}


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
        orchestrator_pb2.TagFilterGroup(filters=_tag_filters(flag, [json.dumps(group)]))
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


def _auto_rollback(text: str) -> orchestrator_pb2.AutoRollbackConfiguration:
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


def _alarms(flag: str, text: str) -> orchestrator_pb2.AlarmConfiguration:
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
        on_premises_instance_tag_filters=_tag_filters(
            "--on-premises-instance-tag-filters", args.on_premises_instance_tag_filters
        ),
        on_premises_tag_set=_tag_set(getattr(args, "on_premises_tag_set", None)),
        trigger_configurations=_triggers(getattr(args, "trigger_configurations", None) or []),
        fetch_revisions_through_registry=getattr(args, "fetch_revisions_through_registry", False),
    )
    if getattr(args, "auto_rollback_configuration", None):
        request.auto_rollback_configuration.CopyFrom(
            _auto_rollback(args.auto_rollback_configuration)
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
            _alarms("--alarm-configuration", args.alarm_configuration)
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
            _tag_filters(
                "--on-premises-instance-tag-filters", args.on_premises_instance_tag_filters
            )
        )
    if args.on_premises_tag_set is not None:
        request.on_premises_tag_set.SetInParent()
        request.on_premises_tag_set.groups.extend(_tag_set(args.on_premises_tag_set))
    if args.auto_rollback_configuration is not None:
        request.auto_rollback_configuration.CopyFrom(
            _auto_rollback(args.auto_rollback_configuration)
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
            _alarms("--alarm-configuration", args.alarm_configuration)
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


# --- deployments ------------------------------------------------------------------------------


def create_deployment(client: DeployClient, args: argparse.Namespace) -> Result:
    behavior = (args.file_exists_behavior or "").upper()  # any case, as the agent takes it
    if behavior and behavior not in FILE_EXISTS:
        raise ClientError("--file-exists-behavior must be DISALLOW, OVERWRITE or RETAIN")
    response = client.call(
        client.orchestrator.CreateDeployment,
        orchestrator_pb2.CreateDeploymentRequest(
            application_name=args.application_name,
            deployment_group_name=args.deployment_group_name,
            revision=revision_from_args(args),
            deployment_config_name=args.deployment_config_name or "",
            description=args.description or "",
            file_exists_behavior=(
                FILE_EXISTS[behavior] if behavior else common_pb2.FILE_EXISTS_BEHAVIOR_UNSPECIFIED
            ),
            ignore_application_stop_failures=args.ignore_application_stop_failures,
            update_outdated_instances_only=getattr(args, "update_outdated_instances_only", False),
            auto_rollback_configuration=(
                _auto_rollback(args.auto_rollback_configuration)
                if getattr(args, "auto_rollback_configuration", None)
                else None
            ),
            target_instances=(
                load_balancing.target_instances(args.target_instances)
                if getattr(args, "target_instances", None)
                else None
            ),
            override_alarm_configuration=(
                _alarms("--override-alarm-configuration", args.override_alarm_configuration)
                if getattr(args, "override_alarm_configuration", None)
                else None
            ),
        ),
    )
    return {"deploymentId": response.deployment_id}


def continue_deployment(client: DeployClient, args: argparse.Namespace) -> Result:
    """Blue/green: reroute traffic now (READY_WAIT), or retire the originals now."""
    wait_types = {
        "READY_WAIT": orchestrator_pb2.DEPLOYMENT_WAIT_TYPE_READY_WAIT,
        "TERMINATION_WAIT": orchestrator_pb2.DEPLOYMENT_WAIT_TYPE_TERMINATION_WAIT,
    }
    client.call(
        client.orchestrator.ContinueDeployment,
        orchestrator_pb2.ContinueDeploymentRequest(
            deployment_id=args.deployment_id,
            deployment_wait_type=wait_types[args.deployment_wait_type or "READY_WAIT"],
        ),
    )
    return None


def stop_deployment(client: DeployClient, args: argparse.Namespace) -> Result:
    request = orchestrator_pb2.StopDeploymentRequest(deployment_id=args.deployment_id)
    if args.auto_rollback_enabled is not None:
        request.auto_rollback_enabled = args.auto_rollback_enabled
    response = client.call(client.orchestrator.StopDeployment, request)
    return {
        "status": render.camel_enum(response, "status", "STOP_STATUS_"),
        "statusMessage": response.status_message,
    }


def get_deployment(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.orchestrator.GetDeployment,
        orchestrator_pb2.GetDeploymentRequest(deployment_id=args.deployment_id),
    )
    return {"deploymentInfo": render.deployment(response.deployment_info)}


def list_deployments(client: DeployClient, args: argparse.Namespace) -> Result:
    statuses = []
    for name in args.include_only_statuses or []:
        key = (
            "DEPLOYMENT_STATUS_"
            + "".join(("_" + c if c.isupper() and i else c) for i, c in enumerate(name)).upper()
        )
        try:
            statuses.append(orchestrator_pb2.DeploymentStatus.Value(key))
        except ValueError:
            raise ClientError(f"--include-only-statuses: unknown status {name!r}") from None
    request = orchestrator_pb2.ListDeploymentsRequest(
        application_name=args.application_name or "",
        deployment_group_name=args.deployment_group_name or "",
        include_only_statuses=statuses,
        create_time_range=_time_range(args.create_time_range),
        next_token=args.starting_token or "",
    )
    deployments, token = every_page(
        lambda r: client.call(client.orchestrator.ListDeployments, r),
        request,
        "deployments",
        args.max_items,
    )
    return with_next_token({"deployments": list(deployments)}, token)


def _time_range(text: str | None) -> orchestrator_pb2.TimeRange:
    """--create-time-range start=ISO-8601|epoch,end=… (either may be left out)."""
    result = orchestrator_pb2.TimeRange()
    if not text:
        return result
    flag = "--create-time-range"
    for key, value in parse_structure(flag, text).items():
        if key not in ("start", "end"):
            raise ClientError(f"{flag}: unknown key {key!r}; use start and end")
        getattr(result, key).FromDatetime(parse_time(f"{flag}: {key}", str(value)))
    return result


def parse_time(what: str, value: str) -> datetime:
    """An ISO-8601 time (UTC when it names no zone) or seconds since the epoch."""
    try:
        moment = (
            datetime.fromtimestamp(float(value), UTC)
            if value.replace(".", "", 1).isdigit()
            else datetime.fromisoformat(value)
        )
    except ValueError:
        raise ClientError(f"{what} {value!r} is not a time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def every_page(
    call: Callable[[Any], Any],
    request: Any,
    items: str,
    max_items: int | None,
    page_limit: int = 100,
) -> tuple[list[Any], str]:
    """Follow nextToken like the AWS CLI, `page_limit` at a time; with --max-items, stop
    there. The `items` of the pages, and the token of what is left ("" when nothing is)."""
    if max_items is not None and max_items < 1:
        raise ClientError("--max-items must be 1 or more")
    found: list[Any] = []
    while True:
        if max_items is not None:
            request.max_items = min(page_limit, max_items - len(found))
        response = call(request)
        found.extend(getattr(response, items))
        if not response.next_token or (max_items is not None and len(found) >= max_items):
            return found, str(response.next_token)
        request.next_token = response.next_token


def with_next_token(result: dict[str, Any], token: str) -> Result:
    """`result`, with NextToken when a page is left (the AWS CLI's --max-items output)."""
    return {**result, "NextToken": token} if token else result


def list_deployment_targets(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.orchestrator.ListDeploymentTargets,
        orchestrator_pb2.ListDeploymentTargetsRequest(deployment_id=args.deployment_id),
    )
    return {"targetIds": list(response.target_ids)}


def get_deployment_target(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.orchestrator.GetDeploymentTarget,
        orchestrator_pb2.GetDeploymentTargetRequest(
            deployment_id=args.deployment_id, target_id=args.target_id
        ),
    )
    return {
        "deploymentTarget": {
            "deploymentTargetType": "InstanceTarget",
            "instanceTarget": render.instance_target(response.instance_target),
        }
    }


def wait_deployment_successful(client: DeployClient, args: argparse.Namespace) -> Result:
    """Like the AWS waiter, but pushed: returns when Succeeded, fails on Failed or Stopped."""
    last = None
    updates = client.watch_deployment(args.deployment_id, timeout=args.timeout, summary_only=True)
    for update in updates:
        last = update.deployment_info
    if last is None or last.status not in TERMINAL:
        raise ClientError(
            f"Waiter DeploymentSuccessful failed: {args.deployment_id} did not finish"
        )
    if last.status != orchestrator_pb2.DEPLOYMENT_STATUS_SUCCEEDED:
        status = render.camel_enum(last, "status", "DEPLOYMENT_STATUS_")
        reason = f": {last.error_information.message}" if last.error_information.message else ""
        raise ClientError(
            f"Waiter DeploymentSuccessful failed: deployment "
            f"{args.deployment_id} is {status}{reason}"
        )
    return None


# --- instances --------------------------------------------------------------------------------


def register_on_premises_instance(client: DeployClient, args: argparse.Namespace) -> Result:
    """Register an instance; prints the one-use join token its agent enrols with
    (`deploy-agent enroll --token …`), shown once."""
    response = client.call(
        client.fleet.RegisterOnPremisesInstance,
        fleet_pb2.RegisterOnPremisesInstanceRequest(
            instance_name=args.instance_name,
            tags=_tags("--tags", args.tags),
            iam_user_arn=args.iam_user_arn or "",
            iam_session_arn=args.iam_session_arn or "",
        ),
    )
    return {
        "joinToken": response.join_token,
        "joinTokenExpiresTime": render.time(response, "join_token_expires_time"),
    }


def create_join_token(client: DeployClient, args: argparse.Namespace) -> Result:
    """A token for hosts that register themselves: each use enrols one new instance with
    --tags, until --max-uses or --expires-in seconds."""
    for flag, value in (("--max-uses", args.max_uses), ("--expires-in", args.expires_in)):
        if not 1 <= value <= 2**31:
            raise ClientError(f"{flag} must be a positive number")
    response = client.call(
        client.fleet.CreateJoinToken,
        fleet_pb2.CreateJoinTokenRequest(
            tags=_tags("--tags", args.tags),
            max_uses=args.max_uses,
            expires_in_seconds=args.expires_in,
        ),
    )
    return {"joinToken": response.join_token, "expiresTime": render.time(response, "expires_time")}


def get_on_premises_instance(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.fleet.GetOnPremisesInstance,
        fleet_pb2.GetOnPremisesInstanceRequest(instance_name=args.instance_name),
    )
    return {"instanceInfo": render.instance(response.instance_info)}


def list_on_premises_instances(client: DeployClient, args: argparse.Namespace) -> Result:
    status = {
        "Registered": fleet_pb2.REGISTRATION_STATUS_REGISTERED,
        "Deregistered": fleet_pb2.REGISTRATION_STATUS_DEREGISTERED,
    }
    if args.registration_status and args.registration_status not in status:
        raise ClientError("--registration-status must be Registered or Deregistered")
    instances = client.instances(
        fleet_pb2.ListOnPremisesInstancesRequest(
            tag_filters=_tag_filters("--tag-filters", args.tag_filters),
            registration_status=(
                status[args.registration_status]
                if args.registration_status
                else fleet_pb2.REGISTRATION_STATUS_UNSPECIFIED
            ),
        )
    )
    return {"instanceNames": [i.instance_name for i in instances]}


def deregister_on_premises_instance(client: DeployClient, args: argparse.Namespace) -> Result:
    client.call(
        client.fleet.DeregisterOnPremisesInstance,
        fleet_pb2.DeregisterOnPremisesInstanceRequest(instance_name=args.instance_name),
    )
    return None


def add_tags_to_on_premises_instances(client: DeployClient, args: argparse.Namespace) -> Result:
    client.call(
        client.fleet.AddTagsToOnPremisesInstances,
        fleet_pb2.AddTagsToOnPremisesInstancesRequest(
            tags=_tags("--tags", args.tags), instance_names=args.instance_names
        ),
    )
    return None


def remove_tags_from_on_premises_instances(
    client: DeployClient, args: argparse.Namespace
) -> Result:
    client.call(
        client.fleet.RemoveTagsFromOnPremisesInstances,
        fleet_pb2.RemoveTagsFromOnPremisesInstancesRequest(
            tags=_tags("--tags", args.tags), instance_names=args.instance_names
        ),
    )
    return None
