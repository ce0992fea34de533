"""The `deploy watch` view: instances as rows, events as columns, failures at the end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from deploy.cli.logs import shown
from deploy.cli.watch import LIVE_LINES, grid, running_output, summary
from deploy.v1 import common_pb2
from deploy.v1 import orchestrator_pb2 as pb

START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def stamp(seconds: float) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(START + timedelta(seconds=seconds))
    return value


def event(
    name: str, status: int, start: float | None = None, end: float | None = None
) -> pb.LifecycleEvent:
    message = pb.LifecycleEvent(lifecycle_event_name=name, status=status)
    if start is not None:
        message.start_time.CopyFrom(stamp(start))
    if end is not None:
        message.end_time.CopyFrom(stamp(end))
    return message


S = common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED
F = common_pb2.LIFECYCLE_EVENT_STATUS_FAILED
R = common_pb2.LIFECYCLE_EVENT_STATUS_IN_PROGRESS
P = common_pb2.LIFECYCLE_EVENT_STATUS_PENDING
K = common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED


def update() -> pb.WatchDeploymentResponse:
    failed = event("ValidateService", F, 2, 3.5)
    failed.diagnostics.script_name = "scripts/validate.sh"
    failed.diagnostics.message = "Script at specified location: scripts/validate.sh failed"
    failed.diagnostics.log_tail = "checking\nservice is not healthy\n"
    return pb.WatchDeploymentResponse(
        deployment_info=pb.DeploymentInfo(
            deployment_id="d-ABC",
            application_name="app",
            deployment_group_name="web",
            deployment_config_name="CodeDeployDefault.OneAtATime",
            status=pb.DEPLOYMENT_STATUS_IN_PROGRESS,
            start_time=stamp(0),
            deployment_overview=pb.DeploymentOverview(in_progress=1, failed=1),
        ),
        instance_targets=[
            pb.InstanceTarget(
                target_id="node-1",
                status=pb.TARGET_STATUS_FAILED,
                lifecycle_events=[event("ApplicationStop", S, 0, 0.25), failed],
            ),
            pb.InstanceTarget(
                target_id="node-22",
                status=pb.TARGET_STATUS_IN_PROGRESS,
                lifecycle_events=[event("ApplicationStop", R, 4), event("ValidateService", P)],
            ),
        ],
    )


def test_grid_has_a_row_per_instance_and_a_column_per_event() -> None:
    lines = grid(update(), START + timedelta(seconds=6))
    assert lines[0].startswith("d-ABC  InProgress  app/web  CodeDeployDefault.OneAtATime  6.0s")
    header, first, second = lines[2:]
    assert header.split() == ["instance", "status", "AppStop", "Validate"]
    assert first.split() == ["node-1", "Failed", "ok", "0.2s", "FAIL", "1.5s"]
    assert second.split() == ["node-22", "InProgress", ">", "2.0s", "."]
    # columns line up whatever the instance names' lengths
    assert header.index("AppStop") == first.index("ok") == second.index(">")


def test_summary_ends_with_the_failing_scripts_output() -> None:
    lines = summary(update())
    assert lines[0] == (
        "  node-1 ValidateService: scripts/validate.sh: "
        "Script at specified location: scripts/validate.sh failed"
    )
    assert lines[1:] == ["    | checking", "    | service is not healthy"]


def test_skipped_events_and_minutes_are_shown() -> None:
    message = update()
    message.instance_targets[1].lifecycle_events[1].status = K
    message.instance_targets[1].lifecycle_events[0].start_time.CopyFrom(stamp(-125))
    row = grid(message, START + timedelta(seconds=6))[-1]
    assert row.split()[2:] == [">", "2m11s", "skip"]


def test_blue_green_grid_has_a_column_per_event_of_either_fleet_and_the_traffic_shift() -> None:
    shift = pb.TrafficShift(
        green_percent=25, steps=[25, 100], step=0, green_weight=33, blue_weight=100
    )
    shift.next_step_time.CopyFrom(stamp(10))
    view = pb.WatchDeploymentResponse(
        deployment_info=pb.DeploymentInfo(
            deployment_id="d-BG",
            status=pb.DEPLOYMENT_STATUS_IN_PROGRESS,
            traffic_shift=shift,
        ),
        instance_targets=[
            pb.InstanceTarget(
                target_id="old-1",
                label=pb.TARGET_LABEL_BLUE,
                status=pb.TARGET_STATUS_PENDING,
                lifecycle_events=[event("BlockTraffic", P)],
            ),
            pb.InstanceTarget(
                target_id="new-1",
                label=pb.TARGET_LABEL_GREEN,
                status=pb.TARGET_STATUS_SUCCEEDED,
                lifecycle_events=[event("Install", S, 0, 1), event("AllowTraffic", S, 1, 2)],
            ),
        ],
    )
    lines = grid(view, START + timedelta(seconds=5))
    assert (
        "  traffic: 25% to the replacement fleet (weights 33 replacement / 100 original), "
        "next step at 09:00:10" in lines
    )
    header = next(line for line in lines if "instance" in line)
    assert header.split()[2:] == ["Block", "Install", "Allow"]
    old = next(line for line in lines if line.strip().startswith("old-1 (blue)"))
    new = next(line for line in lines if line.strip().startswith("new-1 (green)"))
    assert old.split()[3:] == ["."]
    assert new.split()[3:] == ["ok", "1.0s", "ok", "1.0s"]


def hook(target: str, event_name: str, text: str, stream: int = 0) -> pb.HookOutputLine:
    return pb.HookOutputLine(
        target_id=target,
        lifecycle_event_name=event_name,
        line=common_pb2.OutputLine(stream=stream or common_pb2.OUTPUT_STREAM_STDOUT, text=text),
    )


def test_output_lines_are_prefixed_with_host_and_event_and_marked_by_stream() -> None:
    assert shown(hook("node-1", "AfterInstall", "ready")) == "node-1 AfterInstall: ready"
    stderr = hook("node-1", "AfterInstall", "oops", common_pb2.OUTPUT_STREAM_STDERR)
    assert shown(stderr) == "node-1 AfterInstall (stderr): oops"
    note = hook("node-1", "AfterInstall", "3 lines not streamed", common_pb2.OUTPUT_STREAM_AGENT)
    assert shown(note) == "node-1 AfterInstall (agent): 3 lines not streamed"


def test_the_running_events_last_lines_show_under_the_grid() -> None:
    tails = {
        "node-1": [hook("node-1", "ValidateService", "finished long ago")],
        "node-22": [
            hook("node-22", "BeforeInstall", "from an earlier event"),
            *(hook("node-22", "ApplicationStop", f"stopping {i}") for i in range(5)),
        ],
    }
    assert running_output(update(), tails) == [
        f"    node-22 ApplicationStop: stopping {i}" for i in range(5 - LIVE_LINES, 5)
    ]
