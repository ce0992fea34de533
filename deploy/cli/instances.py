"""The on-premises instance verbs: registration, join tokens, tags."""

from __future__ import annotations

import argparse

from deploy.cli import render
from deploy.cli.values import Result, tag_filters, tags
from deploy.client import DeployClient
from deploy.errors import ClientError
from deploy.v1 import fleet_pb2


def register_on_premises_instance(client: DeployClient, args: argparse.Namespace) -> Result:
    """Register an instance; prints the one-use join token its agent enrols with
    (`deploy-agent enroll --token …`), shown once."""
    response = client.call(
        client.fleet.RegisterOnPremisesInstance,
        fleet_pb2.RegisterOnPremisesInstanceRequest(
            instance_name=args.instance_name,
            tags=tags("--tags", args.tags),
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
            tags=tags("--tags", args.tags),
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
            tag_filters=tag_filters("--tag-filters", args.tag_filters),
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
            tags=tags("--tags", args.tags), instance_names=args.instance_names
        ),
    )
    return None


def remove_tags_from_on_premises_instances(
    client: DeployClient, args: argparse.Namespace
) -> Result:
    client.call(
        client.fleet.RemoveTagsFromOnPremisesInstances,
        fleet_pb2.RemoveTagsFromOnPremisesInstancesRequest(
            tags=tags("--tags", args.tags), instance_names=args.instance_names
        ),
    )
    return None
