"""Protobuf ↔ traffic domain, at the service edge only: requests read and checked here, every
refusal naming its field."""

from __future__ import annotations

from deploy.v1 import traffic_pb2
from services.core.errors import InvalidArgument
from services.core.names import check_instance_name, check_name
from services.traffic.balancers import LoadBalancers
from services.traffic.domain import (
    DEFAULT_DEREGISTRATION_DELAY_SECONDS,
    Provider,
    TargetGroup,
    TargetState,
    check_host,
    check_weight,
    split_address,
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


def group_from_proto(
    request: traffic_pb2.CreateTargetGroupRequest, balancers: LoadBalancers
) -> TargetGroup:
    """The target group a request asks for; the load balancer's whereabouts are never taken
    from the request, only its name among the configured ones."""
    name = check_name("name", request.name)
    if request.haproxy.admin_socket:
        raise InvalidArgument(_FROM_CONFIGURATION.format("haproxy.adminSocket"))
    if request.HasField("elbv2") and request.elbv2.ByteSize():
        raise InvalidArgument(_FROM_CONFIGURATION.format("elbv2"))
    provider = PROVIDERS.get(request.provider)
    if request.load_balancer:
        balancer = balancers.get("loadBalancer", request.load_balancer)
        if provider not in (None, balancer.provider):
            raise InvalidArgument(
                f"provider {provider} does not match load balancer {balancer.name!r} "
                f"({balancer.provider})"
            )
        provider = balancer.provider
    if provider is None:
        raise InvalidArgument("provider is required (NONE, HAPROXY or ELBV2), or a loadBalancer")
    return TargetGroup(
        name=name,
        provider=provider,
        port=request.port,
        deregistration_delay_seconds=(
            request.deregistration_delay_seconds
            if request.HasField("deregistration_delay_seconds")
            else DEFAULT_DEREGISTRATION_DELAY_SECONDS
        ),
        load_balancer=request.load_balancer if provider is not Provider.NONE else "",
        haproxy_backend=(request.haproxy.backend or name) if provider is Provider.HAPROXY else "",
    ).check()


_FROM_CONFIGURATION = (
    "{} is not accepted in a request: load balancers come from the server's configuration "
    "(load_balancers); name one with loadBalancer"
)


def group_to_proto(group: TargetGroup) -> traffic_pb2.TargetGroupInfo:
    provider = next(k for k, v in PROVIDERS.items() if v is group.provider)
    return traffic_pb2.TargetGroupInfo(
        name=group.name,
        provider=provider,
        port=group.port,
        deregistration_delay_seconds=group.deregistration_delay_seconds,
        haproxy=traffic_pb2.HAProxyTargetGroup(backend=group.haproxy_backend),
        load_balancer=group.load_balancer,
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


def allowed_from_proto(request: traffic_pb2.AllowTrafficRequest) -> tuple[int, str]:
    """AllowTraffic's weight (1-256) and the host to reach the instance at ("": its own)."""
    if request.weight == 0:
        raise InvalidArgument("weight: must be 1-256 (BlockTraffic takes an instance out)")
    weight = check_weight("weight", request.weight)
    return weight, check_host("host", request.host) if request.host else ""


def weights_from_proto(request: traffic_pb2.SetWeightsRequest) -> dict[str, int]:
    if not request.weights:
        raise InvalidArgument("weights: at least one instance is required")
    return {
        check_instance_name("weights", name): check_weight(f"weights[{name}]", weight)
        for name, weight in request.weights.items()
    }


def address_from_proto(address: str) -> str:
    """An address set by hand (host:port), or "" to forget it."""
    if address:
        split_address("address", address)
    return address
