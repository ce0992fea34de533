"""The rollout control loop: decide (pure, rollout.decide) then act (store + fleet dispatch).

It is driven by pushes only: a new deployment, or an agent's result arriving on the fleet's
update stream. Every state change is one store transaction; dispatch is idempotent, so after a
crash, and whenever the fleet's update stream comes back, the loop re-sends what was in flight
and resumes from its stored cursor. The fleet fails an event whose agent goes offline or misses
a deadline, so every dispatched event ends with a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from deploy.backoff import Backoff
from services.core.clock import utcnow
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.errors import (
    AlreadyExists,
    DeployError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.core.metrics import (
    DEPLOYMENTS_IN_PROGRESS,
    DEPLOYMENTS_TOTAL,
    LIFECYCLE_EVENT_SECONDS,
)
from services.core.signal import ChangeSignal
from services.core.tags import Tag
from services.orchestrator.bluegreen import (
    FULL_WEIGHT,
    Act,
    BlueGreenDecision,
    BlueGreenSnapshot,
    decide_blue_green,
    step_weights,
)
from services.orchestrator.domain import (
    Deployment,
    DeploymentErrorCode,
    ErrorInformation,
    PlannedTarget,
    Target,
    TargetLabel,
    failure_code,
)
from services.orchestrator.group_store import GroupStore
from services.orchestrator.lifecycle import (
    ALLOW_TRAFFIC_EVENTS,
    IN_PLACE_EVENTS,
    STOP_FAILURE_IGNORABLE,
    TRAFFIC_EVENTS,
)
from services.orchestrator.peers import CommandResult, FleetClient, TrafficClient
from services.orchestrator.provisioner import Provisioners, ProvisionRequest
from services.orchestrator.rollback import rollback_reason
from services.orchestrator.rollout import Outcome, RolloutSnapshot, decide
from services.orchestrator.states import DeploymentStatus, TargetStatus
from services.orchestrator.store import DeploymentStore, EventRef

log = logging.getLogger(__name__)
T = TypeVar("T")

PROVISIONED_BY = "opendeploy:deployment"
"""The tag a provisioner gives the instances it starts for a deployment (value: its id)."""

CALL_RETRIES = 7
"""Retries of a peer call while the peer is unreachable (about 6-11 s in all)."""
UNDELIVERABLE = (NotFound, InvalidArgument, FailedPrecondition, AlreadyExists)
"""Dispatch errors that no retry mends (the instance was deregistered): the event fails."""
STOP_REASON = "the deployment was stopped"


@dataclass(frozen=True)
class Fleets:
    """A blue/green deployment's targets: the replacement fleet and the originals."""

    green: list[Target]
    blue: list[Target]


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
    ) -> None:
        self._groups = groups
        self._provisioners = provisioners or Provisioners({})
        self._timers: dict[str, asyncio.TimerHandle] = {}
        """Blue/green deployments waiting for a time (ready wait, traffic step, termination)."""
        self._awaiting_fleet: set[str] = set()
        """Blue/green deployments waiting for their provisioned instances to come online."""
        self._busy: set[str] = set()
        """Blue/green deployments whose provisioner or retirement is running."""
        self._on_succeeded = on_succeeded
        """Told the group id of each deployment that succeeds (catch-up looks again)."""
        self._store = store
        self._fleet = fleet
        self._traffic = traffic
        self._changes = changes
        self._lock = asyncio.Lock()
        """Serializes decisions so two results for one deployment never race."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._events: dict[tuple[str, str], tuple[str, ...]] = {}
        self._specs: dict[str, Deployment] = {}
        """Deployments by id, for their fixed fields (revision, options) on the per-event path;
        their status is read fresh from the store whenever a decision depends on it."""
        self._resend = asyncio.Event()
        """Set when the in-flight events must be dispatched again (start, fleet back)."""

    async def start(self) -> None:
        """Resume every unfinished deployment, then follow the fleet's results."""
        self._spawn(self._recover())
        self._spawn(self._follow_fleet())
        self._spawn(self._resend_when_asked())

    def fleet_changed(self) -> None:
        """An instance registered or came online: a replacement fleet may be complete."""
        for deployment_id in list(self._awaiting_fleet):
            self._spawn(self.kick(deployment_id))

    async def continue_deployment(self, deployment_id: str, termination: bool) -> None:
        """Reroute a Ready blue/green deployment now, or retire its originals now."""
        async with self._lock:
            await self._store.continue_deployment(deployment_id, termination)
            await self._advance(deployment_id)
        self._changes.notify()

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
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
        """Start nothing more and stop what runs: agents kill the running events' scripts (the
        fleet fails those of offline instances at once); Stopped at once when nothing runs,
        else as soon as the running events have ended."""
        async with self._lock:
            result = await self._store.request_stop(deployment_id, roll_back)
            await self._advance(deployment_id)
        self._changes.notify()
        if not result.in_flight:
            return StopOutcome(True, "Stopped")
        await self._cancel_running(deployment_id, result.in_flight)
        return StopOutcome(
            False, f"Stopping: {len(result.in_flight)} running lifecycle event(s) are being ended"
        )

    async def _cancel_running(self, deployment_id: str, running: Sequence[EventRef]) -> None:
        """Have the fleet stop the running agent events of a stopping deployment (traffic
        events end by themselves within their drain delay)."""
        on_agents = [r.command_id for r in running if r.name not in TRAFFIC_EVENTS]
        if not on_agents:
            return
        try:
            await self._with_retries(partial(self._fleet.cancel, on_agents, STOP_REASON))
        except DeployError as error:  # their end deadlines still end them
            log.warning(
                "could not cancel the running lifecycle events",
                extra={"fields": {"deployment_id": deployment_id, "error": str(error)}},
            )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recover(self) -> None:
        """After a restart: traffic events that were running run again (they are idempotent),
        agents' events are dispatched again (and cancelled again if their deployment is
        stopping), every deployment decides again."""
        for deployment_id in await self._store.active_ids():
            deployment = await self._store.get(deployment_id)
            running = await self._store.in_progress_events(deployment_id)
            for ref in running:
                if ref.name in TRAFFIC_EVENTS:
                    self._spawn(self._run_traffic_event(deployment, ref))
            if deployment.stop_requested:
                self._spawn(self._cancel_running(deployment_id, running))
            await self.kick(deployment_id)
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
                    await self._on_result(result)
            except DeployError as error:
                delay = backoff.next_delay() or backoff.maximum
                log.warning(
                    "fleet update stream lost; reconnecting",
                    extra={"fields": {"error": str(error), "retry_in_seconds": delay}},
                )
                await asyncio.sleep(delay)
                self._resend.set()

    async def _resend_when_asked(self) -> None:
        """Dispatch every in-flight agent event again whenever asked, until one pass reaches
        the fleet (dispatch is idempotent: the fleet ignores ids it has)."""
        backoff = Backoff()
        while True:
            await self._resend.wait()
            self._resend.clear()
            try:
                for deployment_id in await self._store.active_ids():
                    deployment = await self._spec(deployment_id)
                    for ref in await self._store.in_progress_events(deployment_id):
                        if ref.name not in TRAFFIC_EVENTS:
                            await self._send(deployment, ref)
                backoff.reset()
            except DeployError as error:
                delay = backoff.next_delay() or backoff.maximum
                log.warning(
                    "could not re-send in-flight events; trying again",
                    extra={"fields": {"error": str(error), "retry_in_seconds": delay}},
                )
                await asyncio.sleep(delay)
                self._resend.set()

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
        if status not in (DeploymentStatus.IN_PROGRESS, DeploymentStatus.READY):
            return
        deployment = await self._store.get(deployment_id)
        targets = await self._store.targets(deployment_id)
        for target in targets:  # what each instance runs, for its dispatches (no re-read)
            key = (deployment_id, target.instance_name)
            self._events.setdefault(key, tuple(e.name for e in target.events))
        if deployment.blue_green_style:
            await self._advance_blue_green(deployment, targets)
            return
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
            error = ErrorInformation(failure_code(targets), decision.reason)
            await self._finish(deployment, DeploymentStatus.FAILED, error)

    async def _advance_blue_green(self, deployment: Deployment, targets: list[Target]) -> None:
        """Decide (bluegreen.decide_blue_green) then act. Caller holds the lock."""
        if deployment.id in self._busy:
            return  # the provisioner or the retirement of blue decides again when it ends
        fleets = Fleets(
            green=[t for t in targets if t.label is TargetLabel.GREEN],
            blue=[t for t in targets if t.label is TargetLabel.BLUE],
        )
        progress = deployment.progress
        decision = decide_blue_green(
            BlueGreenSnapshot(
                green=tuple((t.instance_name, t.status) for t in fleets.green),
                blue=tuple((t.instance_name, t.status) for t in fleets.blue),
                minimum_healthy=deployment.minimum_healthy,
                config=deployment.blue_green,
                steps=deployment.routing.steps(),
                step_interval_seconds=deployment.routing.interval_seconds,
                status=deployment.status,
                now=utcnow(),
                stopping=deployment.stop_requested,
                provision_requested_at=progress.provision_requested_at,
                continued=progress.continued,
                ready_until=progress.ready_until,
                traffic_step=progress.traffic_step,
                step_started_at=progress.step_started_at,
                terminate_at=progress.terminate_at,
            )
        )
        self._wake(deployment.id, decision.wake_at)
        self._awaiting_fleet.discard(deployment.id)
        acts = {
            Act.WAIT: self._await_green,
            Act.PROVISION: self._request_green,
            Act.START_GREEN: self._start,
            Act.READY: self._hold_ready,
            Act.REROUTE: self._reroute,
            Act.STEP: self._step,
            Act.BLOCK_BLUE: self._block_blue,
            Act.TERMINATION_WAIT: self._hold_termination,
            Act.TERMINATE: self._terminate,
        }
        act = acts.get(decision.act)
        if act is not None:
            await act(deployment, fleets, decision)
            return
        status, code = {
            Act.SUCCEEDED: (DeploymentStatus.SUCCEEDED, None),
            Act.STOPPED: (DeploymentStatus.STOPPED, DeploymentErrorCode.TIMEOUT),
            Act.FAILED: (DeploymentStatus.FAILED, failure_code(targets)),
        }[decision.act]
        error = ErrorInformation(code, decision.reason) if code and decision.reason else None
        await self._finish(deployment, status, error)

    async def _await_green(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        if not fleets.green and deployment.progress.provision_requested_at is not None:
            await self._collect_green(deployment, max(len(fleets.blue), 1))

    async def _request_green(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        await self._store.record_progress(deployment.id, provision_requested_at=utcnow())
        self._busy.add(deployment.id)
        self._spawn(self._provision(deployment, max(len(fleets.blue), 1)))

    async def _start(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        started = await self._store.start_targets(deployment.id, decision.start)
        self._spawn(self._dispatch(deployment, started))

    async def _hold_ready(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        assert decision.wake_at is not None, "a ready wait has an end"
        await self._store.mark_ready(deployment.id, decision.wake_at)

    async def _reroute(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        """The installed replacements join at the first step's weight; before a partial first
        step the originals are weighed down (they keep full weight while green joins else)."""
        first = deployment.routing.steps()[0]
        joining = [t.instance_name for t in fleets.green if t.status is TargetStatus.READY]
        green_weight, blue_weight = step_weights(first, len(joining), len(fleets.blue))
        if first < 100:
            await self._set_weights(deployment, {t.instance_name: blue_weight for t in fleets.blue})
        await self._store.record_progress(
            deployment.id,
            traffic_step=0,
            step_started_at=utcnow(),
            green_weight=green_weight,
            blue_weight=blue_weight if first < 100 else FULL_WEIGHT,
        )
        started = await self._store.resume_targets(deployment.id, joining)
        self._spawn(self._dispatch(deployment, started))
        self._again(deployment.id)

    async def _step(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        percent = deployment.routing.steps()[decision.step]
        serving = [t.instance_name for t in fleets.green if t.status is TargetStatus.SUCCEEDED]
        green_weight, blue_weight = step_weights(percent, len(serving), len(fleets.blue))
        weights = {name: green_weight for name in serving}
        weights |= {t.instance_name: blue_weight for t in fleets.blue}
        await self._set_weights(deployment, weights)
        await self._store.record_progress(
            deployment.id,
            traffic_step=decision.step,
            step_started_at=utcnow(),
            green_weight=green_weight,
            blue_weight=blue_weight,
        )
        log.info(
            "traffic step",
            extra={"fields": {"deployment_id": deployment.id, "green_percent": percent}},
        )
        self._again(deployment.id)

    async def _block_blue(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        """No new requests to the originals, then their block-traffic events drain them."""
        await self._set_weights(deployment, {t.instance_name: 0 for t in fleets.blue})
        await self._store.record_progress(deployment.id, blue_weight=0)
        await self._start(deployment, fleets, decision)

    async def _hold_termination(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        await self._store.record_progress(deployment.id, terminate_at=decision.wake_at)

    async def _terminate(
        self, deployment: Deployment, fleets: Fleets, decision: BlueGreenDecision
    ) -> None:
        self._busy.add(deployment.id)
        self._spawn(self._retire(deployment, decision.terminate))

    def _wake(self, deployment_id: str, at: datetime | None) -> None:
        """Decide again for the deployment at `at` (a timer replaces any earlier one)."""
        timer = self._timers.pop(deployment_id, None)
        if timer is not None:
            timer.cancel()
        if at is not None:
            delay = max((at - utcnow()).total_seconds(), 0.0)
            self._timers[deployment_id] = asyncio.get_running_loop().call_later(
                delay, self._again, deployment_id
            )

    def _again(self, deployment_id: str) -> None:
        """Decide again soon, once the current decision has released the lock."""
        self._spawn(self.kick(deployment_id))

    async def _collect_green(self, deployment: Deployment, count: int) -> None:
        """The provisioned instances that are online become the replacement fleet once all
        `count` are; until then, every fleet change looks again."""
        names = await self._fleet.online_instances_tagged(PROVISIONED_BY, deployment.id)
        if len(names) < count:
            self._awaiting_fleet.add(deployment.id)
            return
        events = IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS
        await self._store.add_targets(
            deployment.id, [PlannedTarget(n, events, TargetLabel.GREEN) for n in names[:count]]
        )
        log.info(
            "replacement fleet online",
            extra={"fields": {"deployment_id": deployment.id, "instances": names[:count]}},
        )
        self._again(deployment.id)

    async def _provision(self, deployment: Deployment, count: int) -> None:
        group = await self._groups.get(deployment.application_name, deployment.group_name)
        tags = (*group.member_tags(), Tag(PROVISIONED_BY, deployment.id))
        try:
            await self._provisioners.provision(
                deployment.blue_green.provisioner, _provision_request(deployment), count, tags
            )
        except DeployError as error:
            async with self._lock:
                self._busy.discard(deployment.id)
                failure = ErrorInformation(DeploymentErrorCode.INTERNAL_ERROR, str(error))
                await self._finish(deployment, DeploymentStatus.FAILED, failure)
            self._changes.notify()
            return
        self._busy.discard(deployment.id)
        self._again(deployment.id)

    async def _retire(self, deployment: Deployment, instances: tuple[str, ...]) -> None:
        """TERMINATE: the originals leave the fleet, and the provisioner (if any) removes them."""
        try:
            for name in instances:
                await self._fleet.deregister(name)
            if deployment.blue_green.provisioner:
                await self._provisioners.terminate(
                    deployment.blue_green.provisioner, _provision_request(deployment), instances
                )
            status, error = DeploymentStatus.SUCCEEDED, None
        except DeployError as failure:
            status = DeploymentStatus.FAILED
            error = ErrorInformation(DeploymentErrorCode.INTERNAL_ERROR, str(failure))
        async with self._lock:
            self._busy.discard(deployment.id)
            await self._finish(deployment, status, error)
        self._changes.notify()

    async def _set_weights(self, deployment: Deployment, weights: dict[str, int]) -> None:
        if weights:
            for group in deployment.target_groups:
                await self._with_retries(partial(self._traffic.set_weights, group, weights))

    async def _finish(
        self, deployment: Deployment, status: DeploymentStatus, error: ErrorInformation | None
    ) -> None:
        """Record the end (and the rollback it calls for), then start the rollback."""
        self._specs.pop(deployment.id, None)
        for key in [k for k in self._events if k[0] == deployment.id]:
            del self._events[key]
        self._wake(deployment.id, None)
        self._awaiting_fleet.discard(deployment.id)
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

    async def _event_names(self, deployment_id: str, instance: str) -> tuple[str, ...]:
        """The events an instance runs in a deployment (fixed at creation; kept while it runs)."""
        key = (deployment_id, instance)
        if key not in self._events:
            target = await self._store.target(deployment_id, instance)
            self._events[key] = tuple(e.name for e in target.events)
        return self._events[key]

    async def _dispatch(self, deployment: Deployment, refs: list[EventRef]) -> None:
        """Send commands to the fleet, retrying while it is unreachable (dispatch is idempotent)
        and asking for a re-send of everything in flight if it stays so; BlockTraffic and
        AllowTraffic are run here, through the traffic service."""
        for ref in refs:
            if ref.name in TRAFFIC_EVENTS:
                self._spawn(self._run_traffic_event(deployment, ref))
                continue
            try:
                await self._with_retries(partial(self._send, deployment, ref), DeployError)
            except DeployError as error:
                log.error(
                    "could not dispatch; it is re-sent once the fleet answers",
                    extra={"fields": {"command_id": ref.command_id, "error": str(error)}},
                )
                self._resend.set()

    async def _send(self, deployment: Deployment, ref: EventRef) -> None:
        """Dispatch one event; one the fleet refuses for good (its instance was deregistered)
        fails at once, as its agent could never report it."""
        try:
            events = await self._event_names(deployment.id, ref.instance_name)
            await self._fleet.dispatch(deployment, ref, events)
        except UNDELIVERABLE as error:
            diagnostics = Diagnostics(
                error_code=ErrorCode.AGENT_ISSUE,
                message=f"Failed: the lifecycle event could not be sent to the agent: {error}",
            )
            await self._on_result(CommandResult(0, ref.command_id, True, False, diagnostics))

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
        """BlockTraffic or AllowTraffic in every target group; a blue/green replacement joins
        at the weight of the current traffic step."""
        weight = FULL_WEIGHT
        if deployment.blue_green_style:
            weight = (await self._store.get(deployment.id)).progress.green_weight or FULL_WEIGHT
        lines = []
        for group in deployment.target_groups:
            if ref.name == "AllowTraffic":
                host = await self._fleet.instance_address(ref.instance_name)
                address = await self._traffic.allow(group, ref.instance_name, host, weight)
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
    async def _with_retries(
        call: Callable[[], Coroutine[Any, Any, T]],
        retry_on: type[DeployError] = Unavailable,
    ) -> T:
        """`call`, again after each `retry_on` error while the backoff lasts."""
        backoff = Backoff(attempts=CALL_RETRIES)
        while True:
            try:
                return await call()
            except retry_on:
                delay = backoff.next_delay()
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    def _refresh_gauge_later(self) -> None:
        async def refresh() -> None:
            DEPLOYMENTS_IN_PROGRESS.set(len(await self._store.active_ids()))

        self._spawn(refresh())


def _provision_request(deployment: Deployment) -> ProvisionRequest:
    return ProvisionRequest(deployment.id, deployment.application_name, deployment.group_name)
