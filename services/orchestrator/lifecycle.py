"""Which lifecycle events an instance runs, in order, as data (DESIGN §4)."""

from __future__ import annotations

from deploy.lifecycle import IN_PLACE_EVENTS as IN_PLACE_EVENTS

BLOCK_TRAFFIC_EVENTS: tuple[str, ...] = ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic")
ALLOW_TRAFFIC_EVENTS: tuple[str, ...] = ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
REROUTE_GATE = ALLOW_TRAFFIC_EVENTS[0]
"""A blue/green replacement instance waits (Ready) before this event until traffic is rerouted."""
TRAFFIC_EVENTS: frozenset[str] = frozenset({"BlockTraffic", "AllowTraffic"})
"""Run by the orchestrator through the traffic service, never sent to an agent."""

STOP_FAILURE_IGNORABLE: frozenset[str] = frozenset(
    {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}
)
"""Events whose failure --ignore-application-stop-failures lets the instance continue past."""


def in_place_events(with_load_balancer: bool) -> tuple[str, ...]:
    """An in-place deployment's events: with a load balancer the instance leaves it first and
    rejoins it last."""
    if not with_load_balancer:
        return IN_PLACE_EVENTS
    return BLOCK_TRAFFIC_EVENTS + IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS
