"""`deploy logs`: what a deployment's hooks wrote, one line each, prefixed with the host and the
lifecycle event (stderr and the agent's own notes marked); with --follow, as it is written,
until the deployment ends."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from deploy.client import DeployClient
from deploy.v1 import common_pb2, orchestrator_pb2

MARKS = {
    common_pb2.OUTPUT_STREAM_STDERR: " (stderr)",
    common_pb2.OUTPUT_STREAM_AGENT: " (agent)",
}


def shown(hook: orchestrator_pb2.HookOutputLine) -> str:
    """One line of output as printed: `web-1 AfterInstall: text`."""
    mark = MARKS.get(hook.line.stream, "")
    return f"{hook.target_id} {hook.lifecycle_event_name}{mark}: {hook.line.text}"


def print_logs(
    client: DeployClient, deployment_id: str, target_id: str, follow: bool, out: TextIO
) -> None:
    for hook in client.watch_deployment_logs(deployment_id, target_id, follow):
        print(shown(hook), file=out, flush=follow)


def logs(client: DeployClient, args: argparse.Namespace) -> None:
    """hook output of a deployment (--follow: as it is written, until the deployment ends)"""
    print_logs(client, args.deployment_id, args.target_id or "", args.follow, sys.stdout)
