"""The agent's session state that must stay bounded."""

from __future__ import annotations

import dataclasses

from agent.session import SeenCommands, runs_after
from agent.spec import DeploymentSpec, EventCommand
from deploy.v1 import common_pb2


def test_the_agent_remembers_a_bounded_number_of_command_ids() -> None:
    seen = SeenCommands(3)
    for command_id in ["a", "b", "c", "d"]:
        seen.add(command_id)
    assert len(seen) == 3
    assert "a" not in seen
    assert all(c in seen for c in ["b", "c", "d"])


def test_a_chain_goes_on_only_after_a_command_that_passed_here() -> None:
    succeeded, failed = (
        common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
        common_pb2.LIFECYCLE_EVENT_STATUS_FAILED,
    )
    skipped = common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED
    spec = DeploymentSpec(
        "d-1", "a", "g", "g", lifecycle_events=("ApplicationStop", "DownloadBundle")
    )
    download = EventCommand("c-2", "DownloadBundle", spec, after_command_id="c-1")
    assert runs_after(download, succeeded)
    assert not runs_after(download, failed)
    assert not runs_after(download, skipped)
    assert not runs_after(download, common_pb2.LIFECYCLE_EVENT_STATUS_UNSPECIFIED)  # unknown here
    # --ignore-application-stop-failures: a failed ApplicationStop lets the chain go on
    spec = dataclasses.replace(spec, ignore_application_stop_failures=True)
    lenient = dataclasses.replace(download, spec=spec)
    assert runs_after(lenient, failed)
    install = dataclasses.replace(lenient, event="Install")
    assert not runs_after(install, failed)  # not an event in its spec: nothing to excuse


def test_the_agent_remembers_how_each_command_ended_here() -> None:
    seen = SeenCommands(3)
    seen.add("received")  # received, not ended
    seen.add("ok", common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED)
    assert seen.status("ok") == common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED
    assert seen.status("received") == common_pb2.LIFECYCLE_EVENT_STATUS_UNSPECIFIED
    assert seen.status("never") == common_pb2.LIFECYCLE_EVENT_STATUS_UNSPECIFIED
    seen.add("b")
    seen.add("c")  # the oldest is forgotten, with how it ended
    assert "received" not in seen
