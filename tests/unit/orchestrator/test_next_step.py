"""decide(snapshot, now), pure: events, deadlines, stops and rollbacks for both styles."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from deploy.lifecycle import ALLOW_TRAFFIC_EVENTS, BLOCK_TRAFFIC_EVENTS, IN_PLACE_EVENTS
from services.core.diagnostics import ErrorCode
from services.orchestrator.bluegreen import (
    BlueGreenConfig,
    BlueInstanceAction,
    GreenFleetAction,
    ReadyAction,
    TrafficRouting,
    TrafficRoutingType,
)
from services.orchestrator.decision import EVENT_BACKSTOP, Decision
from services.orchestrator.domain import (
    BlueGreenProgress,
    Creator,
    DeploymentErrorCode,
    ErrorInformation,
    EventRef,
    PlannedTarget,
    Target,
    TargetLabel,
)
from services.orchestrator.states import DeploymentStatus as D
from services.orchestrator.states import EventStatus as E
from services.orchestrator.states import TargetStatus as T
from tests.unit.orchestrator.snapshots import (
    GREEN_EVENTS,
    NOW,
    ON_FAILURE,
    blue_green,
    decided,
    deployment,
    ref,
    target,
    target_moves,
)

# In place: events move targets, targets move the rollout.


def test_a_created_deployment_begins_and_starts_the_first_batch() -> None:
    decision = decided(
        deployment(status=D.CREATED),
        target("a", T.PENDING, "PPPPPPP"),
        target("b", T.PENDING, "PPPPPPP"),
        target("c", T.PENDING, "PPPPPPP"),
    )
    assert decision.begin
    assert target_moves(decision) == [("a", T.IN_PROGRESS)]
    assert decision.started == (ref("a", 0),)
    assert decision.running == (ref("a", 0),)
    # the agent is sent the rest of the host's events with the first (one chain)
    assert decision.held == tuple(ref("a", i) for i in range(1, 7))
    assert decision.wake_at == NOW + EVENT_BACKSTOP  # the started event's backstop


@pytest.mark.parametrize(
    ("events", "ignore_stop_failures", "moves", "started"),
    [
        ("SPPPPPP", False, [], (ref("a", 1),)),  # the next event
        ("FPPPPPP", True, [], (ref("a", 1),)),  # ApplicationStop's failure ignored
        ("SSSSSSS", False, [("a", T.SUCCEEDED), ("b", T.IN_PROGRESS)], (ref("b", 0),)),
    ],
)
def test_an_ended_event_starts_the_next_or_ends_its_target(
    events: str,
    ignore_stop_failures: bool,
    moves: list[tuple[str, T]],
    started: tuple[EventRef, ...],
) -> None:
    decision = decided(
        deployment(ignore_application_stop_failures=ignore_stop_failures),
        target("a", T.IN_PROGRESS, events),
        target("b", T.PENDING, "PPPPPPP"),
        target("c", T.PENDING, "PPPPPPP"),
    )
    assert target_moves(decision) == moves
    assert decision.started == started
    assert decision.finish is None


@pytest.mark.parametrize(
    ("code", "error_code"),
    [
        (None, DeploymentErrorCode.HEALTH_CONSTRAINTS),
        (ErrorCode.SCRIPT_FAILED, DeploymentErrorCode.HEALTH_CONSTRAINTS),
        (ErrorCode.AGENT_ISSUE, DeploymentErrorCode.AGENT_ISSUE),
        (ErrorCode.TIMEOUT, DeploymentErrorCode.TIMEOUT),
    ],
)
def test_a_failed_event_fails_its_target_and_the_deployment_below_minimum_healthy(
    code: ErrorCode | None, error_code: DeploymentErrorCode
) -> None:
    # The fleet fails what an agent it lost held after the event too (it may have run on).
    fleet = code in (ErrorCode.AGENT_ISSUE, ErrorCode.TIMEOUT)
    decision = decided(
        deployment(),
        target("a", T.IN_PROGRESS, "SSFFFFF" if fleet else "SSFPPPP", code=code),
        target("b", T.PENDING, "PPPPPPP"),
        target("c", T.PENDING, "PPPPPPP"),
    )
    assert target_moves(decision) == [("a", T.FAILED)]
    assert decision.finish is not None
    assert decision.finish.status is D.FAILED
    assert decision.finish.error is not None
    assert decision.finish.error.code is error_code
    assert "(1 of 3)" in decision.finish.error.message
    assert decision.finish.rollback is None  # no automatic rollback configured
    assert decision.started == () and decision.wake_at is None


def test_a_deployment_whose_targets_all_succeeded_succeeds() -> None:
    decision = decided(
        deployment(minimum_healthy=1),
        target("a", T.SUCCEEDED, "SSSSSSS"),
        target("b", T.IN_PROGRESS, "SSSSSSS"),
    )
    assert target_moves(decision) == [("b", T.SUCCEEDED)]
    assert decision.finish is not None and decision.finish.status is D.SUCCEEDED


def test_a_finished_deployment_decides_nothing() -> None:
    assert decided(deployment(status=D.SUCCEEDED), target("a", T.SUCCEEDED, "S")) == Decision()


# Deadlines: the clock is an input.


@pytest.mark.parametrize(
    ("started", "fails"),
    [(NOW - EVENT_BACKSTOP, True), (NOW - EVENT_BACKSTOP + timedelta(seconds=1), False)],
)
def test_an_event_past_the_backstop_fails_with_timeout(started: datetime, fails: bool) -> None:
    decision = decided(
        deployment(minimum_healthy=0),
        target("a", T.IN_PROGRESS, "SSRPPPP", started=started),
        target("b", T.SUCCEEDED, "SSSSSSS"),
    )
    if not fails:
        assert decision.events == () and decision.finish is None
        assert decision.wake_at == started + EVENT_BACKSTOP
        return
    # the overdue event fails, and so does what its agent held after it (nobody reports it)
    assert [(c.ref, c.status) for c in decision.events] == [
        (ref("a", i), E.FAILED) for i in range(2, 7)
    ]
    assert {c.diagnostics.error_code for c in decision.events} == {ErrorCode.TIMEOUT}
    assert target_moves(decision) == [("a", T.FAILED)]
    assert decision.finish is not None and decision.finish.status is D.SUCCEEDED  # 1 of 2, M=0


def test_the_earliest_running_event_sets_the_wake_time() -> None:
    first, second = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    decision = decided(
        deployment(config_name="AllAtOnce", minimum_healthy=0),
        target("a", T.IN_PROGRESS, "RPPPPPP", started=second),
        target("b", T.IN_PROGRESS, "SRPPPPP", started=first),
    )
    assert decision.wake_at == first + EVENT_BACKSTOP


# Stops.


def test_a_stop_skips_what_has_not_started_and_waits_for_what_runs() -> None:
    decision = decided(
        deployment(stop_requested=True),
        target("a", T.IN_PROGRESS, "SRPPPPP"),
        target("b", T.PENDING, "PPPPPPP"),
    )
    assert decision.skip_unstarted
    assert decision.started == () and decision.finish is None
    assert decision.running == (ref("a", 1),)
    # what its agent holds after the running event is cancelled with it
    assert decision.held == tuple(ref("a", i) for i in range(2, 7))


@pytest.mark.parametrize(
    ("roll_back", "planned"),
    [
        (False, None),
        (True, (PlannedTarget("a", IN_PLACE_EVENTS), PlannedTarget("b", IN_PLACE_EVENTS))),
    ],
)
def test_a_stopped_deployment_ends_when_its_last_event_ends_and_rolls_back_if_asked(
    roll_back: bool, planned: tuple[PlannedTarget, ...] | None
) -> None:
    decision = decided(
        deployment(stop_requested=True, roll_back_on_stop=roll_back),
        target("a", T.IN_PROGRESS, "SSKKKKK"),  # half-deployed: its target fails
        target("b", T.SKIPPED, "KKKKKKK"),
    )
    assert target_moves(decision) == [("a", T.FAILED)]
    assert decision.finish is not None
    assert decision.finish.status is D.STOPPED
    assert decision.finish.error is None  # the stop's MANUAL_STOP stays
    rollback = decision.finish.rollback
    assert (rollback.targets if rollback else None) == planned


def test_a_stopped_deployment_with_nothing_running_is_stopped_at_once() -> None:
    decision = decided(deployment(stop_requested=True), target("a", T.PENDING, "PPPPPPP"))
    assert decision.skip_unstarted
    assert decision.finish is not None and decision.finish.status is D.STOPPED


# Rollbacks.


@pytest.mark.parametrize(
    ("creator", "rolls_back"), [(Creator.USER, True), (Creator.ROLLBACK, False)]
)
def test_a_failure_rolls_back_when_configured_but_never_a_rollback(
    creator: Creator, rolls_back: bool
) -> None:
    decision = decided(
        deployment(auto_rollback=ON_FAILURE, creator=creator, minimum_healthy=1),
        target("a", T.IN_PROGRESS, "SFPPPPP"),
        target("b", T.FAILED, "FKKKKKK"),
    )
    assert decision.finish is not None and decision.finish.status is D.FAILED
    rollback = decision.finish.rollback
    assert (rollback is not None) is rolls_back
    if rollback is not None:
        assert rollback.reason == "Automatic rollback after the deployment failed"
        assert rollback.targets == (
            PlannedTarget("a", IN_PLACE_EVENTS),
            PlannedTarget("b", IN_PLACE_EVENTS),
        )


def test_a_blue_green_rollback_swaps_the_fleets_without_reinstalling() -> None:
    decision = decided(
        blue_green(auto_rollback=ON_FAILURE),
        target("b1", T.PENDING, "PPP", TargetLabel.BLUE, BLOCK_TRAFFIC_EVENTS),
        target("g1", T.IN_PROGRESS, "SSSSSSSSFP", TargetLabel.GREEN, GREEN_EVENTS),
    )
    assert decision.finish is not None and decision.finish.status is D.FAILED
    assert decision.finish.rollback is not None
    assert decision.finish.rollback.targets == (
        PlannedTarget("b1", ALLOW_TRAFFIC_EVENTS, TargetLabel.GREEN),
        PlannedTarget("g1", BLOCK_TRAFFIC_EVENTS, TargetLabel.BLUE),
    )


def test_an_act_that_failed_fails_the_deployment_with_its_error() -> None:
    error = ErrorInformation(DeploymentErrorCode.INTERNAL_ERROR, "provisioner: 500")
    decision = decided(blue_green(error=error))
    assert decision.finish is not None
    assert (decision.finish.status, decision.finish.error) == (D.FAILED, error)


# Blue/green: stages follow each other until one has to wait.


def bg_target(name: str, status: T, events: str, label: TargetLabel) -> Target:
    names = GREEN_EVENTS if label is TargetLabel.GREEN else BLOCK_TRAFFIC_EVENTS
    return target(name, status, events, label, names)


def test_the_last_installed_replacement_waits_at_the_gate_then_all_reroute() -> None:
    decision = decided(
        blue_green(minimum_healthy=1),
        bg_target("b1", T.PENDING, "PPP", TargetLabel.BLUE),
        bg_target("g1", T.READY, "SSSSSSSPPP", TargetLabel.GREEN),
        bg_target("g2", T.IN_PROGRESS, "SSSSSSSPPP", TargetLabel.GREEN),
    )
    assert target_moves(decision) == [
        ("g2", T.READY),
        ("g1", T.IN_PROGRESS),
        ("g2", T.IN_PROGRESS),
    ]
    assert decision.started == (ref("g1", 7, GREEN_EVENTS), ref("g2", 7, GREEN_EVENTS))
    assert decision.progress is not None and decision.progress.traffic_step == 0
    assert decision.weights == {}  # all at once: the originals keep their weight


def test_a_ready_wait_holds_the_replacements_then_expires_as_stopped() -> None:
    config = BlueGreenConfig(ready_action=ReadyAction.STOP_DEPLOYMENT, ready_wait_seconds=60)
    fleets = (
        bg_target("b1", T.PENDING, "PPP", TargetLabel.BLUE),
        bg_target("g1", T.IN_PROGRESS, "SSSSSSSPPP", TargetLabel.GREEN),
    )
    waiting = decided(blue_green(blue_green=config), *fleets)
    assert waiting.ready and waiting.wake_at == NOW + timedelta(seconds=60)
    assert waiting.progress is not None and waiting.progress.ready_until == waiting.wake_at
    ready = blue_green(
        blue_green=config,
        status=D.READY,
        progress=BlueGreenProgress(ready_until=NOW - timedelta(seconds=1)),
    )
    fleets = (fleets[0], dataclasses.replace(fleets[1], status=T.READY))
    expired = decided(ready, *fleets)
    assert expired.finish is not None and expired.finish.status is D.STOPPED
    assert expired.finish.error is not None
    assert expired.finish.error.code is DeploymentErrorCode.TIMEOUT


def test_a_canary_step_is_due_after_its_interval_and_the_last_blocks_the_originals() -> None:
    canary = TrafficRouting(TrafficRoutingType.CANARY, 10, 30)
    started = NOW - timedelta(seconds=30)
    routed = blue_green(
        routing=canary,
        progress=BlueGreenProgress(traffic_step=0, step_started_at=started, green_weight=11),
    )
    fleets = (
        bg_target("b1", T.PENDING, "PPP", TargetLabel.BLUE),
        bg_target("g1", T.SUCCEEDED, "SSSSSSSSSS", TargetLabel.GREEN),
    )
    early = decided(routed, *fleets, now=NOW - timedelta(seconds=1))
    assert early.started == () and early.wake_at == NOW
    decision = decided(routed, *fleets)
    assert decision.weights == {"g1": 100, "b1": 0}
    assert decision.progress is not None and decision.progress.traffic_step == 1
    assert decision.started == (ref("b1", 0, BLOCK_TRAFFIC_EVENTS),)  # BeforeBlockTraffic


@pytest.mark.parametrize(
    ("retired_at", "retire", "succeeded"), [(None, ("b1",), False), (NOW, (), True)]
)
def test_originals_are_retired_then_the_deployment_succeeds(
    retired_at: datetime | None, retire: tuple[str, ...], succeeded: bool
) -> None:
    config = BlueGreenConfig(blue_action=BlueInstanceAction.TERMINATE)
    decision = decided(
        blue_green(
            blue_green=config, progress=BlueGreenProgress(traffic_step=0, retired_at=retired_at)
        ),
        bg_target("b1", T.SUCCEEDED, "SSS", TargetLabel.BLUE),
        bg_target("g1", T.SUCCEEDED, "SSSSSSSSSS", TargetLabel.GREEN),
    )
    assert decision.retire == retire
    assert (decision.finish is not None and decision.finish.status is D.SUCCEEDED) is succeeded


def test_a_provisioned_fleet_is_asked_for_once_then_looked_for_until_its_timeout() -> None:
    config = BlueGreenConfig(
        green_fleet=GreenFleetAction.PROVISION, provisioner="p", provision_timeout_seconds=300
    )
    blue = (
        bg_target("b1", T.PENDING, "PPP", TargetLabel.BLUE),
        bg_target("b2", T.PENDING, "PPP", TargetLabel.BLUE),
    )
    asked = decided(blue_green(blue_green=config), *blue)
    assert (asked.provision, asked.collect_green) == (2, 2)
    assert asked.progress is not None and asked.progress.provision_requested_at == NOW
    assert asked.wake_at == NOW + timedelta(seconds=300)
    progress = BlueGreenProgress(provision_requested_at=NOW - timedelta(seconds=300))
    late = decided(blue_green(blue_green=config, progress=progress), *blue)
    assert late.provision == 0
    assert late.finish is not None and late.finish.status is D.FAILED


def test_a_stopped_blue_green_deployment_skips_the_replacements_waiting_at_the_gate() -> None:
    decision = decided(
        blue_green(stop_requested=True),
        bg_target("b1", T.PENDING, "PPP", TargetLabel.BLUE),
        bg_target("g1", T.READY, "SSSSSSSPPP", TargetLabel.GREEN),
        bg_target("g2", T.IN_PROGRESS, "SSSSSRPPPP", TargetLabel.GREEN),
    )
    assert decision.skip_unstarted and decision.finish is None
    assert decision.started == ()
    assert decision.running == (ref("g2", 5, GREEN_EVENTS),)
    # the chain ends before the gate: BeforeAllowTraffic waits for the reroute
    assert decision.held == (ref("g2", 6, GREEN_EVENTS),)
