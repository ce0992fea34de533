"""`deploy watch`: a live view of a deployment — instances as rows, lifecycle events as columns.

The server pushes every change (WatchDeployment) and, with --logs, every line the hooks write
(WatchDeploymentLogs); nothing here polls it. On a terminal the grid is redrawn in place on
each change and once a second for the clocks of running events, with the running hooks' last
lines under it; into a pipe or a log, each event is printed as one line when it ends (and each
output line as it comes) and the grid once at the end. Either way the view ends with the final
status and, when it failed, the failing scripts' output.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TextIO

from deploy.cli import render
from deploy.cli.logs import shown
from deploy.client import TERMINAL, DeployClient
from deploy.errors import ApiError
from deploy.lifecycle import label
from deploy.v1 import common_pb2, orchestrator_pb2

Update = orchestrator_pb2.WatchDeploymentResponse
HookLine = orchestrator_pb2.HookOutputLine

FINISHED_EVENT = {"Succeeded", "Failed"}
"""Printed as lines in a log; skipped events show in the final grid only."""
CELL = 11
TICK_SECONDS = 1.0
TAIL_LINES = 10
LIVE_LINES = 3
"""Output lines shown under the grid per running event (deploy watch --logs)."""
LOGS_DRAIN_SECONDS = 5.0
"""How long a finished deployment's last output lines are waited for."""


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
        + "".join(label(n)[: CELL - 1].ljust(CELL) for n in names)
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
        f"{target.target_id} ({render.instance_label(target).lower()})"
        if target.label != orchestrator_pb2.TARGET_LABEL_UNSPECIFIED
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


def running_output(update: Update, tails: Mapping[str, Sequence[HookLine]]) -> list[str]:
    """The last lines each running event's hooks wrote (pure, like `grid`)."""
    lines = []
    for target in update.instance_targets:
        running = {
            e.lifecycle_event_name
            for e in target.lifecycle_events
            if e.status == common_pb2.LIFECYCLE_EVENT_STATUS_IN_PROGRESS
        }
        recent = [h for h in tails.get(target.target_id, ()) if h.lifecycle_event_name in running]
        lines += [f"    {shown(h)}" for h in recent[-LIVE_LINES:]]
    return lines


@dataclass(frozen=True)
class Ended:
    """One of the pushed streams ended (with the error that ended it, if one did)."""

    logs: bool
    error: ApiError | None = None


Pushed = Update | HookLine | Ended


def _pushed(client: DeployClient, deployment_id: str, logs: bool) -> queue.Queue[Pushed]:
    """The server's pushes — the deployment's changes and, with `logs`, its hooks' output
    lines — read on threads so the terminal view can also tick its clocks."""
    items: queue.Queue[Pushed] = queue.Queue()

    def read(source: Iterator[Update] | Iterator[HookLine], is_logs: bool) -> None:
        error = None
        try:
            for item in source:
                items.put(item)
        except ApiError as failure:
            error = failure
        items.put(Ended(is_logs, error))

    sources: list[tuple[Iterator[Update] | Iterator[HookLine], bool]] = [
        (client.watch_deployment(deployment_id), False)
    ]
    if logs:
        sources.append((client.watch_deployment_logs(deployment_id, follow=True), True))
    for source, is_logs in sources:
        threading.Thread(target=read, args=(source, is_logs), daemon=True, name="watch").start()
    return items


def _live(
    client: DeployClient, deployment_id: str, logs: bool
) -> Iterator[Update | HookLine | str | None]:
    """Each pushed update and output line; a notice (str) when the output cannot be read;
    None when a second passed without anything (time to tick). Ends with the deployment's
    stream, and with `logs` once the output has ended too (soon after the deployment) or
    `LOGS_DRAIN_SECONDS` later."""
    items = _pushed(client, deployment_id, logs)
    open_streams = {False, True} if logs else {False}
    drain_until: float | None = None
    while open_streams:
        wait = TICK_SECONDS
        if False not in open_streams:  # the deployment ended: its last lines are on their way
            drain_until = drain_until or time.monotonic() + LOGS_DRAIN_SECONDS
            wait = min(wait, drain_until - time.monotonic())
            if wait <= 0:
                return
        try:
            item = items.get(timeout=wait)
        except queue.Empty:
            yield None
            continue
        if not isinstance(item, Ended):
            yield item
            continue
        open_streams.discard(item.logs)
        if item.error is not None:
            if not item.logs:
                raise item.error
            yield f"  hook output unavailable: {str(item.error).splitlines()[0]}"


def watch(
    client: DeployClient, deployment_id: str, out: TextIO = sys.stdout, logs: bool = False
) -> str:
    """Show progress until the deployment finishes (with `logs`, the hooks' output too);
    returns its final status."""
    if out.isatty():
        last = _watch_terminal(client, deployment_id, out, logs)
    else:
        last = _watch_log(client, deployment_id, out, logs)
    for line in summary(last):
        print(line, file=out)
    out.flush()
    return render.camel_enum(last.deployment_info, "status", "DEPLOYMENT_STATUS_")


def _watch_terminal(client: DeployClient, deployment_id: str, out: TextIO, logs: bool) -> Update:
    """The grid redrawn in place, with the running events' last output lines under it."""
    last: Update | None = None
    drawn = 0
    tails: dict[str, deque[HookLine]] = {}
    notices: list[str] = []
    for item in _live(client, deployment_id, logs):
        if isinstance(item, HookLine):
            tails.setdefault(item.target_id, deque(maxlen=LIVE_LINES)).append(item)
            continue  # shown at the next update or tick
        if isinstance(item, str):
            notices.append(item)
            continue
        last = item or last
        if last is None:
            continue
        lines = grid(last, datetime.now(UTC)) + running_output(last, tails) + notices
        if drawn:
            out.write(f"\x1b[{drawn}F\x1b[J")  # back to the grid's first line; clear below
        out.write("\n".join(lines) + "\n")
        out.flush()
        drawn = len(lines)
        if last.deployment_info.status in TERMINAL:
            break
    assert last is not None, "the server sends the deployment before it ends the stream"
    return last


def _watch_log(client: DeployClient, deployment_id: str, out: TextIO, logs: bool) -> Update:
    """One line per event that ran, per status change and (with `logs`) per output line,
    then the final grid."""
    printed: set[tuple[str, str]] = set()
    status = shift = ""
    last: Update | None = None
    for item in _live(client, deployment_id, logs):
        if item is None:
            continue
        if isinstance(item, str):
            print(item, file=out, flush=True)
            continue
        if isinstance(item, HookLine):
            print(f"  | {shown(item)}", file=out, flush=True)
            continue
        last = item
        for target in item.instance_targets:
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
        new_shift = traffic(item.deployment_info)
        if new_shift != shift:
            print(f"  {new_shift}", file=out, flush=True)
            shift = new_shift
        new_status = render.camel_enum(item.deployment_info, "status", "DEPLOYMENT_STATUS_")
        if new_status != status and item.deployment_info.status not in TERMINAL:
            print(f"{deployment_id}  {new_status}", file=out, flush=True)
        status = new_status
    assert last is not None, "the server sends the deployment before it ends the stream"
    for line in grid(last, datetime.now(UTC)):
        print(line, file=out)
    return last
