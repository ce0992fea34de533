"""The traffic service's verbs: target groups, and the address of an instance in one.

CodeDeploy leaves target groups to ELB (`aws elbv2 create-target-group`); OpenDeploy's traffic
service owns them, so they get their own verbs here.
"""

from __future__ import annotations

import argparse
from typing import Any

from deploy.cli import render
from deploy.client import DeployClient
from deploy.errors import ClientError
from deploy.v1 import traffic_pb2

PROVIDERS = {
    "none": traffic_pb2.LOAD_BALANCER_PROVIDER_NONE,
    "haproxy": traffic_pb2.LOAD_BALANCER_PROVIDER_HAPROXY,
    "elbv2": traffic_pb2.LOAD_BALANCER_PROVIDER_ELBV2,
}
Result = dict[str, Any] | None


def create_target_group(client: DeployClient, args: argparse.Namespace) -> Result:
    """Create a target group the traffic service moves instances in and out of, on one of the
    load balancers the server is configured with (--load-balancer), or none (--provider none)."""
    if not args.load_balancer and args.provider != "none":
        raise ClientError("--load-balancer is required (or --provider none)")
    request = traffic_pb2.CreateTargetGroupRequest(
        name=args.name,
        provider=PROVIDERS.get(args.provider or "", traffic_pb2.LOAD_BALANCER_PROVIDER_UNSPECIFIED),
        port=args.port,
        load_balancer=args.load_balancer or "",
        haproxy=traffic_pb2.HAProxyTargetGroup(backend=args.haproxy_backend or ""),
    )
    if args.deregistration_delay_seconds is not None:
        request.deregistration_delay_seconds = args.deregistration_delay_seconds
    client.call(client.traffic.CreateTargetGroup, request)
    return get_target_group(client, args)


def get_target_group(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.traffic.GetTargetGroup, traffic_pb2.GetTargetGroupRequest(name=args.name)
    )
    return {"targetGroup": render.target_group(response.target_group)}


def list_target_groups(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(client.traffic.ListTargetGroups, traffic_pb2.ListTargetGroupsRequest())
    return {"targetGroups": list(response.target_groups)}


def delete_target_group(client: DeployClient, args: argparse.Namespace) -> Result:
    client.call(
        client.traffic.DeleteTargetGroup, traffic_pb2.DeleteTargetGroupRequest(name=args.name)
    )
    return None


def set_target_address(client: DeployClient, args: argparse.Namespace) -> Result:
    """The host:port the load balancer uses for one instance (empty: its host and the port)."""
    client.call(
        client.traffic.SetTargetAddress,
        traffic_pb2.SetTargetAddressRequest(
            target_group_name=args.target_group_name,
            instance_name=args.instance_name,
            address=args.address,
        ),
    )
    return None
