"""The application verbs."""

from __future__ import annotations

import argparse

from deploy.cli import render
from deploy.cli.values import Result
from deploy.client import DeployClient
from deploy.v1 import registry_pb2


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
