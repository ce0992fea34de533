"""Fleet messages ↔ domain objects."""

from __future__ import annotations

from deploy.hookoutput import line_to_proto
from deploy.v1 import agent_pb2, common_pb2, fleet_pb2
from services.core.convert import diagnostics_to_proto, tag_to_proto, timestamp
from services.fleet.domain import (
    CommandState,
    CommandUpdate,
    Health,
    Instance,
    StoredOutput,
    UpdateKind,
)

_STATUS = {
    CommandState.PENDING: common_pb2.LIFECYCLE_EVENT_STATUS_PENDING,
    CommandState.IN_PROGRESS: common_pb2.LIFECYCLE_EVENT_STATUS_IN_PROGRESS,
    CommandState.SUCCEEDED: common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
    CommandState.FAILED: common_pb2.LIFECYCLE_EVENT_STATUS_FAILED,
    CommandState.SKIPPED: common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED,
}
_KIND = {
    UpdateKind.STARTED: fleet_pb2.COMMAND_UPDATE_KIND_STARTED,
    UpdateKind.FINISHED: fleet_pb2.COMMAND_UPDATE_KIND_FINISHED,
}


def instance_to_proto(instance: Instance, health: Health) -> fleet_pb2.InstanceInfo:
    return fleet_pb2.InstanceInfo(
        instance_name=instance.name,
        instance_arn=f"arn:opendeploy:fleet:instance/{instance.name}",
        tags=[tag_to_proto(t) for t in instance.tags],
        registration_status=(
            fleet_pb2.REGISTRATION_STATUS_REGISTERED
            if instance.registered
            else fleet_pb2.REGISTRATION_STATUS_DEREGISTERED
        ),
        health=(
            fleet_pb2.INSTANCE_HEALTH_ONLINE
            if health is Health.ONLINE
            else fleet_pb2.INSTANCE_HEALTH_OFFLINE
        ),
        register_time=timestamp(instance.registered_at),
        last_seen_time=timestamp(instance.last_seen_at),
        address=instance.address,
    )


def update_to_proto(update: CommandUpdate) -> fleet_pb2.WatchCommandUpdatesResponse:
    return fleet_pb2.WatchCommandUpdatesResponse(
        sequence=update.sequence,
        command_id=update.command_id,
        instance_name=update.instance_name,
        kind=_KIND[update.kind],
        status=_STATUS[update.state],
        diagnostics=diagnostics_to_proto(update.diagnostics),
        time=timestamp(update.at),
    )


def output_to_proto(stored: StoredOutput) -> fleet_pb2.CommandOutputLine:
    return fleet_pb2.CommandOutputLine(
        sequence=stored.sequence, command_id=stored.command_id, line=line_to_proto(stored.line)
    )


def command_message(payload: bytes) -> agent_pb2.ConnectResponse:
    """A stored command (serialized LifecycleCommand) as the agent stream sends it."""
    return agent_pb2.ConnectResponse(command=agent_pb2.LifecycleCommand.FromString(payload))


def cancel_message(command_id: str, reason: str) -> agent_pb2.ConnectResponse:
    return agent_pb2.ConnectResponse(
        cancel=agent_pb2.CancelCommand(command_id=command_id, reason=reason)
    )


def finished_state(status: int) -> CommandState | None:
    """The command state an agent's CommandFinished status stands for (None if not terminal)."""
    if status == common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED:
        return CommandState.SUCCEEDED
    if status == common_pb2.LIFECYCLE_EVENT_STATUS_FAILED:
        return CommandState.FAILED
    if status == common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED:
        return CommandState.SKIPPED
    return None
