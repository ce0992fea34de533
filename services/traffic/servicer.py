"""TrafficRouter's gRPC edge: read the request (names here, anything more in convert.py), call
the router or the store, convert the answer."""

from __future__ import annotations

from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import traffic_pb2, traffic_pb2_grpc
from services.core.names import check_instance_name, check_name
from services.traffic.balancers import LoadBalancers
from services.traffic.convert import (
    address_from_proto,
    allowed_from_proto,
    group_from_proto,
    group_to_proto,
    weights_from_proto,
)
from services.traffic.router import TrafficRouter
from services.traffic.store import TrafficStore

Context: TypeAlias = aio.ServicerContext[Any, Any]


class TrafficServicer(traffic_pb2_grpc.TrafficRouterServicer):
    def __init__(
        self, store: TrafficStore, router: TrafficRouter, balancers: LoadBalancers
    ) -> None:
        self._store = store
        self._router = router
        self._balancers = balancers

    async def CreateTargetGroup(
        self, request: traffic_pb2.CreateTargetGroupRequest, context: Context
    ) -> traffic_pb2.CreateTargetGroupResponse:
        await self._store.create(group_from_proto(request, self._balancers))
        return traffic_pb2.CreateTargetGroupResponse()

    async def DeleteTargetGroup(
        self, request: traffic_pb2.DeleteTargetGroupRequest, context: Context
    ) -> traffic_pb2.DeleteTargetGroupResponse:
        await self._store.delete(check_name("name", request.name))
        return traffic_pb2.DeleteTargetGroupResponse()

    async def ListTargetGroups(
        self, request: traffic_pb2.ListTargetGroupsRequest, context: Context
    ) -> traffic_pb2.ListTargetGroupsResponse:
        return traffic_pb2.ListTargetGroupsResponse(target_groups=await self._store.names())

    async def GetTargetGroup(
        self, request: traffic_pb2.GetTargetGroupRequest, context: Context
    ) -> traffic_pb2.GetTargetGroupResponse:
        group = await self._store.get(check_name("name", request.name))
        return traffic_pb2.GetTargetGroupResponse(target_group=group_to_proto(group))

    async def SetTargetAddress(
        self, request: traffic_pb2.SetTargetAddressRequest, context: Context
    ) -> traffic_pb2.SetTargetAddressResponse:
        group = check_name("targetGroupName", request.target_group_name)
        instance = check_instance_name("instanceName", request.instance_name)
        await self._store.set_address(group, instance, address_from_proto(request.address))
        return traffic_pb2.SetTargetAddressResponse()

    async def AllowTraffic(
        self, request: traffic_pb2.AllowTrafficRequest, context: Context
    ) -> traffic_pb2.AllowTrafficResponse:
        group = check_name("targetGroupName", request.target_group_name)
        instance = check_instance_name("instanceName", request.instance_name)
        weight, host = allowed_from_proto(request)
        address = await self._router.allow(group, instance, host, weight)
        return traffic_pb2.AllowTrafficResponse(address=address)

    async def BlockTraffic(
        self, request: traffic_pb2.BlockTrafficRequest, context: Context
    ) -> traffic_pb2.BlockTrafficResponse:
        drained = await self._router.block(
            check_name("targetGroupName", request.target_group_name),
            check_instance_name("instanceName", request.instance_name),
        )
        return traffic_pb2.BlockTrafficResponse(
            open_connections=drained.open_connections, drain_seconds=drained.seconds
        )

    async def SetWeights(
        self, request: traffic_pb2.SetWeightsRequest, context: Context
    ) -> traffic_pb2.SetWeightsResponse:
        group = check_name("targetGroupName", request.target_group_name)
        skipped = await self._router.set_weights(group, weights_from_proto(request))
        return traffic_pb2.SetWeightsResponse(not_serving=skipped)
