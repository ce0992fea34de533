"""The fleet's requests read and checked (requests.py): what a dispatch carries to the agent,
and every refusal naming its field."""

from __future__ import annotations

import re

import pytest

from deploy.v1 import agent_pb2, common_pb2, fleet_pb2
from services.core.errors import InvalidArgument
from services.core.tags import Tag
from services.fleet.requests import (
    MAX_CHAIN,
    cancel_from_proto,
    dispatch_from_proto,
    names_and_tags_from_proto,
    output_watch_from_proto,
    sequence_from_proto,
)


def command(
    command_id: str, event: str = "Install", deployment: str = "d-1"
) -> agent_pb2.LifecycleCommand:
    spec = agent_pb2.DeploymentSpec(deployment_id=deployment)
    return agent_pb2.LifecycleCommand(command_id=command_id, lifecycle_event=event, spec=spec)


def test_a_dispatch_carries_its_chain_as_sent_keyed_by_its_deployment() -> None:
    first, then = command("c-1"), command("c-2", "AfterInstall")
    name, commands, deployment = dispatch_from_proto(
        fleet_pb2.DispatchCommandRequest(instance_name="web-1", command=first, then=[then])
    )
    assert name == "web-1" and deployment == "d-1"
    assert commands == [("c-1", first.SerializeToString()), ("c-2", then.SerializeToString())]
    odd = fleet_pb2.DispatchCommandRequest(
        instance_name="web-1", command=command("c-1", deployment="d/../x")
    )
    assert dispatch_from_proto(odd)[2] is None  # hook output is not keyed by what is no id


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            fleet_pb2.DispatchCommandRequest(instance_name="", command=command("c-1")),
            "instanceName",
        ),
        (
            fleet_pb2.DispatchCommandRequest(instance_name="w", command=command("c 1")),
            "command.commandId",
        ),
        (
            fleet_pb2.DispatchCommandRequest(
                instance_name="w", command=command("c-1"), then=[command("c-2", "Install;rm")]
            ),
            "then[0].lifecycleEvent",
        ),
        (
            fleet_pb2.DispatchCommandRequest(
                instance_name="w",
                command=command("c-0"),
                then=[command(f"c-{i}") for i in range(1, MAX_CHAIN + 2)],
            ),
            "then holds at most",
        ),
    ],
)
def test_a_bad_dispatch_is_refused_by_field(
    request_: fleet_pb2.DispatchCommandRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(field)):
        dispatch_from_proto(request_)


def test_a_cancel_names_its_commands_and_a_reason() -> None:
    ids, reason = cancel_from_proto(fleet_pb2.CancelCommandsRequest(command_ids=["c-1"]))
    assert (ids, reason) == (["c-1"], "the command was cancelled")
    with pytest.raises(InvalidArgument, match=re.escape("commandIds[1]")):
        cancel_from_proto(fleet_pb2.CancelCommandsRequest(command_ids=["c-1", ""]))


def test_tags_go_to_one_to_ten_named_instances() -> None:
    tag = common_pb2.Tag(key="role", value="web")
    assert names_and_tags_from_proto(["a", "b"], [tag]) == (["a", "b"], [Tag("role", "web")])
    with pytest.raises(InvalidArgument, match="instanceNames"):
        names_and_tags_from_proto([], [tag])
    with pytest.raises(InvalidArgument, match="at most 10"):
        names_and_tags_from_proto([f"i{n}" for n in range(11)], [tag])
    with pytest.raises(InvalidArgument, match="tags"):
        names_and_tags_from_proto(["a"], [])


def test_watch_positions_and_keys_are_checked() -> None:
    assert sequence_from_proto(0) == 0
    with pytest.raises(InvalidArgument, match="afterSequence"):
        sequence_from_proto(2**31)
    watch = fleet_pb2.WatchCommandOutputRequest(deployment_id="d-1")
    assert output_watch_from_proto(watch) == ("d-1", None)
    with pytest.raises(InvalidArgument, match="deploymentId"):
        output_watch_from_proto(fleet_pb2.WatchCommandOutputRequest(deployment_id=""))
