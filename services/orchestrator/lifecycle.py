"""Which of an instance's lifecycle events its agent runs back to back (a chain), as data."""

from __future__ import annotations

from collections.abc import Sequence

from deploy.lifecycle import TRAITS, LifecycleEvent, RunBy

REROUTE_GATE = LifecycleEvent.BEFORE_ALLOW_TRAFFIC
"""A blue/green replacement instance waits (Ready) before this event until traffic is rerouted."""


def run_by_server(event: LifecycleEvent) -> bool:
    """BlockTraffic and AllowTraffic: the orchestrator runs them through the traffic service,
    never an agent."""
    return TRAITS[event].run_by is RunBy.SERVER


def chained(events: Sequence[LifecycleEvent], position: int, green: bool) -> bool:
    """Whether an agent runs the event at `position` right after the one before it, with
    nothing of the server's in between: neither is run by the server, and on a replacement
    instance it is not the reroute gate (where it waits to be rerouted). Such events are sent
    together (a chain), each run on the host only if the one before passed."""
    if position == 0:
        return False
    before, name = events[position - 1], events[position]
    if run_by_server(before) or run_by_server(name):
        return False
    return not (green and name == REROUTE_GATE)


def chain(events: Sequence[LifecycleEvent], position: int, green: bool) -> tuple[int, ...]:
    """The positions of the events an agent runs after the one at `position` in one chain."""
    if run_by_server(events[position]):
        return ()
    following: list[int] = []
    for later in range(position + 1, len(events)):
        if not chained(events, later, green):
            break
        following.append(later)
    return tuple(following)
