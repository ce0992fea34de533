"""The rollout control loop: decide (pure, rollout.decide) then act (store + fleet dispatch).

It is driven by pushes only: a new deployment, or an agent's result arriving on the fleet's
update stream. Every state change is one store transaction; dispatch is idempotent, so after a
crash the loop re-sends what was in flight and resumes from its stored cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.errors import DeployError, NotFound, Unavailable
from services.core.metrics import (
    DEPLOYMENTS_IN_PROGRESS,
    DEPLOYMENTS_TOTAL,
    LIFECYCLE_EVENT_SECONDS,
)
from services.core.signal import ChangeSignal
from services.orchestrator.domain import Deployment, DeploymentErrorCode, ErrorInformation
from services.orchestrator.lifecycle import STOP_FAILURE_IGNORABLE, TRAFFIC_EVENTS
from services.orchestrator.peers import CommandResult, FleetClient, TrafficClient
from services.orchestrator.rollback import rollback_reason
from services.orchestrator.rollout import Outcome, RolloutSnapshot, decide
from services.orchestrator.states import DeploymentStatus
from services.orchestrator.store import DeploymentStore, EventRef

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_SECONDS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Waits between attempts to reach the fleet after a failure (the last one repeats)."""


@dataclass(frozen=True)
class StopOutcome:
    stopped: bool
    """True: Stopped now; False: running lifecycle events must end first."""
    message: str


class RolloutController:
    def __init__(
        self,
        store: DeploymentStore,
        fleet: FleetClient,
        traffic: TrafficClient,
        changes: ChangeSignal,
        on_succeeded: Callable[[str], None] = lambda group_id: None,
    ) -> None:
        self._on_succeeded = on_succeeded
        """Told the group id of each deployment that succeeds (catch-up looks again)."""
        self._store = store
        self._fleet = fleet
        self._traffic = traffic
        self._changes = changes
        self._lock = asyncio.Lock()
        """Serializes decisions so two results for one deployment never race."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._specs: dict[str, Deployment] = {}
        """Deployments by id, for their fixed fields (revision, options) on the per-event path;
        their status is read fresh from the store whenever a decision depends on it."""

    async def start(self) -> None:
        """Resume every unfinished deployment, then follow the fleet's results."""
        self._spawn(self._recover())
        self._spawn(self._follow_fleet())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def kick(self, deployment_id: str) -> None:
        """Advance a deployment after something changed (e.g. it was just created)."""
        async with self._lock:
            await self._advance(deployment_id)
        self._changes.notify()

    async def stop_deployment(self, deployment_id: str, roll_back: bool | None) -> StopOutcome:
        """Start nothing more; Stopped at once when nothing runs, else when the running
        lifecycle events end (their hooks finish or time out on the hosts)."""
        async with self._lock:
            result = await self._store.request_stop(deployment_id, roll_back)
            await self._advance(deployment_id)
        self._changes.notify()
        if result.in_flight:
            return StopOutcome(
                False,
                f"Stopping: waiting for {result.in_flight} running lifecycle event(s) to end",
            )
        return StopOutcome(True, "Stopped")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recover(self) -> None:
        for deployment_id in await self._store.active_ids():
            deployment = await self._store.get(deployment_id)
            self._spawn(
                self._dispatch(deployment, await self._store.in_progress_events(deployment_id))
            )
            await self.kick(deployment_id)
        self._refresh_gauge_later()

    async def _follow_fleet(self) -> None:
        """Consume the fleet's update stream from the stored cursor; reconnect after failures."""
        attempt = 0
        while True:
            try:
                async for result in self._fleet.results(await self._store.cursor()):
                    attempt = 0
                    await self._on_result(result)
            except DeployError as error:
                delay = RECONNECT_BACKOFF_SECONDS[min(attempt, len(RECONNECT_BACKOFF_SECONDS) - 1)]
                attempt += 1
                log.warning(
                    "fleet update stream lost; reconnecting",
                    extra={"fields": {"error": str(error), "retry_in_seconds": delay}},
                )
                await asyncio.sleep(delay)

    async def _on_result(self, result: CommandResult) -> None:
        if not result.finished:
            return  # the cursor moves with the next finish; a re-read start is harmless
        ref = EventRef.parse(result.command_id)
        async with self._lock:
            if ref is None:
                await self._store.skip_cursor(result.sequence)
                return
            try:
                deployment = await self._spec(ref.deployment_id)
            except NotFound:
                await self._store.skip_cursor(result.sequence)
                return
            ignorable = (
                deployment.ignore_application_stop_failures and ref.name in STOP_FAILURE_IGNORABLE
            )
            outcome = await self._store.finish_event(
                ref, result.succeeded, result.diagnostics, result.sequence, ignorable
            )
            if outcome.recorded:
                status = "Succeeded" if result.succeeded else "Failed"
                LIFECYCLE_EVENT_SECONDS.labels(ref.name, status).observe(outcome.duration_seconds)
                log.info(
                    "lifecycle event finished",
                    extra={
                        "fields": {
                            "deployment_id": ref.deployment_id,
                            "instance": ref.instance_name,
                            "event": ref.name,
                            "status": status,
                        }
                    },
                )
            if outcome.next_event is not None:
                self._spawn(self._dispatch(deployment, [outcome.next_event]))
            elif outcome.recorded:  # a target finished: the rollout may move on
                await self._advance(ref.deployment_id)
        self._changes.notify()

    async def _spec(self, deployment_id: str) -> Deployment:
        if deployment_id not in self._specs:
            self._specs[deployment_id] = await self._store.get(deployment_id)
        return self._specs[deployment_id]

    async def _advance(self, deployment_id: str) -> None:
        """Decide what the deployment does next and do it. Caller holds the lock."""
        status = await self._store.begin(deployment_id)
        if status is not DeploymentStatus.IN_PROGRESS:
            return
        deployment = await self._store.get(deployment_id)
        targets = await self._store.targets(deployment_id)
        decision = decide(
            RolloutSnapshot(
                targets=tuple((t.instance_name, t.status) for t in targets),
                minimum_healthy=deployment.minimum_healthy,
                untouched_healthy=deployment.untouched_healthy,
                stopping=deployment.stop_requested,
            )
        )
        if decision.outcome is Outcome.CONTINUE:
            if decision.start:
                started = await self._store.start_targets(deployment_id, decision.start)
                self._spawn(self._dispatch(deployment, started))
            return
        if decision.outcome is Outcome.SUCCEEDED:
            await self._finish(deployment, DeploymentStatus.SUCCEEDED, None)
        elif decision.outcome is Outcome.STOPPED:
            await self._finish(deployment, DeploymentStatus.STOPPED, None)
        else:
            error = ErrorInformation(DeploymentErrorCode.HEALTH_CONSTRAINTS, decision.reason)
            await self._finish(deployment, DeploymentStatus.FAILED, error)

    async def _finish(
        self, deployment: Deployment, status: DeploymentStatus, error: ErrorInformation | None
    ) -> None:
        """Record the end (and the rollback it calls for), then start the rollback."""
        self._specs.pop(deployment.id, None)
        reason = rollback_reason(deployment, status)
        result = await self._store.finish(deployment.id, status, error, reason)
        if not result.finished:
            return
        DEPLOYMENTS_TOTAL.labels(status).inc()
        log.info(
            "deployment finished",
            extra={
                "fields": {
                    "deployment_id": deployment.id,
                    "status": status,
                    "error": error.message if error else "",
                    "rollback_deployment_id": result.rollback_id,
                }
            },
        )
        if result.rollback_id:
            await self._advance(result.rollback_id)
        if status is DeploymentStatus.SUCCEEDED:
            self._on_succeeded(deployment.group_id)
        self._refresh_gauge_later()

    async def _dispatch(self, deployment: Deployment, refs: list[EventRef]) -> None:
        """Send commands to the fleet, retrying while it is unreachable (dispatch is idempotent);
        BlockTraffic and AllowTraffic are run here, through the traffic service."""
        for ref in refs:
            if ref.name in TRAFFIC_EVENTS:
                self._spawn(self._run_traffic_event(deployment, ref))
                continue
            for attempt, delay in enumerate((*RECONNECT_BACKOFF_SECONDS, None)):
                try:
                    await self._fleet.dispatch(deployment, ref)
                    break
                except DeployError as error:
                    if delay is None:
                        log.error(
                            "could not dispatch; it will be re-sent on restart",
                            extra={
                                "fields": {
                                    "command_id": ref.command_id,
                                    "error": str(error),
                                    "attempts": attempt,
                                }
                            },
                        )
                        break
                    await asyncio.sleep(delay)

    async def _run_traffic_event(self, deployment: Deployment, ref: EventRef) -> None:
        """Move the instance out of (BlockTraffic) or into (AllowTraffic) every target group of
        the deployment, then record the result as an agent's would be."""
        try:
            message = await self._with_retries(lambda: self._move_traffic(deployment, ref))
            result = CommandResult(0, ref.command_id, True, True, Diagnostics(message=message))
        except DeployError as error:
            diagnostics = Diagnostics(error_code=ErrorCode.UNKNOWN_ERROR, message=str(error))
            result = CommandResult(0, ref.command_id, True, False, diagnostics)
        await self._on_result(result)

    async def _move_traffic(self, deployment: Deployment, ref: EventRef) -> str:
        lines = []
        for group in deployment.target_groups:
            if ref.name == "AllowTraffic":
                host = await self._fleet.instance_address(ref.instance_name)
                address = await self._traffic.allow(group, ref.instance_name, host)
                lines.append(f"{group}: serving at {address}")
            else:
                drained = await self._traffic.block(group, ref.instance_name)
                still_open = (
                    f", {drained.open_connections} connection(s) still open"
                    if drained.open_connections
                    else ""
                )
                lines.append(f"{group}: drained in {drained.seconds:.1f}s{still_open}")
        return "; ".join(lines)

    @staticmethod
    async def _with_retries(call: Callable[[], Coroutine[Any, Any, str]]) -> str:
        """`call`, again after each Unavailable while the backoff lasts."""
        for delay in (*RECONNECT_BACKOFF_SECONDS, None):
            try:
                return await call()
            except Unavailable:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _refresh_gauge_later(self) -> None:
        async def refresh() -> None:
            DEPLOYMENTS_IN_PROGRESS.set(len(await self._store.active_ids()))

        self._spawn(refresh())
