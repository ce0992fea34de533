"""The deployment configuration verbs."""

from __future__ import annotations

import argparse

from deploy.cli import load_balancing, render
from deploy.cli.shorthand import parse_structure, require
from deploy.cli.values import Result
from deploy.client import DeployClient
from deploy.errors import ClientError
from deploy.v1 import orchestrator_pb2

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
