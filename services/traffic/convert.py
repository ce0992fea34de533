"""Protobuf ↔ traffic domain, at the service edge only."""

from __future__ import annotations

from deploy.v1 import traffic_pb2
from services.core.errors import InvalidArgument
from services.core.names import check_name
from services.traffic.domain import (
    DEFAULT_DEREGISTRATION_DELAY_SECONDS,
    Provider,
    TargetGroup,
    TargetState,
)

PROVIDERS = {
    traffic_pb2.LOAD_BALANCER_PROVIDER_NONE: Provider.NONE,
    traffic_pb2.LOAD_BALANCER_PROVIDER_HAPROXY: Provider.HAPROXY,
    traffic_pb2.LOAD_BALANCER_PROVIDER_ELBV2: Provider.ELBV2,
}
STATES = {
    TargetState.UNUSED: traffic_pb2.TARGET_STATE_UNUSED,
    TargetState.SERVING: traffic_pb2.TARGET_STATE_SERVING,
    TargetState.DRAINING: traffic_pb2.TARGET_STATE_DRAINING,
}


def group_from_proto(request: traffic_pb2.CreateTargetGroupRequest) -> TargetGroup:
    name = check_name("name", request.name)
    provider = PROVIDERS.get(request.provider)
    if provider is None:
        raise InvalidArgument("provider is required: NONE, HAPROXY or ELBV2")
    return TargetGroup(
        name=name,
        provider=provider,
        port=request.port,
        deregistration_delay_seconds=(
            request.deregistration_delay_seconds
            if request.HasField("deregistration_delay_seconds")
            else DEFAULT_DEREGISTRATION_DELAY_SECONDS
        ),
        haproxy_socket=request.haproxy.admin_socket,
        haproxy_backend=request.haproxy.backend or name,
        elbv2_arn=request.elbv2.target_group_arn,
        elbv2_region=request.elbv2.region,
        elbv2_endpoint=request.elbv2.endpoint_url,
    ).check()


def group_to_proto(group: TargetGroup) -> traffic_pb2.TargetGroupInfo:
    provider = next(k for k, v in PROVIDERS.items() if v is group.provider)
    return traffic_pb2.TargetGroupInfo(
        name=group.name,
        provider=provider,
        port=group.port,
        deregistration_delay_seconds=group.deregistration_delay_seconds,
        haproxy=traffic_pb2.HAProxyTargetGroup(
            admin_socket=group.haproxy_socket, backend=group.haproxy_backend
        ),
        elbv2=traffic_pb2.ELBv2TargetGroup(
            target_group_arn=group.elbv2_arn,
            region=group.elbv2_region,
            endpoint_url=group.elbv2_endpoint,
        ),
        targets=[
            traffic_pb2.Target(
                instance_name=t.instance_name,
                address=t.address,
                weight=t.weight,
                state=STATES[t.state],
                address_set=t.address_set,
            )
            for t in group.targets
        ],
    )
