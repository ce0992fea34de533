"""What the traffic service needs from a load balancer, and the choice of one per target group.

Each backend speaks to one load balancer in its own terms (HAProxy's runtime API, ELBv2's API);
the router above it decides what to ask for and records the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from services.core.errors import FailedPrecondition, InvalidArgument
from services.traffic.domain import LoadBalancerConfig, Provider, TargetGroup


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


class LoadBalancers:
    """The load balancers of the server's configuration, by name: the only places the traffic
    service talks to (a request names one, it never says where one is)."""

    def __init__(self, configured: Mapping[str, LoadBalancerConfig]) -> None:
        self._configured = dict(configured)

    def get(self, field_name: str, name: str) -> LoadBalancerConfig:
        """The configured load balancer `name`; InvalidArgument naming the field otherwise."""
        found = self._configured.get(name)
        if found is None:
            known = ", ".join(sorted(self._configured)) or "none are configured"
            raise InvalidArgument(
                f"{field_name} {name[:100]!r} is not a load balancer of this server ({known})"
            )
        return found

    def haproxy_sockets(self) -> list[str]:
        """The admin sockets of the configured HAProxies."""
        return sorted(
            {c.haproxy_socket for c in self._configured.values() if c.provider is Provider.HAPROXY}
        )

    def for_group(self, group: TargetGroup) -> LoadBalancer:
        if group.provider is Provider.NONE:
            return NoLoadBalancer()
        found = self._configured.get(group.load_balancer)
        if found is None or found.provider is not group.provider:
            raise FailedPrecondition(
                f"target group {group.name!r} uses load balancer {group.load_balancer!r}, "
                "which the server's configuration no longer has"
            )
        if found.provider is Provider.HAPROXY:
            from services.traffic.haproxy import HAProxyBackend

            return HAProxyBackend(found.haproxy_socket, group.haproxy_backend)
        from services.traffic.elbv2 import ELBv2TargetGroupBackend

        return ELBv2TargetGroupBackend(found.elbv2_arn, found.elbv2_region, found.elbv2_endpoint)


def configured_load_balancers(raw: Mapping[str, Mapping[str, Mapping[str, str]]]) -> LoadBalancers:
    """From ServerConfig.load_balancers (already checked there)."""
    configured = {}
    for name, spec in raw.items():
        kind, settings = next(iter(spec.items()))
        if kind == "haproxy":
            configured[name] = LoadBalancerConfig(
                name, Provider.HAPROXY, haproxy_socket=settings["admin_socket"]
            )
        else:
            configured[name] = LoadBalancerConfig(
                name,
                Provider.ELBV2,
                elbv2_arn=settings["target_group_arn"],
                elbv2_region=settings.get("region", ""),
                elbv2_endpoint=settings.get("endpoint_url", ""),
            )
    return LoadBalancers(configured)
