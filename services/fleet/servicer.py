"""Fleet's gRPC edge: instances and command dispatch — validate, load, delegate, convert."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import agent_pb2, common_pb2, fleet_pb2, fleet_pb2_grpc
from services.core.access import calling_instance
from services.core.clock import utcnow
from services.core.convert import tag_filter_from_proto, tag_from_proto, timestamp
from services.core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.core.names import check_instance_name, check_text
from services.core.paging import MAX_PAGE, page_of
from services.core.tags import Tag, check_tag_filters, check_tags, matches_any
from services.fleet.changes import InstanceChanges
from services.fleet.commands import CommandBus
from services.fleet.convert import instance_to_proto, output_to_proto, update_to_proto
from services.fleet.enrolment import Certificates, new_token, token_digest
from services.fleet.health import FleetHealth
from services.fleet.output import HookOutput
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore

log = logging.getLogger(__name__)
Context: TypeAlias = aio.ServicerContext[Any, Any]


class FleetServicer(fleet_pb2_grpc.FleetServicer):
    def __init__(
        self,
        store: FleetStore,
        bus: CommandBus,
        health: FleetHealth,
        changes: InstanceChanges,
        sessions: SessionRegistry,
        certificates: Certificates,
        output: HookOutput,
    ) -> None:
        self._output = output
        self._changes = changes
        self._store = store
        self._bus = bus
        self._health = health
        self._sessions = sessions
        self._certificates = certificates

    async def RegisterOnPremisesInstance(
        self, request: fleet_pb2.RegisterOnPremisesInstanceRequest, context: Context
    ) -> fleet_pb2.RegisterOnPremisesInstanceResponse:
        name = check_instance_name("instanceName", request.instance_name)
        tags = check_tags("tags", [tag_from_proto(t) for t in request.tags])
        token = new_token(name, (), 1, 0, utcnow())
        await self._store.register(name, tags, token)
        self._sessions.registered(name)
        self._health.registered(name)
        self._changes.publish(name)
        return fleet_pb2.RegisterOnPremisesInstanceResponse(
            join_token=token.text, join_token_expires_time=timestamp(token.expires_at)
        )

    async def DeregisterOnPremisesInstance(
        self, request: fleet_pb2.DeregisterOnPremisesInstanceRequest, context: Context
    ) -> fleet_pb2.DeregisterOnPremisesInstanceResponse:
        name = check_instance_name("instanceName", request.instance_name)
        await self._store.deregister(name)
        self._sessions.end(name)  # its agent is refused when it comes back
        self._health.deregistered(name)
        self._changes.publish(name)
        return fleet_pb2.DeregisterOnPremisesInstanceResponse()

    async def CreateJoinToken(
        self, request: fleet_pb2.CreateJoinTokenRequest, context: Context
    ) -> fleet_pb2.CreateJoinTokenResponse:
        tags = check_tags("tags", [tag_from_proto(t) for t in request.tags])
        token = new_token(None, tags, request.max_uses, request.expires_in_seconds, utcnow())
        await self._store.add_join_token(token)
        return fleet_pb2.CreateJoinTokenResponse(
            join_token=token.text, expires_time=timestamp(token.expires_at)
        )

    async def Enroll(
        self, request: fleet_pb2.EnrollRequest, context: Context
    ) -> fleet_pb2.EnrollResponse:
        if request.instance_name:
            check_instance_name("instanceName", request.instance_name)
        self._certificates.check(request.certificate_request)
        name, certificate, authority = await self._store.enrol(
            token_digest(request.join_token),
            request.instance_name,
            utcnow(),
            lambda enrolled: self._certificates.issue(request.certificate_request, enrolled),
        )
        self._sessions.registered(name)
        self._health.registered(name)
        self._changes.publish(name)
        log.info("agent enrolled", extra={"fields": {"instance": name}})
        return fleet_pb2.EnrollResponse(
            instance_name=name,
            certificate=certificate,
            ca_certificate=authority,
            command_public_key=await self._certificates.command_key(),
        )

    async def RenewCertificate(
        self, request: fleet_pb2.RenewCertificateRequest, context: Context
    ) -> fleet_pb2.RenewCertificateResponse:
        name = calling_instance()
        if name is None:
            raise FailedPrecondition(
                "RenewCertificate is for an agent proving its calls with its certificate "
                "(a server with authentication on)"
            )
        if not await self._store.is_registered(name):
            raise PermissionDenied(f"instance {name!r} is not registered")
        _, certificate, authority = await self._certificates.issue(
            request.certificate_request, name
        )
        return fleet_pb2.RenewCertificateResponse(certificate=certificate, ca_certificate=authority)

    async def AddTagsToOnPremisesInstances(
        self, request: fleet_pb2.AddTagsToOnPremisesInstancesRequest, context: Context
    ) -> fleet_pb2.AddTagsToOnPremisesInstancesResponse:
        names, tags = _names_and_tags(request.instance_names, request.tags)
        await self._store.change_tags(names, add=tags)
        self._changes.publish(*names)
        return fleet_pb2.AddTagsToOnPremisesInstancesResponse()

    async def RemoveTagsFromOnPremisesInstances(
        self, request: fleet_pb2.RemoveTagsFromOnPremisesInstancesRequest, context: Context
    ) -> fleet_pb2.RemoveTagsFromOnPremisesInstancesResponse:
        names, tags = _names_and_tags(request.instance_names, request.tags)
        await self._store.change_tags(names, remove=tags)
        self._changes.publish(*names)
        return fleet_pb2.RemoveTagsFromOnPremisesInstancesResponse()

    async def WatchInstanceChanges(
        self, request: fleet_pb2.WatchInstanceChangesRequest, context: Context
    ) -> AsyncIterator[fleet_pb2.WatchInstanceChangesResponse]:
        async for name in self._changes.watch():
            yield fleet_pb2.WatchInstanceChangesResponse(
                instance_name=name or "", resync=name is None
            )

    async def GetOnPremisesInstance(
        self, request: fleet_pb2.GetOnPremisesInstanceRequest, context: Context
    ) -> fleet_pb2.GetOnPremisesInstanceResponse:
        name = check_instance_name("instanceName", request.instance_name)
        instance = await self._store.get(name)
        return fleet_pb2.GetOnPremisesInstanceResponse(
            instance_info=instance_to_proto(instance, self._health.of(instance))
        )

    async def ListOnPremisesInstances(
        self, request: fleet_pb2.ListOnPremisesInstancesRequest, context: Context
    ) -> fleet_pb2.ListOnPremisesInstancesResponse:
        filters = check_tag_filters(
            "tagFilters",
            [
                tag_filter_from_proto(f, f"tagFilters[{i}]")
                for i, f in enumerate(request.tag_filters)
            ],
        )
        want_registered = request.registration_status != fleet_pb2.REGISTRATION_STATUS_DEREGISTERED
        instances = sorted(
            (
                i
                for i in await self._store.all()
                if i.registered == want_registered and (not filters or matches_any(filters, i.tags))
            ),
            key=lambda i: i.name,
        )
        page, token = page_of(instances, request.next_token, request.max_items, MAX_PAGE)
        return fleet_pb2.ListOnPremisesInstancesResponse(
            instances=[instance_to_proto(i, self._health.of(i)) for i in page], next_token=token
        )

    async def DispatchCommand(
        self, request: fleet_pb2.DispatchCommandRequest, context: Context
    ) -> fleet_pb2.DispatchCommandResponse:
        await self._bus.dispatch(*_dispatch(request))
        return fleet_pb2.DispatchCommandResponse()

    async def DispatchCommands(
        self, request: fleet_pb2.DispatchCommandsRequest, context: Context
    ) -> fleet_pb2.DispatchCommandsResponse:
        if len(request.dispatches) > MAX_DISPATCHES:
            raise InvalidArgument(f"dispatches holds at most {MAX_DISPATCHES} dispatches")
        checked = [_dispatch(d, f"dispatches[{i}].") for i, d in enumerate(request.dispatches)]
        outcomes = await asyncio.gather(
            *(self._bus.dispatch(*dispatch) for dispatch in checked), return_exceptions=True
        )
        refusals = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, NotFound):
                refusals.append(fleet_pb2.DispatchRefusal(index=index, message=str(outcome)))
            elif isinstance(outcome, BaseException):
                raise outcome  # the fleet's trouble (its database): the caller tries again
        return fleet_pb2.DispatchCommandsResponse(refusals=refusals)

    async def WatchCommandOutput(
        self, request: fleet_pb2.WatchCommandOutputRequest, context: Context
    ) -> AsyncIterator[fleet_pb2.WatchCommandOutputResponse]:
        if not DEPLOYMENT_KEY.match(request.deployment_id):
            raise InvalidArgument(
                "deploymentId is required: 1-64 of letters, digits and ._- are allowed"
            )
        instance = (
            check_instance_name("instanceName", request.instance_name)
            if request.instance_name
            else None
        )
        async for batch in self._output.watch(
            request.deployment_id, instance, request.after_sequence, request.follow
        ):
            yield fleet_pb2.WatchCommandOutputResponse(lines=[output_to_proto(o) for o in batch])

    async def CancelCommands(
        self, request: fleet_pb2.CancelCommandsRequest, context: Context
    ) -> fleet_pb2.CancelCommandsResponse:
        if len(request.command_ids) > MAX_CANCELLED:
            raise InvalidArgument(f"commandIds: at most {MAX_CANCELLED} per call")
        for i, command_id in enumerate(request.command_ids):
            if not COMMAND_ID.match(command_id):
                raise InvalidArgument(
                    f"commandIds[{i}]: 1-255 of letters, digits and ._:+=,@- are allowed"
                )
        reason = check_text("reason", request.reason, MAX_REASON) or "the command was cancelled"
        await self._bus.cancel(list(request.command_ids), reason)
        return fleet_pb2.CancelCommandsResponse()

    async def WatchCommandUpdates(
        self, request: fleet_pb2.WatchCommandUpdatesRequest, context: Context
    ) -> AsyncIterator[fleet_pb2.WatchCommandUpdatesResponse]:
        if not 0 <= request.after_sequence <= MAX_SEQUENCE:
            raise InvalidArgument(f"afterSequence must be in 0-{MAX_SEQUENCE}")
        async for update in self._bus.watch(request.after_sequence, request.finished_only):
            yield update_to_proto(update)


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


def _names_and_tags(
    names: Iterable[str], tags: Iterable[common_pb2.Tag]
) -> tuple[list[str], list[Tag]]:
    checked = [check_instance_name(f"instanceNames[{i}]", n) for i, n in enumerate(names)]
    if not checked:
        raise InvalidArgument("instanceNames: name at least one instance")
    if len(checked) > MAX_TAGGED_INSTANCES:
        raise InvalidArgument(f"instanceNames: at most {MAX_TAGGED_INSTANCES} instances per call")
    tag_list = check_tags("tags", [tag_from_proto(t) for t in tags])
    if not tag_list:
        raise InvalidArgument("tags: give at least one tag")
    return checked, tag_list


def _dispatch(
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
