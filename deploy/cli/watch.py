"""`deploy watch`: a live view of a deployment — instances as rows, lifecycle events as columns.

The server pushes every change (WatchDeployment); nothing here polls it. On a terminal the grid
is redrawn in place on each change and once a second for the clocks of running events; into a
pipe or a log, each event is printed as one line when it ends and the grid once at the end.
Either way the view ends with the final status and, when it failed, the failing scripts' output.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal, TextIO

from deploy.cli import render
from deploy.client import TERMINAL, DeployClient
from deploy.errors import ApiError
from deploy.v1 import orchestrator_pb2

Update = orchestrator_pb2.WatchDeploymentResponse

FINISHED_EVENT = {"Succeeded", "Failed"}
"""Printed as lines in a log; skipped events show in the final grid only."""
SHORT_NAMES = {
    "ApplicationStop": "AppStop",
    "DownloadBundle": "Download",
    "BeforeInstall": "BeforeInst",
    "Install": "Install",
    "AfterInstall": "AfterInst",
    "ApplicationStart": "AppStart",
    "ValidateService": "Validate",
    "BeforeBlockTraffic": "BeforeBlk",
    "BlockTraffic": "Block",
    "AfterBlockTraffic": "AfterBlk",
    "BeforeAllowTraffic": "BeforeAllow",
    "AllowTraffic": "Allow",
    "AfterAllowTraffic": "AfterAllow",
}
CELL = 11
TICK_SECONDS = 1.0
TAIL_LINES = 10


def _moment(
    message: orchestrator_pb2.LifecycleEvent, field: Literal["start_time", "end_time"]
) -> datetime | None:
    if not message.HasField(field):
        return None
    moment: datetime = getattr(message, field).ToDatetime(tzinfo=UTC)
    return moment


def _elapsed(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max((end - start).total_seconds(), 0.0)
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def cell(event: orchestrator_pb2.LifecycleEvent, now: datetime) -> str:
    """One event as a grid cell: a mark and how long it took (or has been running)."""
    status = render.camel_enum(event, "status", "LIFECYCLE_EVENT_STATUS_")
    start = _moment(event, "start_time")
    if status == "InProgress":
        return f"> {_elapsed(start, now)}"
    if status == "Succeeded":
        return f"ok {_elapsed(start, _moment(event, 'end_time'))}"
    if status == "Failed":
        return f"FAIL {_elapsed(start, _moment(event, 'end_time'))}"
    return {"Skipped": "skip", "Pending": "."}.get(status, status)


def grid(update: Update, now: datetime) -> list[str]:
    """The whole view of one moment, as lines (pure: the caller decides where they go)."""
    info = update.deployment_info
    status = render.camel_enum(info, "status", "DEPLOYMENT_STATUS_")
    started = info.start_time.ToDatetime(tzinfo=UTC) if info.HasField("start_time") else None
    ended = info.complete_time.ToDatetime(tzinfo=UTC) if info.HasField("complete_time") else now
    overview = info.deployment_overview
    lines = [
        f"{info.deployment_id}  {status}  {info.application_name}/{info.deployment_group_name}"
        f"  {info.deployment_config_name}  {_elapsed(started, ended)}",
        f"  {overview.succeeded} succeeded, {overview.in_progress} in progress, "
        f"{overview.pending} pending, {overview.failed} failed, {overview.skipped} skipped",
    ]
    shift = traffic(info)
    if shift:
        lines.append(f"  {shift}")
    targets = list(update.instance_targets)
    if not targets:
        return lines
    # blue/green fleets run different events: one column per event any instance runs
    names = list(dict.fromkeys(e.lifecycle_event_name for t in targets for e in t.lifecycle_events))
    labels = {t.target_id: _label(t) for t in targets}
    width = max(len("instance"), *(len(labels[t.target_id]) for t in targets)) + 2
    lines.append(
        "  "
        + "instance".ljust(width)
        + "status".ljust(CELL)
        + "".join(SHORT_NAMES.get(n, n)[: CELL - 1].ljust(CELL) for n in names)
    )
    for target in targets:
        cells = {e.lifecycle_event_name: cell(e, now) for e in target.lifecycle_events}
        lines.append(
            "  "
            + labels[target.target_id].ljust(width)
            + render.camel_enum(target, "status", "TARGET_STATUS_").ljust(CELL)
            + "".join(cells.get(n, "").ljust(CELL) for n in names)
        )
    return lines


def _label(target: orchestrator_pb2.InstanceTarget) -> str:
    return (
        f"{target.target_id} ({target.instance_label.lower()})"
        if target.instance_label
        else (target.target_id)
    )


def traffic(info: orchestrator_pb2.DeploymentInfo) -> str:
    """Where a blue/green deployment is in moving traffic; empty for other deployments."""
    if not info.HasField("traffic_shift"):
        return ""
    shift = info.traffic_shift
    if shift.step < 0:
        if info.status == orchestrator_pb2.DEPLOYMENT_STATUS_READY:
            until = shift.ready_wait_until.ToDatetime(tzinfo=UTC).strftime("%H:%M:%S")
            return f"traffic: all on the originals; waiting for continue-deployment until {until}"
        return "traffic: all on the originals"
    line = (
        f"traffic: {shift.green_percent}% to the replacement fleet "
        f"(weights {shift.green_weight} replacement / {shift.blue_weight} original)"
    )
    if shift.HasField("next_step_time"):
        nxt = shift.next_step_time.ToDatetime(tzinfo=UTC).strftime("%H:%M:%S")
        line += f", next step at {nxt}"
    return line


def failures(update: Update) -> list[str]:
    """The failed events' scripts, messages and output tails."""
    lines = []
    for target in update.instance_targets:
        for event in target.lifecycle_events:
            if render.camel_enum(event, "status", "LIFECYCLE_EVENT_STATUS_") != "Failed":
                continue
            diagnostics = event.diagnostics
            lines.append(
                f"  {target.target_id} {event.lifecycle_event_name}: "
                f"{diagnostics.script_name or '-'}: {diagnostics.message}"
            )
            lines += [f"    | {line}" for line in diagnostics.log_tail.splitlines()[-TAIL_LINES:]]
    return lines


def summary(update: Update) -> list[str]:
    info = update.deployment_info
    lines = []
    if info.error_information.message:
        lines.append(f"  {info.error_information.message}")
    rollback = info.rollback_info
    if rollback.rollback_deployment_id:
        lines.append(f"  rolled back by {rollback.rollback_deployment_id}")
    elif rollback.rollback_message:
        lines.append(f"  {rollback.rollback_message}")
    return lines + failures(update)


def _pushed(client: DeployClient, deployment_id: str) -> queue.Queue[Update | Exception | None]:
    """The server's pushes, read on a thread so the terminal view can also tick its clocks."""
    updates: queue.Queue[Update | Exception | None] = queue.Queue()

    def read() -> None:
        try:
            for update in client.watch_deployment(deployment_id):
                updates.put(update)
            updates.put(None)
        except ApiError as error:
            updates.put(error)

    threading.Thread(target=read, daemon=True, name="watch").start()
    return updates


def _live(client: DeployClient, deployment_id: str) -> Iterator[Update | None]:
    """Each pushed update; None when a second passed without one (time to tick)."""
    updates = _pushed(client, deployment_id)
    while True:
        try:
            item = updates.get(timeout=TICK_SECONDS)
        except queue.Empty:
            yield None
            continue
        if item is None:
            return
        if isinstance(item, Exception):
            raise item
        yield item


def watch(client: DeployClient, deployment_id: str, out: TextIO = sys.stdout) -> str:
    """Show progress until the deployment finishes; returns its final status."""
    if out.isatty():
        last = _watch_terminal(client, deployment_id, out)
    else:
        last = _watch_log(client, deployment_id, out)
    for line in summary(last):
        print(line, file=out)
    out.flush()
    return render.camel_enum(last.deployment_info, "status", "DEPLOYMENT_STATUS_")


def _watch_terminal(client: DeployClient, deployment_id: str, out: TextIO) -> Update:
    last: Update | None = None
    drawn = 0
    for update in _live(client, deployment_id):
        last = update or last
        if last is None:
            continue
        lines = grid(last, datetime.now(UTC))
        if drawn:
            out.write(f"\x1b[{drawn}F\x1b[J")  # back to the grid's first line; clear below
        out.write("\n".join(lines) + "\n")
        out.flush()
        drawn = len(lines)
        if last.deployment_info.status in TERMINAL:
            break
    assert last is not None, "the server sends the deployment before it ends the stream"
    return last


def _watch_log(client: DeployClient, deployment_id: str, out: TextIO) -> Update:
    """One line per event that ran and per status change, then the final grid."""
    printed: set[tuple[str, str]] = set()
    status = shift = ""
    last: Update | None = None
    for update in client.watch_deployment(deployment_id):
        last = update
        for target in update.instance_targets:
            for event in target.lifecycle_events:
                event_status = render.camel_enum(event, "status", "LIFECYCLE_EVENT_STATUS_")
                key = (target.target_id, event.lifecycle_event_name)
                if event_status not in FINISHED_EVENT or key in printed:
                    continue
                printed.add(key)
                took = _elapsed(_moment(event, "start_time"), _moment(event, "end_time"))
                print(
                    f"  {target.target_id:<16} {event.lifecycle_event_name:<18} "
                    f"{event_status:<10} {took}",
                    file=out,
                    flush=True,
                )
        new_shift = traffic(update.deployment_info)
        if new_shift != shift:
            print(f"  {new_shift}", file=out, flush=True)
            shift = new_shift
        new_status = render.camel_enum(update.deployment_info, "status", "DEPLOYMENT_STATUS_")
        if new_status != status and update.deployment_info.status not in TERMINAL:
            print(f"{deployment_id}  {new_status}", file=out, flush=True)
        status = new_status
    assert last is not None, "the server sends the deployment before it ends the stream"
    for line in grid(last, datetime.now(UTC)):
        print(line, file=out)
    return last
