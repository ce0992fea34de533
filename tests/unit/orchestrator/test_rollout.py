"""Rollout arithmetic: which targets start next and when a deployment ends (table-tested)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.core.diagnostics import Diagnostics, ErrorCode
from services.orchestrator.configs import BUILT_IN_CONFIGS, DeploymentConfig, MinimumHealthyType
from services.orchestrator.domain import (
    DeploymentErrorCode,
    Target,
    TargetEvent,
    failure_code,
)
from services.orchestrator.rollout import Outcome, RolloutSnapshot, decide, infeasible
from services.orchestrator.states import EventStatus, TargetStatus


def snapshot(
    statuses: str, minimum: int, untouched: int = 0, stopping: bool = False
) -> RolloutSnapshot:
    codes = {
        "P": TargetStatus.PENDING,
        "I": TargetStatus.IN_PROGRESS,
        "S": TargetStatus.SUCCEEDED,
        "F": TargetStatus.FAILED,
        "K": TargetStatus.SKIPPED,
    }
    return RolloutSnapshot(
        tuple((f"i{n}", codes[c]) for n, c in enumerate(statuses)), minimum, untouched, stopping
    )


@pytest.mark.parametrize(
    ("statuses", "minimum", "outcome", "start"),
    [
        # OneAtATime on 3 (M = 2): one at a time.
        ("PPP", 2, Outcome.CONTINUE, ("i0",)),
        ("IPP", 2, Outcome.CONTINUE, ()),
        ("SPP", 2, Outcome.CONTINUE, ("i1",)),
        ("FPP", 2, Outcome.FAILED, ()),  # a failure before the last one fails the deployment
        ("SSF", 2, Outcome.SUCCEEDED, ()),  # ... but a failure on the last one does not
        ("SSS", 2, Outcome.SUCCEEDED, ()),
        # AllAtOnce (M = 0): all start; one success is enough.
        ("PPP", 0, Outcome.CONTINUE, ("i0", "i1", "i2")),
        ("FFS", 0, Outcome.SUCCEEDED, ()),
        ("FFF", 0, Outcome.FAILED, ()),
        ("FFI", 0, Outcome.CONTINUE, ()),
        # HalfAtATime on 4 (M = 2): two at a time; two successes needed.
        ("PPPP", 2, Outcome.CONTINUE, ("i0", "i1")),
        ("FSPP", 2, Outcome.CONTINUE, ("i2",)),
        ("FFPP", 2, Outcome.FAILED, ()),
        ("FSFS", 2, Outcome.SUCCEEDED, ()),
        # A single instance under OneAtATime (M = 0) must itself succeed.
        ("F", 0, Outcome.FAILED, ()),
        ("S", 0, Outcome.SUCCEEDED, ()),
    ],
)
def test_decide(statuses: str, minimum: int, outcome: Outcome, start: tuple[str, ...]) -> None:
    decision = decide(snapshot(statuses, minimum))
    assert decision.outcome is outcome
    assert decision.start == start
    assert bool(decision.reason) == (outcome is Outcome.FAILED)


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ("IKK", Outcome.CONTINUE),  # a running event ends first
        ("FKK", Outcome.STOPPED),
        ("SSK", Outcome.STOPPED),  # stopped, even though every started instance succeeded
        ("KKK", Outcome.STOPPED),
    ],
)
def test_a_stopping_deployment_starts_nothing_and_stops_once_nothing_runs(
    statuses: str, outcome: Outcome
) -> None:
    decision = decide(snapshot(statuses, 0, stopping=True))
    assert (decision.outcome, decision.start) == (outcome, ())


@pytest.mark.parametrize(
    ("statuses", "minimum", "untouched", "outcome", "start"),
    [
        # 5 instances under OneAtATime (M = 4), 3 already current: one at a time still.
        ("PP", 4, 3, Outcome.CONTINUE, ("i0",)),
        ("SP", 4, 3, Outcome.CONTINUE, ("i1",)),
        ("SF", 4, 3, Outcome.SUCCEEDED, ()),  # the last one may fail: 1 + 3 ≥ 4
        ("FP", 4, 3, Outcome.FAILED, ()),
        # HalfAtATime over 4 (M = 2), 2 current: both outdated may go at once.
        ("PP", 2, 2, Outcome.CONTINUE, ("i0", "i1")),
        ("FS", 2, 2, Outcome.SUCCEEDED, ()),
        ("FF", 2, 2, Outcome.FAILED, ()),  # at least one must succeed
        # Nothing outdated: done at once.
        ("", 2, 4, Outcome.SUCCEEDED, ()),
    ],
)
def test_instances_left_alone_count_towards_minimum_healthy(
    statuses: str, minimum: int, untouched: int, outcome: Outcome, start: tuple[str, ...]
) -> None:
    decision = decide(snapshot(statuses, minimum, untouched))
    assert (decision.outcome, decision.start) == (outcome, start)


@pytest.mark.parametrize(
    ("name", "instances", "minimum"),
    [
        ("CodeDeployDefault.OneAtATime", 3, 2),
        ("CodeDeployDefault.OneAtATime", 1, 0),
        ("CodeDeployDefault.HalfAtATime", 9, 5),  # 9 instances: 4 at a time, 5 must succeed
        ("CodeDeployDefault.HalfAtATime", 4, 2),
        ("CodeDeployDefault.AllAtOnce", 10, 0),
    ],
)
def test_minimum_healthy_of_built_in_configs(name: str, instances: int, minimum: int) -> None:
    assert BUILT_IN_CONFIGS[name].minimum_healthy(instances) == minimum


def test_fleet_percent_rounds_up_and_host_count_is_literal() -> None:
    assert DeploymentConfig("p", MinimumHealthyType.FLEET_PERCENT, 40).minimum_healthy(9) == 4
    assert DeploymentConfig("h", MinimumHealthyType.HOST_COUNT, 6).minimum_healthy(9) == 6


def test_a_deployment_that_needs_every_instance_healthy_cannot_start() -> None:
    assert infeasible(1, 1) is not None  # HalfAtATime on one instance: 1 ≤ M
    assert (
        infeasible(10, 10)
        == "the deployment config needs 10 healthy instance(s) but the group has only 10"
    )
    assert infeasible(3, 2) is None
    assert infeasible(1, 0) is None


CONFIGS = [
    *BUILT_IN_CONFIGS.values(),
    DeploymentConfig("hosts-2", MinimumHealthyType.HOST_COUNT, 2),
    DeploymentConfig("pct-40", MinimumHealthyType.FLEET_PERCENT, 40),
    DeploymentConfig("pct-75", MinimumHealthyType.FLEET_PERCENT, 75),
]


def simulate(instances: int, minimum: int, fails: frozenset[int]) -> tuple[Outcome, int]:
    """Run decide to the end, finishing in-flight targets oldest first; returns the outcome
    and the fewest healthy instances seen while anything was in flight."""
    statuses = {f"i{n}": TargetStatus.PENDING for n in range(instances)}
    order: list[str] = []
    fewest_healthy = instances
    for _ in range(4 * instances + 4):
        decision = decide(RolloutSnapshot(tuple(statuses.items()), minimum))
        if decision.outcome is not Outcome.CONTINUE:
            return decision.outcome, fewest_healthy
        for name in decision.start:
            statuses[name] = TargetStatus.IN_PROGRESS
            order.append(name)
        in_flight = [n for n in order if statuses[n] is TargetStatus.IN_PROGRESS]
        healthy = sum(
            s in (TargetStatus.PENDING, TargetStatus.SUCCEEDED) for s in statuses.values()
        )
        fewest_healthy = min(fewest_healthy, healthy)
        assert in_flight, "CONTINUE without anything in flight would never end"
        done = in_flight[0]
        statuses[done] = TargetStatus.FAILED if int(done[1:]) in fails else TargetStatus.SUCCEEDED
    raise AssertionError("the rollout did not end")


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
@pytest.mark.parametrize("instances", range(1, 11))
def test_minimum_healthy_is_never_violated_and_outcomes_follow_the_rules(
    config: DeploymentConfig, instances: int
) -> None:
    minimum = config.minimum_healthy(instances)
    if infeasible(instances, minimum) is not None:
        return  # HEALTH_CONSTRAINTS_INVALID: refused before it starts
    patterns = [
        frozenset(),
        frozenset({0}),
        frozenset({instances - 1}),
        frozenset(range(instances)),
        frozenset(range(0, instances, 2)),
    ]
    for fails in patterns:
        outcome, fewest = simulate(instances, minimum, fails)
        assert fewest >= minimum, (fails, fewest)
        if not fails:
            assert outcome is Outcome.SUCCEEDED
        if fails == frozenset(range(instances)):
            assert outcome is Outcome.FAILED
        if outcome is Outcome.SUCCEEDED:
            assert instances - len(fails) >= max(minimum, 1)
    if config.name == "CodeDeployDefault.OneAtATime" and instances > 1:
        # A failure on the last instance still succeeds; on any other it fails.
        assert simulate(instances, minimum, frozenset({instances - 1}))[0] is Outcome.SUCCEEDED
        assert simulate(instances, minimum, frozenset({0}))[0] is Outcome.FAILED


def _target(*events: tuple[str, EventStatus, ErrorCode | None]) -> Target:
    return Target(
        "d-1",
        "web-1",
        TargetStatus.FAILED,
        datetime(2026, 11, 29, tzinfo=UTC),
        tuple(TargetEvent(n, s, diagnostics=Diagnostics(error_code=c)) for n, s, c in events),
    )


@pytest.mark.parametrize(
    ("cause", "code"),
    [
        (ErrorCode.SCRIPT_FAILED, DeploymentErrorCode.HEALTH_CONSTRAINTS),
        (ErrorCode.AGENT_ISSUE, DeploymentErrorCode.AGENT_ISSUE),
        (ErrorCode.TIMEOUT, DeploymentErrorCode.TIMEOUT),
    ],
)
def test_a_failed_deployment_is_named_after_the_cause_of_its_failed_events(
    cause: ErrorCode, code: DeploymentErrorCode
) -> None:
    targets = [
        _target(("ApplicationStop", EventStatus.SUCCEEDED, ErrorCode.SUCCESS)),
        _target(
            ("ApplicationStop", EventStatus.SUCCEEDED, ErrorCode.SUCCESS),
            ("BeforeInstall", EventStatus.FAILED, cause),
            ("Install", EventStatus.SKIPPED, None),
        ),
    ]
    assert failure_code(targets) is code
