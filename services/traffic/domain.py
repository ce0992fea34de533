"""The traffic service's domain: a target group and the weight of each target in it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    instance_name: str
    address: str
    """host:port the load balancer sends requests to."""
    weight: int
    """0 = no traffic; HAProxy's scale is 0-256."""


@dataclass(frozen=True)
class TargetGroup:
    name: str
    provider: str
    """"haproxy" or "none" (records weights only)."""
    targets: tuple[Target, ...]
