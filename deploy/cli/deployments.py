"""The deployment verbs: create, follow (wait), stop and continue, and read."""

from __future__ import annotations

import argparse

from deploy.cli import load_balancing, render
from deploy.cli.groups import alarms, auto_rollback
from deploy.cli.revisions import revision_from_args
from deploy.cli.shorthand import parse_structure
from deploy.cli.values import Result, every_page, parse_time, with_next_token
from deploy.client import TERMINAL, DeployClient
from deploy.errors import ClientError
from deploy.v1 import common_pb2, orchestrator_pb2

FILE_EXISTS = {
    "DISALLOW": common_pb2.FILE_EXISTS_BEHAVIOR_DISALLOW,
    "OVERWRITE": common_pb2.FILE_EXISTS_BEHAVIOR_OVERWRITE,
    "RETAIN": common_pb2.FILE_EXISTS_BEHAVIOR_RETAIN,
}


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
                auto_rollback(args.auto_rollback_configuration)
                if getattr(args, "auto_rollback_configuration", None)
                else None
            ),
            target_instances=(
                load_balancing.target_instances(args.target_instances)
                if getattr(args, "target_instances", None)
                else None
            ),
            override_alarm_configuration=(
                alarms("--override-alarm-configuration", args.override_alarm_configuration)
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
