"""The rollout: one runner per active deployment (runner.py), fed by pushes only — a new
deployment, a stop or continue request, an agent's result on the fleet's update stream, a fleet
change, the clock.

Each runner decides (pure, next_step.decide) and applies in one store transaction, then acts
(acts.py). Dispatch is idempotent, so after a crash, and whenever the fleet's update stream
comes back, the in-flight events are sent again and the stream resumes from its stored cursor.
The fleet fails an event whose agent goes offline or misses a deadline, so every dispatched
event ends with a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from deploy.backoff import Backoff
from services.core.errors import DeployError
from services.core.metrics import DEPLOYMENTS_IN_PROGRESS, DEPLOYMENTS_TOTAL
from services.core.signal import ChangeSignal
from services.orchestrator.acts import RolloutActs
from services.orchestrator.alarms import AlarmSource, AlarmWatch, NoPrometheus
from services.orchestrator.cursor import FleetCursor
from services.orchestrator.domain import Deployment, EventRef
from services.orchestrator.group_store import GroupStore
from services.orchestrator.happenings import Continued, Happening, Step, StopRequested
from services.orchestrator.lifecycle import run_by_server
from services.orchestrator.peers import CommandResult, FleetClient, TrafficClient
from services.orchestrator.provisioner import Provisioners
from services.orchestrator.results import EventEnded
from services.orchestrator.runner import DeploymentRunner
from services.orchestrator.states import DeploymentStatus
from services.orchestrator.store import DeploymentStore

log = logging.getLogger(__name__)


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
        groups: GroupStore,
        provisioners: Provisioners | None = None,
        on_succeeded: Callable[[str], None] = lambda group_id: None,
        alarms: AlarmSource | None = None,
        alarm_poll_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._fleet = fleet
        self._changes = changes
        self._on_succeeded = on_succeeded
        """Told the group id of each deployment that succeeds (catch-up looks again)."""
        self._runners: dict[str, DeploymentRunner] = {}
        self._cursor = FleetCursor()
        self._tasks: set[asyncio.Task[None]] = set()
        self._resend = asyncio.Event()
        """Set when the in-flight events must be dispatched again (start, fleet back)."""
        self._alarms = AlarmWatch(
            store,
            alarms or NoPrometheus(),
            alarm_poll_seconds,
            lambda runner: self._runners.get(runner.deployment_id) is runner,
        )
        self._acts = RolloutActs(
            fleet,
            traffic,
            groups,
            provisioners or Provisioners({}),
            self._spawn,
            self._finished,
            self._resend.set,
        )

    async def start(self) -> None:
        """Resume every unfinished deployment, then follow the fleet's results."""
        self._spawn(self._recover())
        self._spawn(self._follow_fleet())
        self._spawn(self._resend_when_asked())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def fleet_changed(self) -> None:
        """An instance registered or came online: a replacement fleet may be complete."""
        for runner in list(self._runners.values()):
            if runner.awaiting_fleet:
                runner.tell()

    def kick(self, deployment_id: str) -> None:
        """Decide on a deployment soon (it was just created). Nobody waits for that first
        step: the deployment is stored, and a step that fails is the runner's to try again —
        never a failed CreateDeployment of a deployment that exists."""
        self._runner(deployment_id).tell()

    async def continue_deployment(self, deployment_id: str, termination: bool) -> None:
        """Reroute a Ready blue/green deployment now, or retire its originals now."""
        await self._submit(deployment_id, Continued(termination))

    async def stop_deployment(self, deployment_id: str, roll_back: bool | None) -> StopOutcome:
        """Start nothing more and stop what runs: agents kill the running events' scripts (the
        fleet fails those of offline instances at once); Stopped at once when nothing runs,
        else as soon as the running events have ended."""
        step = await self._submit(deployment_id, StopRequested(roll_back))
        running = step.decision.running
        if step.decision.finish is not None or not running:
            return StopOutcome(True, "Stopped")
        return StopOutcome(
            False, f"Stopping: {len(running)} running lifecycle event(s) are being ended"
        )

    async def _submit(self, deployment_id: str, happened: Happening) -> Step:
        return await self._runner(deployment_id).submit(happened)

    def perform(self, runner: DeploymentRunner, step: Step) -> None:
        """A runner committed a step: its acts start, and watchers see the change."""
        self._acts.perform(runner, step)
        self._changes.notify()

    def _runner(self, deployment_id: str) -> DeploymentRunner:
        """The deployment's runner, started if it has none."""
        runner = self._runners.get(deployment_id)
        if runner is None:
            runner = DeploymentRunner(
                deployment_id, self._store, self, self._cursor, self._runner_ended
            )
            self._runners[deployment_id] = runner
            self._spawn(runner.run())
            self._spawn(self._alarms.watch(runner))
        return runner

    def _runner_ended(self, runner: DeploymentRunner) -> None:
        if self._runners.get(runner.deployment_id) is runner:
            del self._runners[runner.deployment_id]

    def _finished(
        self, deployment: Deployment, status: DeploymentStatus, rollback_id: str | None
    ) -> None:
        DEPLOYMENTS_TOTAL.labels(status).inc()
        log.info(
            "deployment finished",
            extra={
                "fields": {
                    "deployment_id": deployment.id,
                    "status": status,
                    "rollback_deployment_id": rollback_id,
                }
            },
        )
        if rollback_id is not None:
            self._runner(rollback_id)
        if status is DeploymentStatus.SUCCEEDED:
            self._on_succeeded(deployment.group_id)
        self._refresh_gauge_later()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recover(self) -> None:
        """After a restart: traffic events that were running run again (they are idempotent),
        agents' events are dispatched again (and cancelled again if their deployment is
        stopping), every deployment gets its runner."""
        for deployment_id in await self._store.active_ids():
            deployment = await self._store.get(deployment_id)
            running = await self._store.in_progress_events(deployment_id)
            runner = self._runner(deployment_id)
            for ref in running:
                if run_by_server(ref.name):
                    weight = deployment.progress.green_weight
                    self._acts.run_traffic_event(runner, deployment, ref, weight)
            if deployment.stop_requested:
                self._spawn(self._acts.cancel(deployment_id, running))
        self._resend.set()
        self._refresh_gauge_later()

    async def _follow_fleet(self) -> None:
        """Consume the fleet's update stream from the stored cursor; reconnect after failures,
        re-sending the in-flight events (a restarted fleet may not have had them all)."""
        backoff = Backoff()
        while True:
            try:
                async for result in self._fleet.results(await self._store.cursor()):
                    backoff.reset()
                    self._on_result(result)
            except DeployError as error:
                delay = backoff.next_delay() or backoff.maximum
                log.warning(
                    "fleet update stream lost; reconnecting",
                    extra={"fields": {"error": str(error), "retry_in_seconds": delay}},
                )
                await asyncio.sleep(delay)
                self._resend.set()

    def _on_result(self, result: CommandResult) -> None:
        """Hand a finished event to its deployment's runner (which records it with the others
        that arrived meanwhile; the cursor passes it once it is committed)."""
        ref = EventRef.parse(result.command_id) if result.finished else None
        self._cursor.received(result.sequence, to_record=ref is not None)
        if ref is not None:
            ended = EventEnded(
                ref,
                result.succeeded,
                result.diagnostics,
                result.sequence,
                skipped=result.skipped,
                at=result.at,
            )
            self._runner(ref.deployment_id).tell(ended)

    async def _resend_when_asked(self) -> None:
        """Dispatch every in-flight agent event again whenever asked, until one pass reaches
        the fleet (dispatch is idempotent: the fleet ignores ids it has)."""
        backoff = Backoff()
        while True:
            await self._resend.wait()
            self._resend.clear()
            try:
                for deployment_id in await self._store.active_ids():
                    await self._resend_deployment(deployment_id)
                backoff.reset()
            except DeployError as error:
                delay = backoff.next_delay() or backoff.maximum
                log.warning(
                    "could not re-send in-flight events; trying again",
                    extra={"fields": {"error": str(error), "retry_in_seconds": delay}},
                )
                await asyncio.sleep(delay)
                self._resend.set()

    async def _resend_deployment(self, deployment_id: str) -> None:
        running = [
            ref
            for ref in await self._store.in_progress_events(deployment_id)
            if not run_by_server(ref.name)
        ]
        if not running:
            return
        deployment = await self._store.get(deployment_id)
        targets = {t.instance_name: t for t in await self._store.targets(deployment_id)}
        runner = self._runner(deployment_id)
        await self._acts.send(runner, deployment, [(r, targets[r.instance_name]) for r in running])

    def _refresh_gauge_later(self) -> None:
        async def refresh() -> None:
            DEPLOYMENTS_IN_PROGRESS.set(len(await self._store.active_ids()))

        self._spawn(refresh())
