"""Fleet's gRPC edge: instances and command dispatch — read the request (names here, anything
more in requests.py), delegate, convert the answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import fleet_pb2, fleet_pb2_grpc
from services.core.access import calling_instance
from services.core.clock import utcnow
from services.core.convert import timestamp
from services.core.errors import FailedPrecondition, NotFound, PermissionDenied
from services.core.names import check_instance_name
from services.core.paging import MAX_PAGE, page_of
from services.core.tags import matches_any
from services.fleet.changes import InstanceChanges
from services.fleet.commands import CommandBus
from services.fleet.convert import instance_to_proto, output_to_proto, update_to_proto
from services.fleet.enrolment import Certificates, new_token, token_digest
from services.fleet.health import FleetHealth
from services.fleet.output import HookOutput
from services.fleet.requests import (
    cancel_from_proto,
    dispatch_from_proto,
    dispatches_from_proto,
    names_and_tags_from_proto,
    output_watch_from_proto,
    sequence_from_proto,
    tag_filters_from_proto,
    tags_from_proto,
)
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
        tags = tags_from_proto(request.tags)
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
        tags = tags_from_proto(request.tags)
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
        names, tags = names_and_tags_from_proto(request.instance_names, request.tags)
        await self._store.change_tags(names, add=tags)
        self._changes.publish(*names)
        return fleet_pb2.AddTagsToOnPremisesInstancesResponse()

    async def RemoveTagsFromOnPremisesInstances(
        self, request: fleet_pb2.RemoveTagsFromOnPremisesInstancesRequest, context: Context
    ) -> fleet_pb2.RemoveTagsFromOnPremisesInstancesResponse:
        names, tags = names_and_tags_from_proto(request.instance_names, request.tags)
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
        filters = tag_filters_from_proto(request.tag_filters)
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
        await self._bus.dispatch(*dispatch_from_proto(request))
        return fleet_pb2.DispatchCommandResponse()

    async def DispatchCommands(
        self, request: fleet_pb2.DispatchCommandsRequest, context: Context
    ) -> fleet_pb2.DispatchCommandsResponse:
        checked = dispatches_from_proto(request)
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
        deployment_id, instance = output_watch_from_proto(request)
        async for batch in self._output.watch(
            deployment_id, instance, request.after_sequence, request.follow
        ):
            yield fleet_pb2.WatchCommandOutputResponse(lines=[output_to_proto(o) for o in batch])

    async def CancelCommands(
        self, request: fleet_pb2.CancelCommandsRequest, context: Context
    ) -> fleet_pb2.CancelCommandsResponse:
        await self._bus.cancel(*cancel_from_proto(request))
        return fleet_pb2.CancelCommandsResponse()

    async def WatchCommandUpdates(
        self, request: fleet_pb2.WatchCommandUpdatesRequest, context: Context
    ) -> AsyncIterator[fleet_pb2.WatchCommandUpdatesResponse]:
        after = sequence_from_proto(request.after_sequence)
        async for update in self._bus.watch(after, request.finished_only):
            yield update_to_proto(update)
