"""What a committed decision asks outside the database: dispatch events to agents, run the
traffic events, set load-balancer weights, provision and retire instances, cancel a stopped
deployment's running events. Each act's outcome comes back to its deployment's runner as a
happening (an event's result, the replacement fleet online, an act that failed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any, TypeVar

from deploy.backoff import Backoff
from deploy.lifecycle import LifecycleEvent
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.errors import (
    AlreadyExists,
    DeployError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.core.metrics import LIFECYCLE_EVENT_SECONDS
from services.core.tags import Tag
from services.orchestrator.bluegreen import FULL_WEIGHT
from services.orchestrator.domain import (
    Deployment,
    DeploymentErrorCode,
    ErrorInformation,
    EventRef,
    Target,
    TargetLabel,
)
from services.orchestrator.group_store import GroupStore
from services.orchestrator.happenings import (
    ActFailed,
    AlarmFired,
    GreenOnline,
    Retired,
    Step,
    StopRequested,
)
from services.orchestrator.lifecycle import chain, run_by_server
from services.orchestrator.peers import Dispatch, FleetClient, TrafficClient
from services.orchestrator.provisioner import Provisioners, ProvisionRequest
from services.orchestrator.results import EventEnded
from services.orchestrator.runner import DeploymentRunner
from services.orchestrator.states import DeploymentStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

PROVISIONED_BY = "opendeploy:deployment"
"""The tag a provisioner gives the instances it starts for a deployment (value: its id)."""
CALL_RETRIES = 7
"""Retries of a peer call while the peer is unreachable (about 6-11 s in all)."""
UNDELIVERABLE = (NotFound, InvalidArgument, FailedPrecondition, AlreadyExists)
"""Dispatch errors that no retry mends (the instance was deregistered): the event fails."""
STOP_REASON = "the deployment was stopped"


class RolloutActs:
    def __init__(
        self,
        fleet: FleetClient,
        traffic: TrafficClient,
        groups: GroupStore,
        provisioners: Provisioners,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        on_finished: Callable[[Deployment, DeploymentStatus, str | None], None],
        on_undelivered: Callable[[], None],
    ) -> None:
        self._fleet = fleet
        self._traffic = traffic
        self._groups = groups
        self._provisioners = provisioners
        self._spawn = spawn
        self._on_finished = on_finished
        """Told each deployment that ended, its status and its rollback's id (if any)."""
        self._on_undelivered = on_undelivered
        """Told when a dispatch gave up while the fleet is unreachable (re-send later)."""

    def perform(self, runner: DeploymentRunner, step: Step) -> None:
        """Start the decision's acts; their outcomes come back to `runner`."""
        decision, deployment = step.decision, step.deployment
        assert deployment is not None, "a recorded step has its deployment"
        self._observe(step)
        if decision.started or decision.weights:
            self._spawn(self._weights_then_dispatch(runner, step))
        runner.awaiting_fleet = bool(decision.collect_green)
        if decision.collect_green:
            self._spawn(self._collect_green(runner, deployment, decision.collect_green))
        if decision.provision:
            self._once(runner, "provision", self._provision(runner, deployment, decision.provision))
        if decision.retire:
            self._once(runner, "retire", self._retire(runner, deployment, decision.retire))
        stopped = any(isinstance(h, StopRequested | AlarmFired) for h in step.happened)
        if (stopped or decision.finish is not None) and decision.running:
            # a stop ends what runs (and what agents hold after it); so does an end that
            # leaves events running (an alarm that could not be read): nobody would wait
            # for their results
            self._spawn(self.cancel(deployment.id, decision.running + decision.held))
        if decision.finish is not None:
            self._on_finished(deployment, decision.finish.status, step.rollback_id)

    async def cancel(self, deployment_id: str, running: Sequence[EventRef]) -> None:
        """Have the fleet stop the running agent events of a stopping deployment (traffic
        events end by themselves within their drain delay)."""
        on_agents = [r.command_id for r in running if not run_by_server(r.name)]
        if not on_agents:
            return
        try:
            await _with_retries(partial(self._fleet.cancel, on_agents, STOP_REASON))
        except DeployError as error:  # their end deadlines still end them
            log.warning(
                "could not cancel the running lifecycle events",
                extra={"fields": {"deployment_id": deployment_id, "error": str(error)}},
            )

    async def send(
        self,
        runner: DeploymentRunner,
        deployment: Deployment,
        started: Sequence[tuple[EventRef, Target]],
    ) -> None:
        """Dispatch agent events (one per instance), each with the events its agent runs
        after it on its own (its chain: one round trip for them all), in a few calls for all
        of them; one the fleet refuses for good (its instance was deregistered) fails at once,
        as its agent could never report it."""
        dispatches = []
        for ref, target in started:
            names = [e.name for e in target.events]
            held = [
                EventRef(deployment.id, ref.instance_name, position, names[position])
                for position in chain(names, ref.position, target.label is TargetLabel.GREEN)
            ]
            runner.held.update(h.command_id for h in held)  # before: the first may end at once
            dispatches.append(Dispatch([ref, *held], names))
        try:
            refused = await self._fleet.dispatch(deployment, dispatches)
        except UNDELIVERABLE as error:
            refused = dict.fromkeys(range(len(dispatches)), str(error))
        for index, reason in refused.items():
            diagnostics = Diagnostics(
                error_code=ErrorCode.AGENT_ISSUE,
                message=f"Failed: the lifecycle event could not be sent to the agent: {reason}",
            )
            runner.tell(EventEnded(started[index][0], False, diagnostics))

    def run_traffic_event(
        self, runner: DeploymentRunner, deployment: Deployment, ref: EventRef, weight: int
    ) -> None:
        """Run BlockTraffic or AllowTraffic (a replacement joins at `weight`, 0: full)."""
        self._spawn(self._run_traffic_event(runner, deployment, ref, weight or FULL_WEIGHT))

    def _once(self, runner: DeploymentRunner, act: str, work: Coroutine[Any, Any, None]) -> None:
        """Start `work` unless the same act of the deployment still runs."""
        if act in runner.acting:
            work.close()
            return
        runner.acting.add(act)

        async def tracked() -> None:
            try:
                await work
            finally:
                runner.acting.discard(act)

        self._spawn(tracked())

    @staticmethod
    def _observe(step: Step) -> None:
        for ended, seconds in step.ended:
            ref, status = ended.ref, ended.status
            LIFECYCLE_EVENT_SECONDS.labels(ref.name, status).observe(seconds)
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

    async def _weights_then_dispatch(self, runner: DeploymentRunner, step: Step) -> None:
        """Weights first (the originals weigh less before the replacements join), then the
        started events: agents' through the fleet (retried while it is unreachable; re-sent
        later if it stays so), BlockTraffic and AllowTraffic through the traffic service."""
        deployment = step.deployment
        assert deployment is not None
        progress = step.decision.progress or deployment.progress
        if step.decision.weights:
            await self._set_weights(deployment, step.decision.weights)
        on_agents = []
        for ref in step.decision.started:
            if run_by_server(ref.name):
                self.run_traffic_event(runner, deployment, ref, progress.green_weight)
            elif ref.command_id in runner.held:  # its agent has it, after the one before
                runner.held.discard(ref.command_id)
            else:
                on_agents.append(ref)
        if not on_agents:
            return
        # One event per instance at most: they go out together, in a few calls (a wave of
        # 1,000 hosts would otherwise be 1,000 calls, each proved and checked).
        started = [(ref, step.by_instance[ref.instance_name]) for ref in on_agents]
        try:
            await _with_retries(partial(self.send, runner, deployment, started), DeployError)
        except DeployError as error:
            log.error(
                "could not dispatch; it is re-sent once the fleet answers",
                extra={
                    "fields": {
                        "command_ids": [ref.command_id for ref in on_agents],
                        "error": str(error),
                    }
                },
            )
            self._on_undelivered()

    async def _run_traffic_event(
        self, runner: DeploymentRunner, deployment: Deployment, ref: EventRef, weight: int
    ) -> None:
        """Move the instance out of (BlockTraffic) or into (AllowTraffic) every target group of
        the deployment, then record the result as an agent's would be."""
        try:
            message = await _with_retries(lambda: self._move_traffic(deployment, ref, weight))
            runner.tell(EventEnded(ref, True, Diagnostics(message=message)))
        except DeployError as error:
            diagnostics = Diagnostics(error_code=ErrorCode.UNKNOWN_ERROR, message=str(error))
            runner.tell(EventEnded(ref, False, diagnostics))

    async def _move_traffic(self, deployment: Deployment, ref: EventRef, weight: int) -> str:
        """BlockTraffic or AllowTraffic in every target group."""
        lines = []
        for group in deployment.target_groups:
            if ref.name == LifecycleEvent.ALLOW_TRAFFIC:
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

    async def _set_weights(self, deployment: Deployment, weights: dict[str, int]) -> None:
        for group in deployment.target_groups:
            await _with_retries(partial(self._traffic.set_weights, group, weights))
        log.info(
            "traffic weights set",
            extra={"fields": {"deployment_id": deployment.id, "weights": weights}},
        )

    async def _collect_green(
        self, runner: DeploymentRunner, deployment: Deployment, count: int
    ) -> None:
        """The provisioned instances that are online become the replacement fleet once all
        `count` are; until then every fleet change looks again."""
        names = await self._fleet.online_instances_tagged(PROVISIONED_BY, deployment.id)
        if len(names) < count:
            return
        log.info(
            "replacement fleet online",
            extra={"fields": {"deployment_id": deployment.id, "instances": names[:count]}},
        )
        runner.tell(GreenOnline(tuple(names[:count])))

    async def _provision(
        self, runner: DeploymentRunner, deployment: Deployment, count: int
    ) -> None:
        group = await self._groups.get(deployment.application_name, deployment.group_name)
        tags = (*group.member_tags(), Tag(PROVISIONED_BY, deployment.id))
        try:
            await self._provisioners.provision(
                deployment.blue_green.provisioner, _provision_request(deployment), count, tags
            )
        except DeployError as error:
            runner.tell(ActFailed(ErrorInformation(DeploymentErrorCode.INTERNAL_ERROR, str(error))))
            return
        runner.tell()  # look for the new instances

    async def _retire(
        self, runner: DeploymentRunner, deployment: Deployment, instances: tuple[str, ...]
    ) -> None:
        """TERMINATE: the originals leave the fleet (one already gone is fine: a restarted
        server retires again), and the provisioner (if any) removes them."""
        try:
            for name in instances:
                with contextlib.suppress(NotFound):
                    await self._fleet.deregister(name)
            if deployment.blue_green.provisioner:
                await self._provisioners.terminate(
                    deployment.blue_green.provisioner, _provision_request(deployment), instances
                )
        except DeployError as failure:
            error = ErrorInformation(DeploymentErrorCode.INTERNAL_ERROR, str(failure))
            runner.tell(ActFailed(error))
            return
        runner.tell(Retired())


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


def _provision_request(deployment: Deployment) -> ProvisionRequest:
    return ProvisionRequest(deployment.id, deployment.application_name, deployment.group_name)
