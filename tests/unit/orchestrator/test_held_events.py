"""What agents hold: the events sent with the one that starts their chain, which run on the host
without the server in between and are recorded as their agent reports them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from deploy.lifecycle import ALLOW_TRAFFIC_EVENTS, BLOCK_TRAFFIC_EVENTS, IN_PLACE_EVENTS
from services.core.diagnostics import ErrorCode
from services.orchestrator.states import DeploymentStatus as D
from services.orchestrator.states import EventStatus as E
from services.orchestrator.states import TargetStatus as T
from tests.unit.orchestrator.snapshots import (
    EARLIER,
    decided,
    deployment,
    ref,
    target,
    target_moves,
)


def test_an_event_its_agent_held_after_the_one_before_started_as_that_one_ended() -> None:
    ended_there = EARLIER + timedelta(seconds=1)
    a = target("a", T.IN_PROGRESS, "SPPPPPP")
    first = dataclasses.replace(a.events[0], ended_at=ended_there)
    decision = decided(deployment(), dataclasses.replace(a, events=(first, *a.events[1:])))
    (change,) = decision.events
    assert (change.ref, change.status) == (ref("a", 1), E.IN_PROGRESS)
    # the agent ran on with DownloadBundle (one chain): it started when ApplicationStop ended
    assert change.started_at == ended_there


def test_an_event_after_a_traffic_event_starts_when_decided() -> None:
    names = BLOCK_TRAFFIC_EVENTS + IN_PLACE_EVENTS
    a = target("a", T.IN_PROGRESS, "SSPPPPPPPP", names=names)
    decision = decided(deployment(), a)
    (change,) = decision.events
    assert change.ref == ref("a", 2, names) and change.started_at is None  # now
    # sent now, with the events after it up to the end: it heads a chain of its own
    assert decision.held == tuple(ref("a", i, names) for i in range(3, 10))


def test_a_stop_leaves_what_an_agent_holds_for_it_to_report() -> None:
    """The agent may already run on past the running event: the events it holds are not
    skipped here but cancelled, and each is recorded as the agent reports it."""
    decision = decided(deployment(stop_requested=True), target("a", T.IN_PROGRESS, "SRPPPPP"))
    assert decision.running == (ref("a", 1),)
    assert decision.held == tuple(ref("a", i) for i in range(2, 7))
    assert decision.finish is None


def test_during_a_stop_the_held_event_after_one_that_passed_is_waited_for() -> None:
    decision = decided(deployment(stop_requested=True), target("a", T.IN_PROGRESS, "SSPPPPP"))
    (change,) = decision.events
    assert (change.ref, change.status) == (ref("a", 2), E.IN_PROGRESS)
    assert decision.finish is None


def test_after_a_failure_or_a_skip_nothing_more_is_held() -> None:
    for events in ("SFPPPPP", "SSKPPPP"):
        decision = decided(deployment(stop_requested=True), target("a", T.IN_PROGRESS, events))
        assert decision.held == () and decision.running == ()
        assert target_moves(decision) == [("a", T.FAILED)]


def test_a_target_whose_agent_the_fleet_lost_waits_for_what_it_held() -> None:
    """The fleet failed the running event (the agent went offline): the host may have run on
    before it went, so the events it held keep the target open until their own results."""
    a = target("a", T.IN_PROGRESS, "SSFPPPP", code=ErrorCode.AGENT_ISSUE)
    decision = decided(deployment(), a)
    assert target_moves(decision) == [] and decision.finish is None
    assert decision.held == tuple(ref("a", i) for i in range(3, 7))


@pytest.mark.parametrize("code", [ErrorCode.AGENT_ISSUE, ErrorCode.TIMEOUT])
def test_a_host_that_ran_on_past_an_event_the_fleet_failed_still_fails_its_target(
    code: ErrorCode,
) -> None:
    """The fleet failed DownloadBundle (it lost the agent), and the agent's re-sent reports
    show it ran on to the end: the events record what ran, and the target fails."""
    a = target("a", T.IN_PROGRESS, "SFSSSSS", code=code)
    decision = decided(deployment(minimum_healthy=0), a)
    assert target_moves(decision) == [("a", T.FAILED)]
    assert decision.finish is not None and decision.finish.status is D.FAILED


def test_no_traffic_is_allowed_to_a_host_that_ran_on_past_an_event_the_fleet_failed() -> None:
    names = BLOCK_TRAFFIC_EVENTS + IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS
    a = target(
        "a", T.IN_PROGRESS, "SSSSF" + "S" * 6 + "PP", names=names, code=ErrorCode.AGENT_ISSUE
    )
    decision = decided(deployment(minimum_healthy=0), a)
    assert decision.started == ()
    assert target_moves(decision) == [("a", T.FAILED)]
