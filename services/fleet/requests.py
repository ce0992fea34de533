"""The fleet's requests read and checked, every error naming its field: dispatches of lifecycle
commands, cancels, tag changes, filters and watch positions. Part of the service's edge with
convert.py; the servicer reads only plain instance names itself."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from deploy.v1 import agent_pb2, common_pb2, fleet_pb2
from services.core.convert import tag_filter_from_proto, tag_from_proto
from services.core.errors import InvalidArgument
from services.core.names import check_instance_name, check_text
from services.core.tags import Tag, TagFilter, check_tag_filters, check_tags

DEPLOYMENT_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
COMMAND_ID = re.compile(r"^[A-Za-z0-9._:+=,@-]{1,255}\Z")
EVENT_NAME = re.compile(r"^[A-Za-z]{1,64}\Z")
MAX_CANCELLED = 1000
MAX_CHAIN = 20
"""Commands held after the first of a dispatch at most (an instance runs 13 events at most)."""
MAX_DISPATCHES = 1000
"""Instances' dispatches in one DispatchCommands call at most."""
MAX_REASON = 256
MAX_SEQUENCE = 2**31 - 1
"""Update sequence numbers are stored as 32-bit integers."""
MAX_TAGGED_INSTANCES = 10
"""CodeDeploy's limit per AddTags/RemoveTags call."""


def names_and_tags_from_proto(
    names: Iterable[str], tags: Iterable[common_pb2.Tag]
) -> tuple[list[str], list[Tag]]:
    checked = [check_instance_name(f"instanceNames[{i}]", n) for i, n in enumerate(names)]
    if not checked:
        raise InvalidArgument("instanceNames: name at least one instance")
    if len(checked) > MAX_TAGGED_INSTANCES:
        raise InvalidArgument(f"instanceNames: at most {MAX_TAGGED_INSTANCES} instances per call")
    tag_list = tags_from_proto(tags)
    if not tag_list:
        raise InvalidArgument("tags: give at least one tag")
    return checked, tag_list


def dispatch_from_proto(
    request: fleet_pb2.DispatchCommandRequest, prefix: str = ""
) -> tuple[str, list[tuple[str, bytes]], str | None]:
    """A dispatch checked (fields named after `prefix`): the instance, its commands (id and
    payload) and the deployment to key their hook output by."""
    name = check_instance_name(f"{prefix}instanceName", request.instance_name)
    if len(request.then) > MAX_CHAIN:
        raise InvalidArgument(f"{prefix}then holds at most {MAX_CHAIN} commands")
    commands = [request.command, *request.then]
    for field, command in zip(_command_fields(len(commands)), commands, strict=True):
        _check_command(f"{prefix}{field}", command)
    # The agent judges the commands' spec (and refuses what is not its to run); the fleet
    # only keys hook output by a deployment id that looks like one.
    deployment_id = request.command.spec.deployment_id
    return (
        name,
        [(command.command_id, command.SerializeToString()) for command in commands],
        deployment_id if DEPLOYMENT_KEY.match(deployment_id) else None,
    )


def _command_fields(count: int) -> list[str]:
    return ["command", *(f"then[{i}]" for i in range(count - 1))]


def _check_command(field: str, command: agent_pb2.LifecycleCommand) -> None:
    if not COMMAND_ID.match(command.command_id):
        raise InvalidArgument(
            f"{field}.commandId is required: 1-255 of letters, digits and ._:+=,@-"
        )
    if not EVENT_NAME.match(command.lifecycle_event):
        raise InvalidArgument(
            f"{field}.lifecycleEvent {command.lifecycle_event[:100]!r} is not a lifecycle event"
        )


def dispatches_from_proto(
    request: fleet_pb2.DispatchCommandsRequest,
) -> list[tuple[str, list[tuple[str, bytes]], str | None]]:
    if len(request.dispatches) > MAX_DISPATCHES:
        raise InvalidArgument(f"dispatches holds at most {MAX_DISPATCHES} dispatches")
    return [dispatch_from_proto(d, f"dispatches[{i}].") for i, d in enumerate(request.dispatches)]


def cancel_from_proto(request: fleet_pb2.CancelCommandsRequest) -> tuple[list[str], str]:
    """The commands to cancel and why."""
    if len(request.command_ids) > MAX_CANCELLED:
        raise InvalidArgument(f"commandIds: at most {MAX_CANCELLED} per call")
    for i, command_id in enumerate(request.command_ids):
        if not COMMAND_ID.match(command_id):
            raise InvalidArgument(
                f"commandIds[{i}]: 1-255 of letters, digits and ._:+=,@- are allowed"
            )
    reason = check_text("reason", request.reason, MAX_REASON) or "the command was cancelled"
    return list(request.command_ids), reason


def output_watch_from_proto(request: fleet_pb2.WatchCommandOutputRequest) -> tuple[str, str | None]:
    """The deployment whose hook output to watch, and the instance (None: all)."""
    if not DEPLOYMENT_KEY.match(request.deployment_id):
        raise InvalidArgument(
            "deploymentId is required: 1-64 of letters, digits and ._- are allowed"
        )
    if not request.instance_name:
        return request.deployment_id, None
    return request.deployment_id, check_instance_name("instanceName", request.instance_name)


def sequence_from_proto(after_sequence: int) -> int:
    if not 0 <= after_sequence <= MAX_SEQUENCE:
        raise InvalidArgument(f"afterSequence must be in 0-{MAX_SEQUENCE}")
    return after_sequence


def tag_filters_from_proto(messages: Sequence[common_pb2.TagFilter]) -> list[TagFilter]:
    return check_tag_filters(
        "tagFilters",
        [tag_filter_from_proto(f, f"tagFilters[{i}]") for i, f in enumerate(messages)],
    )


def tags_from_proto(messages: Iterable[common_pb2.Tag]) -> list[Tag]:
    return check_tags("tags", [tag_from_proto(t) for t in messages])
