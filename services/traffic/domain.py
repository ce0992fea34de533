"""The traffic service's domain: target groups, their targets, and how addresses are formed."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from services.core.errors import InvalidArgument

MAX_WEIGHT = 256
"""HAProxy's weight scale (0-256); 0 sends no new requests."""
DEFAULT_DEREGISTRATION_DELAY_SECONDS = 300
"""ELBv2's default: how long BlockTraffic waits for open connections at most."""
MAX_DEREGISTRATION_DELAY_SECONDS = 3600


class Provider(StrEnum):
    NONE = "none"
    HAPROXY = "haproxy"
    ELBV2 = "elbv2"


class TargetState(StrEnum):
    UNUSED = "Unused"
    """Known (an address was set for it) but not in the load balancer."""
    SERVING = "Serving"
    DRAINING = "Draining"


@dataclass(frozen=True)
class Target:
    instance_name: str
    address: str
    """host:port the load balancer sends requests to."""
    weight: int
    state: TargetState
    address_set: bool = False
    """The address was set for this instance (SetTargetAddress), not derived from its host."""


@dataclass(frozen=True)
class LoadBalancerConfig:
    """A load balancer of the server's configuration (`load_balancers`): where it is."""

    name: str
    provider: Provider
    haproxy_socket: str = ""
    elbv2_arn: str = ""
    elbv2_region: str = ""
    elbv2_endpoint: str = ""


@dataclass(frozen=True)
class TargetGroup:
    name: str
    provider: Provider
    port: int
    deregistration_delay_seconds: int = DEFAULT_DEREGISTRATION_DELAY_SECONDS
    load_balancer: str = ""
    """The configured load balancer it uses (empty with provider none)."""
    haproxy_backend: str = ""
    targets: tuple[Target, ...] = field(default=())

    def target(self, instance: str) -> Target | None:
        return next((t for t in self.targets if t.instance_name == instance), None)

    def address_for(self, instance: str, host: str) -> str:
        """The instance's set address, else its registered host and the group's port."""
        known = self.target(instance)
        if known is not None and known.address_set:
            return known.address
        if not host:
            raise InvalidArgument(
                f"host: instance {instance!r} has no registered address and none is set in "
                f"target group {self.name!r}"
            )
        return join_address(host, self.port)

    def check(self) -> TargetGroup:
        """Raise InvalidArgument naming the field that makes this group unusable."""
        if not 0 < self.port < 65536:
            raise InvalidArgument(f"port: {self.port} is not a TCP port (1-65535)")
        if not 0 <= self.deregistration_delay_seconds <= MAX_DEREGISTRATION_DELAY_SECONDS:
            raise InvalidArgument(
                f"deregistrationDelaySeconds: {self.deregistration_delay_seconds} is not in "
                f"0-{MAX_DEREGISTRATION_DELAY_SECONDS}"
            )
        if self.provider is not Provider.NONE and not self.load_balancer:
            raise InvalidArgument(
                f"loadBalancer is required with provider {self.provider} (one of the server's "
                "configured load_balancers)"
            )
        if self.provider is Provider.HAPROXY and not _HAPROXY_NAME.match(self.haproxy_backend):
            raise InvalidArgument(
                f"haproxy.backend {self.haproxy_backend[:100]!r} is not a valid name "
                "(1-100 of letters, digits and _.:-)"
            )
        return self


_HAPROXY_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}\Z")
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


def check_host(field_name: str, host: str) -> str:
    """An IP address or a strict DNS hostname (RFC 1123 labels): nothing that could carry a
    second command into a load balancer's runtime API."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if not host or len(host) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise InvalidArgument(f"{field_name}: {host[:100]!r} is not an IP address or hostname")
    return host


def check_weight(field_name: str, weight: int) -> int:
    if not 0 <= weight <= MAX_WEIGHT:
        raise InvalidArgument(f"{field_name}: {weight} is not in 0-{MAX_WEIGHT}")
    return weight


def join_address(host: str, port: int) -> str:
    host = check_host("host", host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_address(field_name: str, address: str) -> tuple[str, int]:
    """host and port of "host:port" (IPv6 hosts in brackets); InvalidArgument naming the field
    unless the host is an IP address or hostname and the port 1-65535."""
    host, sep, port = address.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or len(port) > 5 or not 0 < int(port) < 65536:
        raise InvalidArgument(f"{field_name}: {address[:100]!r} is not host:port")
    if ":" in host and not bracketed:
        raise InvalidArgument(f"{field_name}: {address[:100]!r}: put an IPv6 host in brackets")
    return check_host(field_name, host), int(port)


def server_name(instance: str) -> str:
    """The instance's server name in an HAProxy backend (its name restricts the characters)."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", instance)
