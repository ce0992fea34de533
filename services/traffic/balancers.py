"""What the traffic service needs from a load balancer, and the choice of one per target group.

Each backend speaks to one load balancer in its own terms (HAProxy's runtime API, ELBv2's API);
the router above it decides what to ask for and records the result.
"""

from __future__ import annotations

from typing import Protocol

from services.traffic.domain import Provider, TargetGroup


class LoadBalancer(Protocol):
    async def serve(self, instance: str, address: str, weight: int) -> None:
        """Put the instance in with `weight` and return once it receives traffic."""

    async def set_weight(self, instance: str, address: str, weight: int) -> None:
        """Change the weight of an instance that is in."""

    async def drain(self, instance: str, address: str) -> None:
        """Send the instance no new requests; open connections go on."""

    async def open_connections(self, instance: str, address: str) -> int:
        """Connections still open to the instance (a drain waits for 0)."""

    async def remove(self, instance: str, address: str) -> None:
        """Take the instance out of the load balancer."""


class NoLoadBalancer:
    """Provider "none": nothing to tell; the router records weights only."""

    async def serve(self, instance: str, address: str, weight: int) -> None:
        return None

    async def set_weight(self, instance: str, address: str, weight: int) -> None:
        return None

    async def drain(self, instance: str, address: str) -> None:
        return None

    async def open_connections(self, instance: str, address: str) -> int:
        return 0

    async def remove(self, instance: str, address: str) -> None:
        return None


def balancer_for(group: TargetGroup) -> LoadBalancer:
    if group.provider is Provider.HAPROXY:
        from services.traffic.haproxy import HAProxyBackend

        return HAProxyBackend(group.haproxy_socket, group.haproxy_backend)
    if group.provider is Provider.ELBV2:
        from services.traffic.elbv2 import ELBv2TargetGroupBackend

        return ELBv2TargetGroupBackend(group.elbv2_arn, group.elbv2_region, group.elbv2_endpoint)
    return NoLoadBalancer()
