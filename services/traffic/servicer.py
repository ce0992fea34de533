"""TrafficRouter's gRPC edge: validate, load, convert."""

from __future__ import annotations

from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import traffic_pb2, traffic_pb2_grpc
from services.core.names import check_name
from services.traffic.store import TrafficStore

Context: TypeAlias = aio.ServicerContext[Any, Any]


class TrafficServicer(traffic_pb2_grpc.TrafficRouterServicer):
    def __init__(self, store: TrafficStore) -> None:
        self._store = store

    async def ListTargetGroups(
        self, request: traffic_pb2.ListTargetGroupsRequest, context: Context
    ) -> traffic_pb2.ListTargetGroupsResponse:
        return traffic_pb2.ListTargetGroupsResponse(target_groups=await self._store.names())

    async def GetTargetGroup(
        self, request: traffic_pb2.GetTargetGroupRequest, context: Context
    ) -> traffic_pb2.GetTargetGroupResponse:
        group = await self._store.get(check_name("name", request.name))
        return traffic_pb2.GetTargetGroupResponse(
            target_group=traffic_pb2.TargetGroupInfo(
                name=group.name,
                provider=group.provider,
                targets=[
                    traffic_pb2.Target(
                        instance_name=t.instance_name, address=t.address, weight=t.weight
                    )
                    for t in group.targets
                ],
            )
        )
