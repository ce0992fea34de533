"""Fleet's gRPC edge: instances and command dispatch — validate, load, delegate, convert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import fleet_pb2, fleet_pb2_grpc
from services.core.convert import tag_filter_from_proto, tag_from_proto
from services.core.errors import InvalidArgument
from services.core.metrics import INSTANCES
from services.core.names import check_instance_name
from services.core.tags import check_tag_filters, check_tags, matches_any
from services.fleet.commands import CommandBus
from services.fleet.convert import instance_to_proto, update_to_proto
from services.fleet.domain import Health, Instance
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore

Context: TypeAlias = aio.ServicerContext[Any, Any]
MISSED_HEARTBEATS_OFFLINE = 3


class FleetServicer(fleet_pb2_grpc.FleetServicer):
    def __init__(
        self,
        store: FleetStore,
        sessions: SessionRegistry,
        bus: CommandBus,
        heartbeat_interval_seconds: int,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._bus = bus
        self._window = heartbeat_interval_seconds * MISSED_HEARTBEATS_OFFLINE

    def _health(self, instance: Instance) -> Health:
        online = self._sessions.is_online(instance.name, self._window)
        return Health.ONLINE if online else Health.OFFLINE

    async def RegisterOnPremisesInstance(
        self, request: fleet_pb2.RegisterOnPremisesInstanceRequest, context: Context
    ) -> fleet_pb2.RegisterOnPremisesInstanceResponse:
        name = check_instance_name("instanceName", request.instance_name)
        tags = check_tags("tags", [tag_from_proto(t) for t in request.tags])
        await self._store.register(name, tags)
        await self.refresh_instance_metrics()
        return fleet_pb2.RegisterOnPremisesInstanceResponse()

    async def GetOnPremisesInstance(
        self, request: fleet_pb2.GetOnPremisesInstanceRequest, context: Context
    ) -> fleet_pb2.GetOnPremisesInstanceResponse:
        name = check_instance_name("instanceName", request.instance_name)
        instance = await self._store.get(name)
        return fleet_pb2.GetOnPremisesInstanceResponse(
            instance_info=instance_to_proto(instance, self._health(instance))
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
        instances = [
            i
            for i in await self._store.all()
            if i.registered == want_registered and (not filters or matches_any(filters, i.tags))
        ]
        return fleet_pb2.ListOnPremisesInstancesResponse(
            instances=[instance_to_proto(i, self._health(i)) for i in instances]
        )

    async def DispatchCommand(
        self, request: fleet_pb2.DispatchCommandRequest, context: Context
    ) -> fleet_pb2.DispatchCommandResponse:
        name = check_instance_name("instanceName", request.instance_name)
        if not request.command.command_id:
            raise InvalidArgument("command.commandId is required")
        if not request.command.lifecycle_event:
            raise InvalidArgument("command.lifecycleEvent is required")
        await self._bus.dispatch(
            name, request.command.command_id, request.command.SerializeToString()
        )
        return fleet_pb2.DispatchCommandResponse()

    async def WatchCommandUpdates(
        self, request: fleet_pb2.WatchCommandUpdatesRequest, context: Context
    ) -> AsyncIterator[fleet_pb2.WatchCommandUpdatesResponse]:
        async for update in self._bus.watch(request.after_sequence):
            yield update_to_proto(update)

    async def refresh_instance_metrics(self) -> None:
        """Set opendeploy_instances{health} from the registered instances."""
        registered = [i for i in await self._store.all() if i.registered]
        online = sum(1 for i in registered if self._health(i) is Health.ONLINE)
        INSTANCES.labels(Health.ONLINE).set(online)
        INSTANCES.labels(Health.OFFLINE).set(len(registered) - online)
