"""Which lifecycle events an instance runs, in order, as data (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Sequence

from deploy.lifecycle import IN_PLACE_EVENTS as IN_PLACE_EVENTS
from deploy.lifecycle import STOP_FAILURE_IGNORABLE as STOP_FAILURE_IGNORABLE

BLOCK_TRAFFIC_EVENTS: tuple[str, ...] = ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic")
ALLOW_TRAFFIC_EVENTS: tuple[str, ...] = ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
REROUTE_GATE = ALLOW_TRAFFIC_EVENTS[0]
"""A blue/green replacement instance waits (Ready) before this event until traffic is rerouted."""
TRAFFIC_EVENTS: frozenset[str] = frozenset({"BlockTraffic", "AllowTraffic"})
"""Run by the orchestrator through the traffic service, never sent to an agent."""


def in_place_events(with_load_balancer: bool) -> tuple[str, ...]:
    """An in-place deployment's events: with a load balancer the instance leaves it first and
    rejoins it last."""
    if not with_load_balancer:
        return IN_PLACE_EVENTS
    return BLOCK_TRAFFIC_EVENTS + IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS


def chained(events: Sequence[str], position: int, green: bool) -> bool:
    """Whether an agent runs the event at `position` right after the one before it, with
    nothing of the server's in between: neither is a traffic event (run by the server), and on
    a replacement instance it is not the reroute gate (where it waits to be rerouted). Such
    events are sent together (a chain), each run on the host only if the one before passed."""
    if position == 0:
        return False
    before, name = events[position - 1], events[position]
    if before in TRAFFIC_EVENTS or name in TRAFFIC_EVENTS:
        return False
    return not (green and name == REROUTE_GATE)


def chain(events: Sequence[str], position: int, green: bool) -> tuple[int, ...]:
    """The positions of the events an agent runs after the one at `position` in one chain."""
    if events[position] in TRAFFIC_EVENTS:
        return ()
    following: list[int] = []
    for later in range(position + 1, len(events)):
        if not chained(events, later, green):
            break
        following.append(later)
    return tuple(following)
