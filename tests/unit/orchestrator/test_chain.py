"""Which events an agent is sent together (one chain): those it can run one after another
with nothing of the server's in between."""

from __future__ import annotations

from deploy.lifecycle import (
    ALLOW_TRAFFIC_EVENTS,
    BLOCK_TRAFFIC_EVENTS,
    IN_PLACE_EVENTS,
    in_place_events,
)
from services.orchestrator.lifecycle import chain


def test_without_a_load_balancer_the_first_event_carries_all_the_others() -> None:
    assert chain(IN_PLACE_EVENTS, 0, green=False) == (1, 2, 3, 4, 5, 6)
    assert chain(IN_PLACE_EVENTS, 6, green=False) == ()


def test_a_chain_ends_before_each_traffic_event_the_server_runs() -> None:
    events = in_place_events(with_load_balancer=True)
    assert chain(events, 0, green=False) == ()  # BeforeBlockTraffic, then BlockTraffic
    assert chain(events, 1, green=False) == ()  # BlockTraffic is the server's own
    after_block = events.index("AfterBlockTraffic")
    # AfterBlockTraffic … BeforeAllowTraffic, then AllowTraffic
    assert [events[i] for i in chain(events, after_block, green=False)] == [
        *IN_PLACE_EVENTS,
        "BeforeAllowTraffic",
    ]
    assert chain(events, len(events) - 1, green=False) == ()


def test_a_replacement_stops_at_the_reroute_gate_and_resumes_from_it() -> None:
    events = IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS
    assert chain(events, 0, green=True) == (1, 2, 3, 4, 5, 6)  # not BeforeAllowTraffic
    assert chain(events, events.index("BeforeAllowTraffic"), green=True) == ()
    # in place the same events run straight through to AllowTraffic
    assert chain(events, 0, green=False) == (1, 2, 3, 4, 5, 6, 7)


def test_an_original_runs_its_block_traffic_hooks_one_at_a_time() -> None:
    assert chain(BLOCK_TRAFFIC_EVENTS, 0, green=False) == ()
    assert chain(BLOCK_TRAFFIC_EVENTS, 2, green=False) == ()
