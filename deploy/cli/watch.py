"""`deploy watch`: a live view of a deployment, one line per lifecycle event as it finishes."""

from __future__ import annotations

import sys
from typing import TextIO

from deploy.cli import render
from deploy.client import TERMINAL, DeployClient
from deploy.v1 import orchestrator_pb2

FINISHED_EVENT = {"Succeeded", "Failed", "Skipped"}


def _seconds(event: orchestrator_pb2.LifecycleEvent) -> str:
    if not (event.HasField("start_time") and event.HasField("end_time")):
        return ""
    start, end = event.start_time.ToDatetime(), event.end_time.ToDatetime()
    return f"{(end - start).total_seconds():.2f}s"


def watch(client: DeployClient, deployment_id: str, out: TextIO = sys.stdout) -> str:
    """Print progress until the deployment finishes; returns its final status."""
    printed: set[tuple[str, str]] = set()
    status = ""
    for update in client.watch_deployment(deployment_id):
        info = update.deployment_info
        for target in update.instance_targets:
            for event in target.lifecycle_events:
                event_status = render.camel_enum(event, "status", "LIFECYCLE_EVENT_STATUS_")
                key = (target.target_id, event.lifecycle_event_name)
                if event_status not in FINISHED_EVENT or key in printed:
                    continue
                printed.add(key)
                print(
                    f"  {target.target_id:<16} {event.lifecycle_event_name:<18} "
                    f"{event_status:<10} {_seconds(event)}",
                    file=out,
                    flush=True,
                )
                if event_status == "Failed":
                    diagnostics = event.diagnostics
                    print(f"    {diagnostics.script_name}: {diagnostics.message}", file=out)
                    for line in diagnostics.log_tail.splitlines()[-10:]:
                        print(f"    | {line}", file=out)
        new_status = render.camel_enum(info, "status", "DEPLOYMENT_STATUS_")
        if new_status != status:
            status = new_status
            if info.status not in TERMINAL:
                print(f"{deployment_id}  {status}", file=out, flush=True)
    overview = info.deployment_overview
    print(
        f"{deployment_id}  {status}: {overview.succeeded} succeeded, {overview.failed} failed, "
        f"{overview.skipped} skipped",
        file=out,
        flush=True,
    )
    if info.error_information.message:
        print(f"  {info.error_information.message}", file=out)
    return status
