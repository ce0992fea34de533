"""A runner's steps read again only the targets that changed since its last step: they decide
exactly as steps that read every target do (two deployments side by side on SQLite, the same
results reported to both)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.lifecycle import IN_PLACE_EVENTS
from services.core.db import open_database
from services.core.diagnostics import Diagnostics, ErrorCode
from services.orchestrator.decision import Decision, TargetChange
from services.orchestrator.domain import EventRef, PlannedTarget, Target
from services.orchestrator.happenings import Step
from services.orchestrator.known import KnownTargets
from services.orchestrator.next_step import decide
from services.orchestrator.results import EventEnded
from services.orchestrator.states import DeploymentStatus, TargetStatus
from services.orchestrator.store import DeploymentStore
from tests.unit.orchestrator.test_store_steps import GROUP, REQUEST

HOSTS = 4
STEPS = 200
"""A bound: a deployment of four hosts ends in a few dozen steps."""

Shape = tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]


def shape(targets: tuple[Target, ...]) -> Shape:
    """What a decision reads of the targets, without ids and times."""
    return tuple(
        (t.instance_name, t.status, tuple((e.name, e.status) for e in t.events)) for t in targets
    )


def result(deployment_id: str, ref: EventRef, failing: set[str]) -> EventEnded:
    """`ref`'s end, reported to the deployment `deployment_id`."""
    ok = not (ref.instance_name in failing and ref.name == "AfterInstall")
    diagnostics = Diagnostics() if ok else Diagnostics(ErrorCode.SCRIPT_FAILED, "exit 1")
    moved = EventRef(deployment_id, ref.instance_name, ref.position, ref.name)
    return EventEnded(moved, ok, diagnostics, at=datetime.now(UTC))


def unreported(step: Step, reported: set[tuple[str, int]]) -> list[EventRef]:
    """What the agents run or hold after `step` and have not reported yet."""
    return [
        r
        for r in (*step.decision.running, *step.decision.held)
        if (r.instance_name, r.position) not in reported
    ]


async def side_by_side(tmp_path: Path, failing: set[str]) -> tuple[DeploymentStatus, int]:
    db = await open_database(f"sqlite:///{tmp_path / 'ours.db'}", "orchestrator")
    other_db = await open_database(f"sqlite:///{tmp_path / 'theirs.db'}", "orchestrator")
    try:
        store, other = DeploymentStore(db), DeploymentStore(other_db)
        plan = [PlannedTarget(f"web-{i}", tuple(IN_PLACE_EVENTS)) for i in range(HOSTS)]
        tracked = await store.create(REQUEST, GROUP, HOSTS - 2, plan, None)  # two at a time
        fresh = await other.create(REQUEST, GROUP, HOSTS - 2, plan, None)
        known = KnownTargets()
        ours = await store.step(tracked, [None], decide, known=known)
        theirs = await other.step(fresh, [None], decide)
        reported: set[tuple[str, int]] = set()
        for steps in range(STEPS):
            assert shape(ours.targets) == shape(theirs.targets)
            status = (await store.get(tracked)).status
            assert status == (await other.get(fresh)).status
            waiting = unreported(ours, reported)
            if not waiting:
                return status, steps
            # one result, then two, then three…: alone and in bursts
            burst = waiting[: 1 + steps % 3]
            reported.update((r.instance_name, r.position) for r in burst)
            ours = await store.step(
                tracked, [result(tracked, r, failing) for r in burst], decide, known=known
            )
            theirs = await other.step(fresh, [result(fresh, r, failing) for r in burst], decide)
        raise AssertionError(f"not ended in {STEPS} steps")
    finally:
        await db.close()
        await other_db.close()


@pytest.mark.parametrize(
    ("failing", "ends"),
    [
        (set(), DeploymentStatus.SUCCEEDED),
        ({"web-1"}, DeploymentStatus.SUCCEEDED),  # three of four healthy: enough
        ({"web-0", "web-1", "web-2"}, DeploymentStatus.FAILED),
    ],
)
def test_steps_that_read_only_what_changed_decide_as_steps_that_read_everything(
    tmp_path: Path, failing: set[str], ends: DeploymentStatus
) -> None:
    status, steps = asyncio.run(side_by_side(tmp_path, failing))
    assert status is ends
    assert steps > HOSTS  # the hosts went in waves, each over several steps


def test_a_step_reads_the_targets_changed_by_the_last_decision_and_its_results() -> None:
    known = KnownTargets()
    assert known.to_read([None]) is None  # nothing known yet: all
    at = datetime.now(UTC)
    targets = (
        Target("d-1", "web-1", TargetStatus.IN_PROGRESS, at, ()),
        Target("d-1", "web-2", TargetStatus.PENDING, at, ()),
    )
    known.stepped(targets, Decision(targets=(TargetChange("web-1", TargetStatus.SUCCEEDED),)))
    assert known.to_read([None]) == frozenset({"web-1"})
    ended = EventEnded(EventRef("d-1", "web-2", 0, "ApplicationStop"), True, Diagnostics())
    assert known.to_read([ended]) == frozenset({"web-1", "web-2"})
    assert known.to_read([ended, object()]) is None  # something else happened: all
    known.stepped(targets, Decision(skip_unstarted=True))  # a stop skips what it does not name
    assert known.to_read([None]) is None
