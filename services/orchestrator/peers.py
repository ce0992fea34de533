"""The orchestrator's view of its peers (registry, fleet) through their generated stubs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from deploy import commandsig
from deploy.hookoutput import OutputLine, line_from_proto
from deploy.v1 import (
    agent_pb2,
    common_pb2,
    fleet_pb2,
    fleet_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    traffic_pb2,
    traffic_pb2_grpc,
)
from services.core.clock import utcnow
from services.core.convert import (
    diagnostics_from_proto,
    revision_from_proto,
    revision_to_proto,
    tag_from_proto,
)
from services.core.diagnostics import Diagnostics
from services.core.errors import NotFound
from services.core.peers import peer_errors
from services.core.revision import RevisionLocation
from services.core.tags import Tag
from services.orchestrator.convert import file_exists_to_proto
from services.orchestrator.domain import Deployment, EventRef

PEER_TIMEOUT_SECONDS = 30.0
CANCEL_BATCH = 1000
"""The fleet's limit on command ids per CancelCommands call."""


class RegistryClient:
    def __init__(self, channel: aio.Channel) -> None:
        self._stub = registry_pb2_grpc.RevisionRegistryStub(channel)

    async def require_application(self, name: str) -> None:
        """NotFound (from the registry) unless the application exists."""
        async with peer_errors():
            await self._stub.GetApplication(
                registry_pb2.GetApplicationRequest(application_name=name),
                timeout=PEER_TIMEOUT_SECONDS,
            )

    async def register_revision(
        self, application: str, revision: RevisionLocation, group_name: str
    ) -> RevisionLocation:
        """Register the revision (idempotent) and return it as recorded, with the digest every
        host checks; NotFound if its bundle does not exist where it says."""
        async with peer_errors():
            response = await self._stub.RegisterApplicationRevision(
                registry_pb2.RegisterApplicationRevisionRequest(
                    application_name=application,
                    revision=revision_to_proto(revision),
                    deployment_group_name=group_name,
                ),
                timeout=PEER_TIMEOUT_SECONDS,
            )
        return revision_from_proto(response.revision)


@dataclass(frozen=True)
class CommandResult:
    """A fleet update: an agent started or finished one of our commands."""

    sequence: int
    command_id: str
    finished: bool
    succeeded: bool
    diagnostics: Diagnostics
    skipped: bool = False
    """Never started on the host (a broken chain, or cancelled while held)."""
    at: datetime | None = None
    """When the fleet stored the update."""


@dataclass(frozen=True)
class CommandOutput:
    """A line of hook output the fleet holds for one of our commands."""

    sequence: int
    command_id: str
    line: OutputLine


DISPATCH_BATCH = 250
"""Instances' chains per DispatchCommands call (the calls of one wave go out together)."""


@dataclass(frozen=True)
class Dispatch:
    """One instance's chain of lifecycle events to send to its agent."""

    chain: Sequence[EventRef]
    """The event to run, then those its agent holds after it, in order."""
    events: Sequence[str]
    """All the instance's events in this deployment (the agent's spec of it)."""


class FleetClient:
    def __init__(self, channel: aio.Channel, command_key: Ed25519PrivateKey) -> None:
        self._stub = fleet_pb2_grpc.FleetStub(channel)
        self._command_key = command_key

    async def registered_instances(self) -> dict[str, list[Tag]]:
        """Every registered instance with its tags (groups match them: DeploymentGroup.matches)."""
        instances = await self._instances(fleet_pb2.ListOnPremisesInstancesRequest())
        return {i.instance_name: [tag_from_proto(t) for t in i.tags] for i in instances}

    async def _instances(
        self, request: fleet_pb2.ListOnPremisesInstancesRequest
    ) -> list[fleet_pb2.InstanceInfo]:
        """Every instance the request matches, page after page."""
        found: list[fleet_pb2.InstanceInfo] = []
        while True:
            async with peer_errors():
                response = await self._stub.ListOnPremisesInstances(
                    request, timeout=PEER_TIMEOUT_SECONDS
                )
            found.extend(response.instances)
            if not response.next_token:
                return found
            request.next_token = response.next_token

    async def dispatch(
        self, deployment: Deployment, dispatches: Sequence[Dispatch]
    ) -> dict[int, str]:
        """Send chains of lifecycle events (one per instance) to their agents, a few calls for
        them all, each command signed for its instance (the agent runs nothing else): a
        chain's first event, then the rest, each to run only if the one before it passed.
        Returns why the fleet refused a chain (its instance is not registered), by index."""
        now = utcnow()
        requests = [self._request(deployment, d, now) for d in dispatches]
        batches = range(0, len(requests), DISPATCH_BATCH)
        answers = await asyncio.gather(
            *(self._dispatch(requests[start : start + DISPATCH_BATCH]) for start in batches)
        )
        return {
            start + refusal.index: refusal.message
            for start, answer in zip(batches, answers, strict=True)
            for refusal in answer.refusals
        }

    async def _dispatch(
        self, requests: list[fleet_pb2.DispatchCommandRequest]
    ) -> fleet_pb2.DispatchCommandsResponse:
        async with peer_errors():
            response: fleet_pb2.DispatchCommandsResponse = await self._stub.DispatchCommands(
                fleet_pb2.DispatchCommandsRequest(dispatches=requests),
                timeout=PEER_TIMEOUT_SECONDS,
            )
        return response

    def _request(
        self, deployment: Deployment, dispatch: Dispatch, now: datetime
    ) -> fleet_pb2.DispatchCommandRequest:
        spec = agent_pb2.DeploymentSpec(
            deployment_id=deployment.id,
            application_name=deployment.application_name,
            deployment_group_name=deployment.group_name,
            deployment_group_id=deployment.group_id,
            revision=revision_to_proto(deployment.revision),
            file_exists_behavior=file_exists_to_proto(deployment.file_exists_behavior),
            ignore_application_stop_failures=deployment.ignore_application_stop_failures,
            lifecycle_events=dispatch.events,
            fetch_through_registry=deployment.fetch_through_registry,
        )
        commands = []
        for before, ref in zip((None, *dispatch.chain), dispatch.chain, strict=False):
            command = agent_pb2.LifecycleCommand(
                command_id=ref.command_id,
                lifecycle_event=ref.name,
                spec=spec,
                after_command_id=before.command_id if before else "",
            )
            commandsig.sign(self._command_key, ref.instance_name, command, now)
            commands.append(command)
        return fleet_pb2.DispatchCommandRequest(
            instance_name=dispatch.chain[0].instance_name, command=commands[0], then=commands[1:]
        )

    async def cancel(self, command_ids: Sequence[str], reason: str) -> None:
        """Stop these commands; each ends with a FINISHED update on the results stream."""
        for start in range(0, len(command_ids), CANCEL_BATCH):
            async with peer_errors():
                await self._stub.CancelCommands(
                    fleet_pb2.CancelCommandsRequest(
                        command_ids=command_ids[start : start + CANCEL_BATCH], reason=reason
                    ),
                    timeout=PEER_TIMEOUT_SECONDS,
                )

    async def instance_tags(self, name: str) -> list[Tag] | None:
        """The tags of a registered instance; None when it is not (or no longer) registered."""
        try:
            async with peer_errors():
                response = await self._stub.GetOnPremisesInstance(
                    fleet_pb2.GetOnPremisesInstanceRequest(instance_name=name),
                    timeout=PEER_TIMEOUT_SECONDS,
                )
        except NotFound:
            return None
        info = response.instance_info
        if info.registration_status != fleet_pb2.REGISTRATION_STATUS_REGISTERED:
            return None
        return [tag_from_proto(t) for t in info.tags]

    async def instance_address(self, name: str) -> str:
        """The host the instance's agent connects from ("" when it never connected)."""
        async with peer_errors():
            response = await self._stub.GetOnPremisesInstance(
                fleet_pb2.GetOnPremisesInstanceRequest(instance_name=name),
                timeout=PEER_TIMEOUT_SECONDS,
            )
        return str(response.instance_info.address)

    async def online_instances_tagged(self, key: str, value: str) -> list[str]:
        """Registered instances with the tag key=value whose agents are online, sorted."""
        instances = await self._instances(
            fleet_pb2.ListOnPremisesInstancesRequest(
                tag_filters=[
                    common_pb2.TagFilter(
                        key=key, value=value, type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE
                    )
                ]
            )
        )
        return sorted(
            i.instance_name for i in instances if i.health == fleet_pb2.INSTANCE_HEALTH_ONLINE
        )

    async def deregister(self, name: str) -> None:
        """Deregister the instance (a retired original); done already is fine."""
        try:
            async with peer_errors():
                await self._stub.DeregisterOnPremisesInstance(
                    fleet_pb2.DeregisterOnPremisesInstanceRequest(instance_name=name),
                    timeout=PEER_TIMEOUT_SECONDS,
                )
        except NotFound:
            return

    async def instance_changes(self) -> AsyncIterator[str | None]:
        """Names of instances as they change; None first and whenever any may have."""
        async with peer_errors():
            stream = self._stub.WatchInstanceChanges(fleet_pb2.WatchInstanceChangesRequest())
            async for change in stream:
                yield None if change.resync or not change.instance_name else change.instance_name

    async def output(
        self, deployment_id: str, instance_name: str | None, after_sequence: int, follow: bool
    ) -> AsyncGenerator[list[CommandOutput], None]:
        """Batches of the hook output of the deployment's commands (of one instance, when
        named) after the cursor; with `follow`, then new ones as agents stream them."""
        async with peer_errors():
            stream = self._stub.WatchCommandOutput(
                fleet_pb2.WatchCommandOutputRequest(
                    deployment_id=deployment_id,
                    instance_name=instance_name or "",
                    after_sequence=after_sequence,
                    follow=follow,
                )
            )
            try:
                async for response in stream:
                    yield [
                        CommandOutput(o.sequence, o.command_id, line_from_proto(o.line))
                        for o in response.lines
                    ]
            finally:
                stream.cancel()  # the reader stopped early: end the call, not just the loop

    async def results(self, after_sequence: int) -> AsyncIterator[CommandResult]:
        """Every command's end after the cursor, then new ones as agents report them."""
        async with peer_errors():
            stream = self._stub.WatchCommandUpdates(
                fleet_pb2.WatchCommandUpdatesRequest(
                    after_sequence=after_sequence, finished_only=True
                )
            )
            async for update in stream:
                yield CommandResult(
                    sequence=update.sequence,
                    command_id=update.command_id,
                    finished=update.kind == fleet_pb2.COMMAND_UPDATE_KIND_FINISHED,
                    succeeded=update.status == common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
                    diagnostics=diagnostics_from_proto(update.diagnostics),
                    skipped=update.status == common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED,
                    at=update.time.ToDatetime(UTC) if update.HasField("time") else None,
                )


ALLOW_TIMEOUT_SECONDS = 60 + 2 * PEER_TIMEOUT_SECONDS
"""AllowTraffic waits for the load balancer's health check (ELBv2: up to 60 s)."""
BLOCK_TIMEOUT_SECONDS = 3600 + PEER_TIMEOUT_SECONDS
"""BlockTraffic waits up to the target group's deregistration delay (at most an hour)."""


@dataclass(frozen=True)
class Drained:
    open_connections: int
    seconds: float


class TrafficClient:
    def __init__(self, channel: aio.Channel) -> None:
        self._stub = traffic_pb2_grpc.TrafficRouterStub(channel)

    async def require_target_group(self, name: str) -> None:
        """NotFound (from the traffic service) unless the target group exists."""
        async with peer_errors():
            await self._stub.GetTargetGroup(
                traffic_pb2.GetTargetGroupRequest(name=name), timeout=PEER_TIMEOUT_SECONDS
            )

    async def allow(self, group: str, instance: str, host: str, weight: int) -> str:
        """The instance serves in the target group; returns its address there."""
        async with peer_errors():
            response = await self._stub.AllowTraffic(
                traffic_pb2.AllowTrafficRequest(
                    target_group_name=group, instance_name=instance, host=host, weight=weight
                ),
                timeout=ALLOW_TIMEOUT_SECONDS,
            )
        return str(response.address)

    async def set_weights(self, group: str, weights: Mapping[str, int]) -> None:
        """Re-weigh the instances that are in the target group (others are left alone)."""
        async with peer_errors():
            await self._stub.SetWeights(
                traffic_pb2.SetWeightsRequest(target_group_name=group, weights=dict(weights)),
                timeout=PEER_TIMEOUT_SECONDS,
            )

    async def block(self, group: str, instance: str) -> Drained:
        async with peer_errors():
            response = await self._stub.BlockTraffic(
                traffic_pb2.BlockTrafficRequest(target_group_name=group, instance_name=instance),
                timeout=BLOCK_TIMEOUT_SECONDS,
            )
        return Drained(response.open_connections, response.drain_seconds)
