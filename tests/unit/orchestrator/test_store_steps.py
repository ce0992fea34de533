"""The deployment store applies what `decide` returns, on a real (SQLite) database: results of a
whole chain recorded in one step, and a decision that fails what an agent held and ends its
target in the same step."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploy.lifecycle import IN_PLACE_EVENTS
from services.core.db import open_database
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.revision import RevisionLocation, RevisionType
from services.orchestrator.decision import Decision, Snapshot
from services.orchestrator.domain import DeploymentRequest, EventRef, PlannedTarget, Target
from services.orchestrator.groups import DeploymentGroup
from services.orchestrator.happenings import Decide, Happening
from services.orchestrator.next_step import decide
from services.orchestrator.results import EventEnded
from services.orchestrator.states import DeploymentStatus, EventStatus, TargetStatus
from services.orchestrator.store import DeploymentStore

GROUP = DeploymentGroup(
    id="g-1",
    application_name="app",
    name="web",
    config_name="CodeDeployDefault.AllAtOnce",
    tag_filters=(),
    created_at=datetime(2026, 11, 30, tzinfo=UTC),
)
REQUEST = DeploymentRequest(
    application_name="app",
    group_name="web",
    revision=RevisionLocation(RevisionType.REGISTRY, digest="sha256:" + "0" * 64),
    config_name="CodeDeployDefault.AllAtOnce",
    description="",
    file_exists_behavior=None,
    ignore_application_stop_failures=False,
)


def no_backstop(snapshot: Snapshot, now: datetime) -> Decision:
    """The real decision with an event's backstop deadline already past."""
    return decide(dataclasses.replace(snapshot, event_backstop=timedelta(0)), now)


@contextlib.asynccontextmanager
async def started(tmp_path: Path) -> AsyncIterator[tuple[DeploymentStore, str]]:
    """A deployment to web-1, begun: its first event running, the rest held by the agent."""
    db = await open_database(f"sqlite:///{tmp_path / 'orchestrator.db'}", "orchestrator")
    try:
        store = DeploymentStore(db)
        target = PlannedTarget("web-1", tuple(IN_PLACE_EVENTS))
        deployment_id = await store.create(REQUEST, GROUP, 0, [target], None)
        step = await store.step(deployment_id, [None], decide)
        assert [r.position for r in step.decision.started] == [0]
        yield store, deployment_id
    finally:
        await db.close()


def statuses(target: Target) -> list[EventStatus]:
    return [event.status for event in target.events]


def one_more_step(
    tmp_path: Path, happened: Callable[[str], list[Happening]], decides: Decide
) -> tuple[DeploymentStatus, Target]:
    """Begin the deployment, then one step recording what `happened` (given the deployment's
    id) and deciding with `decides`: the deployment's status and web-1's target after it."""

    async def scenario() -> tuple[DeploymentStatus, Target]:
        async with started(tmp_path) as (store, deployment_id):
            await store.step(deployment_id, happened(deployment_id), decides)
            deployment = await store.get(deployment_id)
            return deployment.status, await store.target(deployment_id, "web-1")

    return asyncio.run(scenario())


def chain_succeeded(deployment_id: str) -> list[Happening]:
    at = datetime.now(UTC)
    return [
        EventEnded(EventRef(deployment_id, "web-1", i, name), True, Diagnostics(), at=at)
        for i, name in enumerate(IN_PLACE_EVENTS)
    ]


def test_a_chains_results_in_one_step_end_the_deployment(tmp_path: Path) -> None:
    status, target = one_more_step(tmp_path, chain_succeeded, decide)
    assert status is DeploymentStatus.SUCCEEDED
    assert target.status is TargetStatus.SUCCEEDED
    assert statuses(target) == [EventStatus.SUCCEEDED] * len(IN_PLACE_EVENTS)


def test_a_backstop_fails_the_held_events_and_the_target_in_one_step(tmp_path: Path) -> None:
    """The decision fails the running event and everything its agent held (Pending), and the
    target with them: the held events are recorded Failed, not skipped first and then refused
    as a move from Skipped."""
    status, target = one_more_step(tmp_path, lambda _: [None], no_backstop)
    assert status is DeploymentStatus.FAILED
    assert target.status is TargetStatus.FAILED
    assert statuses(target) == [EventStatus.FAILED] * len(IN_PLACE_EVENTS)
    assert {e.diagnostics.error_code for e in target.events} == {ErrorCode.TIMEOUT}
