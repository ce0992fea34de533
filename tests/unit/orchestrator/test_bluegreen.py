"""Blue/green decisions and traffic arithmetic, pure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from services.core.errors import InvalidArgument
from services.orchestrator.bluegreen import (
    Act,
    BlueGreenConfig,
    BlueGreenSnapshot,
    BlueInstanceAction,
    GreenFleetAction,
    ReadyAction,
    TrafficRouting,
    TrafficRoutingType,
    decide_blue_green,
    rollback_blue_green,
    step_weights,
)
from services.orchestrator.states import DeploymentStatus
from services.orchestrator.states import TargetStatus as T

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def snapshot(**changes: object) -> BlueGreenSnapshot:
    base = BlueGreenSnapshot(
        green=(("g1", T.PENDING), ("g2", T.PENDING)),
        blue=(("b1", T.PENDING), ("b2", T.PENDING)),
        minimum_healthy=1,
        config=BlueGreenConfig(),
        steps=(100,),
        step_interval_seconds=0,
        status=DeploymentStatus.IN_PROGRESS,
        now=NOW,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_green_installs_one_at_a_time_then_reroutes() -> None:
    assert decide_blue_green(snapshot()).start == ("g1",)
    assert decide_blue_green(snapshot(green=(("g1", T.IN_PROGRESS), ("g2", T.PENDING)))).act is (
        Act.WAIT
    )
    installed = snapshot(green=(("g1", T.READY), ("g2", T.READY)))
    assert decide_blue_green(installed).act is Act.REROUTE
    assert decide_blue_green(installed).step == 0


def test_too_many_green_failures_fail_before_any_traffic_moves() -> None:
    decision = decide_blue_green(snapshot(green=(("g1", T.FAILED), ("g2", T.PENDING))))
    assert decision.act is Act.FAILED
    assert "1 of 2" in decision.reason


def test_ready_wait_holds_until_continued_or_expired() -> None:
    config = BlueGreenConfig(ready_action=ReadyAction.STOP_DEPLOYMENT, ready_wait_seconds=60)
    installed = snapshot(green=(("g1", T.READY), ("g2", T.READY)), config=config)
    first = decide_blue_green(installed)
    assert first.act is Act.READY
    assert first.wake_at == NOW + timedelta(seconds=60)
    waiting = dataclasses.replace(
        installed, status=DeploymentStatus.READY, ready_until=NOW + timedelta(seconds=60)
    )
    assert decide_blue_green(waiting).act is Act.WAIT
    expired = dataclasses.replace(waiting, now=NOW + timedelta(seconds=61))
    assert decide_blue_green(expired).act is Act.STOPPED
    assert decide_blue_green(dataclasses.replace(waiting, continued=True)).act is Act.REROUTE
    assert decide_blue_green(dataclasses.replace(waiting, stopping=True)).act is Act.STOPPED


def test_canary_steps_after_the_interval_then_blue_leaves() -> None:
    routed = snapshot(
        green=(("g1", T.SUCCEEDED), ("g2", T.SUCCEEDED)),
        steps=(10, 100),
        step_interval_seconds=30,
        traffic_step=0,
        step_started_at=NOW,
    )
    waiting = decide_blue_green(routed)
    assert (waiting.act, waiting.wake_at) == (Act.WAIT, NOW + timedelta(seconds=30))
    later = dataclasses.replace(routed, now=NOW + timedelta(seconds=30))
    assert (decide_blue_green(later).act, decide_blue_green(later).step) == (Act.STEP, 1)
    done = dataclasses.replace(routed, traffic_step=1)
    assert decide_blue_green(done).act is Act.BLOCK_BLUE
    assert decide_blue_green(done).start == ("b1", "b2")


def test_blue_is_kept_or_retired_after_the_termination_wait() -> None:
    blocked = snapshot(
        green=(("g1", T.SUCCEEDED), ("g2", T.SUCCEEDED)),
        blue=(("b1", T.SUCCEEDED), ("b2", T.SUCCEEDED)),
        traffic_step=0,
    )
    assert decide_blue_green(blocked).act is Act.SUCCEEDED
    config = BlueGreenConfig(blue_action=BlueInstanceAction.TERMINATE, termination_wait_seconds=120)
    retiring = dataclasses.replace(blocked, config=config)
    assert decide_blue_green(retiring).act is Act.TERMINATION_WAIT
    waiting = dataclasses.replace(retiring, terminate_at=NOW + timedelta(seconds=120))
    assert decide_blue_green(waiting).act is Act.WAIT
    due = dataclasses.replace(waiting, now=NOW + timedelta(seconds=120))
    assert decide_blue_green(due).act is Act.TERMINATE
    assert decide_blue_green(due).terminate == ("b1", "b2")


def test_a_blue_instance_that_cannot_leave_fails_the_deployment() -> None:
    stuck = snapshot(green=(("g1", T.SUCCEEDED),), blue=(("b1", T.FAILED),), traffic_step=0)
    assert decide_blue_green(stuck).act is Act.FAILED


def test_a_provisioned_fleet_is_asked_for_once_and_waited_for_until_the_timeout() -> None:
    config = BlueGreenConfig(
        green_fleet=GreenFleetAction.PROVISION, provisioner="local", provision_timeout_seconds=30
    )
    empty = snapshot(green=(), config=config)
    assert decide_blue_green(empty).act is Act.PROVISION
    asked = dataclasses.replace(empty, provision_requested_at=NOW)
    assert decide_blue_green(asked).act is Act.WAIT
    late = dataclasses.replace(asked, now=NOW + timedelta(seconds=31))
    assert decide_blue_green(late).act is Act.FAILED
    assert decide_blue_green(snapshot(green=())).act is Act.FAILED


def test_steps_of_each_routing_type() -> None:
    assert TrafficRouting().steps() == (100,)
    assert TrafficRouting(TrafficRoutingType.CANARY, 10, 60).steps() == (10, 100)
    assert TrafficRouting(TrafficRoutingType.LINEAR, 30, 60).steps() == (30, 60, 90, 100)
    with pytest.raises(InvalidArgument):
        TrafficRouting(TrafficRoutingType.LINEAR, 0, 60).check()


@pytest.mark.parametrize(
    ("percent", "green", "blue"), [(10, 3, 3), (50, 2, 4), (90, 1, 1), (25, 1, 3), (1, 5, 5)]
)
def test_step_weights_give_the_requested_share(percent: int, green: int, blue: int) -> None:
    wg, wb = step_weights(percent, green, blue)
    assert 1 <= wg <= 100 and 1 <= wb <= 100
    share = 100 * green * wg / (green * wg + blue * wb)
    assert abs(share - percent) <= 1.5


def test_step_weights_at_the_ends() -> None:
    assert step_weights(100, 2, 2) == (100, 0)
    assert step_weights(0, 2, 2) == (0, 100)
    assert step_weights(40, 2, 0) == (100, 0)


def test_a_rollback_reroutes_at_once_and_retires_only_a_provisioned_fleet() -> None:
    found = BlueGreenConfig(
        ready_action=ReadyAction.STOP_DEPLOYMENT,
        ready_wait_seconds=600,
        blue_action=BlueInstanceAction.TERMINATE,
        termination_wait_seconds=600,
    )
    assert rollback_blue_green(found) == dataclasses.replace(
        found,
        ready_action=ReadyAction.CONTINUE_DEPLOYMENT,
        blue_action=BlueInstanceAction.KEEP_ALIVE,
        termination_wait_seconds=0,
    )
    provisioned = dataclasses.replace(
        found, green_fleet=GreenFleetAction.PROVISION, provisioner="local"
    )
    assert rollback_blue_green(provisioned).blue_action is BlueInstanceAction.TERMINATE
    assert rollback_blue_green(provisioned).termination_wait_seconds == 0


def test_with_alarms_a_step_and_the_retirement_wait_until_read_clear_past_their_time() -> None:
    due = NOW + timedelta(seconds=30)
    routed = snapshot(
        green=(("g1", T.SUCCEEDED), ("g2", T.SUCCEEDED)),
        steps=(10, 100),
        step_interval_seconds=30,
        traffic_step=0,
        step_started_at=NOW,
        now=due,
        alarm_gated=True,
    )
    assert decide_blue_green(routed).act is Act.WAIT  # never read
    stale = dataclasses.replace(routed, alarms_clear_at=due - timedelta(seconds=1))
    assert decide_blue_green(stale).act is Act.WAIT
    clear = dataclasses.replace(routed, alarms_clear_at=due)
    assert decide_blue_green(clear).act is Act.STEP
    early = dataclasses.replace(routed, now=NOW + timedelta(seconds=10))
    assert decide_blue_green(early).wake_at == due  # not held back before its time
    config = BlueGreenConfig(blue_action=BlueInstanceAction.TERMINATE, termination_wait_seconds=60)
    retiring = snapshot(
        green=(("g1", T.SUCCEEDED),),
        blue=(("b1", T.SUCCEEDED),),
        traffic_step=0,
        config=config,
        terminate_at=NOW,
        alarm_gated=True,
        alarms_clear_at=NOW - timedelta(seconds=5),
    )
    assert decide_blue_green(retiring).act is Act.WAIT
    assert decide_blue_green(dataclasses.replace(retiring, alarms_clear_at=NOW)).act is (
        Act.TERMINATE
    )
