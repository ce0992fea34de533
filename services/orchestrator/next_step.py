"""What one deployment does next, pure: `decide(snapshot, now) -> Decision` (decision.py).

A deployment's whole state is stored — its targets and their events, its stop request, its
blue/green progress — so its next step follows from that state and the clock alone, in order:

1. an event past the backstop deadline fails (`Timeout`). The fleet fails events whose agent
   goes offline or misses its own deadlines first; this catches an event nobody will ever report
   (a fleet that lost it, a traffic call that hangs);
2. a stopping deployment skips everything not started;
3. each target whose event ended starts its next event, waits for the reroute (a blue/green
   replacement before BeforeAllowTraffic: Ready), or ends Succeeded or Failed;
4. the rollout moves on: in place by the minimum-healthy arithmetic (`rollout.decide`), blue/green
   through its stages (`bluegreen.decide_blue_green`), each stage leading straight to the next
   until one has to wait;
5. a deployment that ends names its error and, when the rules call for it, plans its rollback.

The store applies a decision in the transaction that loaded its snapshot; the runner performs its
acts (dispatch, weights, provisioning, retirement) after the commit and decides again at
`wake_at` or when something happens. Any process that loads the deployment carries it on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from deploy.lifecycle import passes
from services.core.diagnostics import Diagnostics, ErrorCode
from services.orchestrator.bluegreen import (
    FULL_WEIGHT,
    Act,
    BlueGreenDecision,
    BlueGreenSnapshot,
    decide_blue_green,
    step_weights,
)
from services.orchestrator.decision import (
    FLEET_VERDICTS,
    Decision,
    EventChange,
    Finish,
    RollbackPlan,
    Snapshot,
    TargetChange,
)
from services.orchestrator.domain import (
    DeploymentErrorCode,
    ErrorInformation,
    EventRef,
    Target,
    TargetEvent,
    TargetLabel,
    failure_code,
)
from services.orchestrator.lifecycle import REROUTE_GATE, chained
from services.orchestrator.rollback import rollback_reason, rollback_targets
from services.orchestrator.rollout import Outcome, RolloutSnapshot
from services.orchestrator.rollout import decide as decide_rollout
from services.orchestrator.states import (
    ACTIVE_DEPLOYMENT,
    DeploymentStatus,
    EventStatus,
    TargetStatus,
)

MAX_STAGES = 12
"""A blue/green decision passes through at most this many stages (there are nine)."""
FINISHED = (EventStatus.SUCCEEDED, EventStatus.FAILED, EventStatus.SKIPPED)


def decide(snapshot: Snapshot, now: datetime) -> Decision:
    """The next step of one deployment, from its stored state and the clock alone."""
    deployment = snapshot.deployment
    if deployment.status not in ACTIVE_DEPLOYMENT:
        return Decision()
    draft = _Draft(snapshot, now)
    draft.fail_overdue()
    if deployment.stop_requested:
        draft.skip_unstarted()
    draft.move_targets()
    if deployment.error is not None and not deployment.stop_requested:
        draft.end(DeploymentStatus.FAILED, deployment.error)  # an act failed (provisioner, …)
    elif deployment.blue_green_style:
        _blue_green(draft)
    else:
        _in_place(draft)
    return draft.decision()


def _in_place(draft: _Draft) -> None:
    deployment = draft.deployment
    rollout = decide_rollout(
        RolloutSnapshot(
            targets=draft.statuses(),
            minimum_healthy=deployment.minimum_healthy,
            untouched_healthy=deployment.untouched_healthy,
            stopping=deployment.stop_requested,
        )
    )
    if rollout.outcome is Outcome.CONTINUE:
        for name in rollout.start:
            draft.start_target(name)
    elif rollout.outcome is Outcome.FAILED:
        draft.end(DeploymentStatus.FAILED, draft.failure(rollout.reason))
    else:
        draft.end(DeploymentStatus(rollout.outcome.value), None)


def _blue_green(draft: _Draft) -> None:
    """Stage after stage until one waits (for events, a time, the fleet) or the end."""
    for _ in range(MAX_STAGES):
        stage = decide_blue_green(draft.blue_green_snapshot())
        if not _take_stage(draft, stage):
            return


def _take_stage(draft: _Draft, stage: BlueGreenDecision) -> bool:
    """Apply one stage to the draft; False when the decision has to wait after it."""
    progress = draft.progress
    blue = draft.names(TargetLabel.BLUE)
    if stage.act is Act.WAIT:
        if not draft.names(TargetLabel.GREEN) and progress.provision_requested_at:
            draft.collect_green = max(len(blue), 1)
        draft.wake(stage.wake_at)
        return False
    if stage.act is Act.PROVISION:
        draft.set_progress(provision_requested_at=draft.now)
        draft.provision = max(len(blue), 1)
    elif stage.act in (Act.START_GREEN, Act.BLOCK_BLUE):
        if stage.act is Act.BLOCK_BLUE:
            draft.weights |= {name: 0 for name in blue}
            draft.set_progress(blue_weight=0)
        for name in stage.start:
            draft.start_target(name)
    elif stage.act is Act.READY:
        draft.ready = True
        draft.status = DeploymentStatus.READY
        draft.set_progress(ready_until=stage.wake_at)
    elif stage.act is Act.REROUTE:
        _reroute(draft, blue)
    elif stage.act is Act.STEP:
        _step(draft, stage.step, blue)
    elif stage.act is Act.TERMINATION_WAIT:
        draft.set_progress(terminate_at=stage.wake_at)
    elif stage.act is Act.TERMINATE:
        draft.retire = stage.terminate
        return False
    else:
        _end_blue_green(draft, stage)
        return False
    return True


def _reroute(draft: _Draft, blue: list[str]) -> None:
    """The installed replacements go on to BeforeAllowTraffic and join at the first step's
    weight; before a partial first step the originals are weighed down (else they keep theirs)."""
    first = draft.deployment.routing.steps()[0]
    joining = [
        n for n in draft.names(TargetLabel.GREEN) if draft.status_of(n) is TargetStatus.READY
    ]
    green_weight, blue_weight = step_weights(first, len(joining), len(blue))
    if first < 100:
        draft.weights |= {name: blue_weight for name in blue}
    draft.set_progress(
        traffic_step=0,
        step_started_at=draft.now,
        green_weight=green_weight,
        blue_weight=blue_weight if first < 100 else FULL_WEIGHT,
    )
    for name in joining:
        draft.resume_target(name)


def _step(draft: _Draft, step: int, blue: list[str]) -> None:
    percent = draft.deployment.routing.steps()[step]
    serving = [
        n for n in draft.names(TargetLabel.GREEN) if draft.status_of(n) is TargetStatus.SUCCEEDED
    ]
    green_weight, blue_weight = step_weights(percent, len(serving), len(blue))
    draft.weights |= {name: green_weight for name in serving} | {n: blue_weight for n in blue}
    draft.set_progress(
        traffic_step=step,
        step_started_at=draft.now,
        green_weight=green_weight,
        blue_weight=blue_weight,
    )


def _end_blue_green(draft: _Draft, stage: BlueGreenDecision) -> None:
    if stage.act is Act.SUCCEEDED:
        draft.end(DeploymentStatus.SUCCEEDED, None)
    elif stage.act is Act.FAILED:
        draft.end(DeploymentStatus.FAILED, draft.failure(stage.reason))
    else:  # a stop request keeps its MANUAL_STOP; an expired ready wait says so
        error = (
            ErrorInformation(DeploymentErrorCode.TIMEOUT, stage.reason) if stage.reason else None
        )
        draft.end(DeploymentStatus.STOPPED, error)


class _Draft:
    """The snapshot as the decision changes it, recording each change in order."""

    def __init__(self, snapshot: Snapshot, now: datetime) -> None:
        self.deployment = snapshot.deployment
        self.now = now
        self.targets = {t.instance_name: t for t in snapshot.targets}
        self.status = self.deployment.status
        self.begin = self.status is DeploymentStatus.CREATED
        if self.begin:
            self.status = DeploymentStatus.IN_PROGRESS
        self.progress = self.deployment.progress
        self.progress_changed = False
        self.backstop = snapshot.event_backstop
        self.event_changes: list[EventChange] = []
        self.target_changes: list[TargetChange] = []
        self.skipped = False
        self.ready = False
        self.finish: Finish | None = None
        self.weights: dict[str, int] = {}
        self.provision = 0
        self.collect_green = 0
        self.retire: tuple[str, ...] = ()
        self.wake_at: datetime | None = None

    def decision(self) -> Decision:
        running = tuple(self._running())
        if self.finish is None and running:
            deadlines = (self._started(r) + self.backstop for r in running)
            self.wake(min(deadlines))
        held = tuple(self._held())
        return Decision(
            begin=self.begin,
            events=tuple(self.event_changes),
            targets=tuple(self.target_changes),
            skip_unstarted=self.skipped,
            ready=self.ready,
            progress=self.progress if self.progress_changed else None,
            finish=self.finish,
            weights=self.weights,
            provision=self.provision,
            collect_green=self.collect_green,
            retire=self.retire,
            running=running,
            held=held,
            wake_at=None if self.finish else self.wake_at,
        )

    # reading

    def statuses(self) -> tuple[tuple[str, TargetStatus], ...]:
        return tuple((name, t.status) for name, t in self.targets.items())

    def names(self, label: TargetLabel) -> list[str]:
        return [name for name, t in self.targets.items() if t.label is label]

    def status_of(self, name: str) -> TargetStatus:
        return self.targets[name].status

    def failure(self, reason: str) -> ErrorInformation:
        return ErrorInformation(failure_code(list(self.targets.values())), reason)

    def blue_green_snapshot(self) -> BlueGreenSnapshot:
        deployment, progress = self.deployment, self.progress
        return BlueGreenSnapshot(
            green=tuple((n, self.status_of(n)) for n in self.names(TargetLabel.GREEN)),
            blue=tuple((n, self.status_of(n)) for n in self.names(TargetLabel.BLUE)),
            minimum_healthy=deployment.minimum_healthy,
            config=deployment.blue_green,
            steps=deployment.routing.steps(),
            step_interval_seconds=deployment.routing.interval_seconds,
            status=self.status,
            now=self.now,
            stopping=deployment.stop_requested,
            provision_requested_at=progress.provision_requested_at,
            continued=progress.continued,
            ready_until=progress.ready_until,
            traffic_step=progress.traffic_step,
            step_started_at=progress.step_started_at,
            terminate_at=progress.terminate_at,
            retired=progress.retired_at is not None,
            alarm_gated=deployment.alarms.watched,
            alarms_clear_at=deployment.alarms_clear_at,
        )

    # changing

    def set_progress(self, **changes: Any) -> None:
        self.progress = dataclasses.replace(self.progress, **changes)
        self.progress_changed = True

    def wake(self, at: datetime | None) -> None:
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at

    def end(self, status: DeploymentStatus, error: ErrorInformation | None) -> None:
        reason = rollback_reason(self.deployment, status)
        plan = None
        if reason is not None:
            plan = RollbackPlan(
                reason, rollback_targets(self.deployment, tuple(self.targets.values()))
            )
        self.finish = Finish(status, error, plan)

    def fail_overdue(self) -> None:
        backstop = self.backstop
        for ref in list(self._running()):
            if self._started(ref) + backstop <= self.now:
                diagnostics = Diagnostics(
                    error_code=ErrorCode.TIMEOUT,
                    message=(
                        f"Failed: no result {int(backstop.total_seconds())}s after the "
                        "lifecycle event started"
                    ),
                )
                self._set_event(ref, EventStatus.FAILED, diagnostics)
                # nobody will report what its agent held after it either
                name = ref.instance_name
                for held in list(self._held_in(name, self.targets[name])):
                    self._set_event(held, EventStatus.FAILED, diagnostics)

    def skip_unstarted(self) -> None:
        """Targets and events not started become Skipped, but for the events agents hold and
        may still run: each is reported (not run, if cancelled in time)."""
        held = {(ref.instance_name, ref.position) for ref in self._held()}
        for name, target in list(self.targets.items()):
            events = tuple(
                dataclasses.replace(e, status=EventStatus.SKIPPED)
                if e.status is EventStatus.PENDING and (name, position) not in held
                else e
                for position, e in enumerate(target.events)
            )
            status = target.status
            if status in (TargetStatus.PENDING, TargetStatus.READY):
                status = TargetStatus.SKIPPED
            if events != target.events or status is not target.status:
                self.skipped = True
                self.targets[name] = dataclasses.replace(target, events=events, status=status)

    def move_targets(self) -> None:
        """Each target whose event ended: its next event, the reroute wait, or its end."""
        for name, target in list(self.targets.items()):
            if target.status is not TargetStatus.IN_PROGRESS:
                continue
            events = target.events
            if any(e.status is EventStatus.IN_PROGRESS for e in events):
                continue
            ended = [i for i, e in enumerate(events) if e.status in FINISHED]
            following = next(
                (i for i, e in enumerate(events) if e.status is EventStatus.PENDING), None
            )
            # every ended event, not only the last: a host the fleet lost may have run on past
            # the event it failed (their results record what ran); its target fails all the same
            passed = all(self._passed(events[i]) for i in ended)
            if passed and following is not None:
                # a replacement stops at the gate once installed (a rollback's starts there)
                at_gate = bool(ended) and events[following].name == REROUTE_GATE
                if target.label is TargetLabel.GREEN and at_gate:
                    self._set_target(name, TargetStatus.READY)
                else:
                    self._start_event(name, following)
                continue
            if not passed and any(self._held_in(name, target)):
                continue  # the fleet failed an event its agent may have run on from: wait
            last = bool(ended) and ended[-1] == len(events) - 1
            self._set_target(
                name, TargetStatus.SUCCEEDED if passed and last else TargetStatus.FAILED
            )

    def start_target(self, name: str) -> None:
        """Pending → InProgress with its first event."""
        self._set_target(name, TargetStatus.IN_PROGRESS)
        self._start_event(name, 0)

    def resume_target(self, name: str) -> None:
        """Ready → InProgress with its next event (the reroute)."""
        self._set_target(name, TargetStatus.IN_PROGRESS)
        events = self.targets[name].events
        following = next(i for i, e in enumerate(events) if e.status is EventStatus.PENDING)
        self._start_event(name, following)

    # internals

    def _passed(self, event: TargetEvent) -> bool:
        """Succeeded, or failed where --ignore-application-stop-failures lets it go on (one
        Skipped never passes: it did not run)."""
        if event.status is EventStatus.SKIPPED:
            return False
        return passes(
            event.name,
            event.status is EventStatus.SUCCEEDED,
            self.deployment.ignore_application_stop_failures,
        )

    def _held(self) -> Iterator[EventRef]:
        for name, target in self.targets.items():
            yield from self._held_in(name, target)

    def _held_in(self, name: str, target: Target) -> Iterator[EventRef]:
        """The target's events not started here that its agent holds and may still run or
        have run: sent with an event of their chain that started, and every event between
        them passed, or is held too, or was failed by the fleet (its agent went offline or
        silent holding it: whether the host went on is not known until their own results).
        After one that did not pass on the host, the agent runs none of the rest."""
        names = [e.name for e in target.events]
        green = target.label is TargetLabel.GREEN
        live = False
        for position, event in enumerate(target.events):
            live = live and chained(names, position, green)
            if event.status is EventStatus.PENDING:
                if live:
                    yield EventRef(self.deployment.id, name, position, event.name)
            elif event.status is EventStatus.IN_PROGRESS:
                live = True
            elif event.status is EventStatus.SKIPPED:
                live = False
            else:
                live = self._passed(event) or event.diagnostics.error_code in FLEET_VERDICTS

    def _running(self) -> Iterator[EventRef]:
        for name, target in self.targets.items():
            for position, event in enumerate(target.events):
                if event.status is EventStatus.IN_PROGRESS:
                    yield EventRef(self.deployment.id, name, position, event.name)

    def _started(self, ref: EventRef) -> datetime:
        started = self.targets[ref.instance_name].events[ref.position].started_at
        return started or self.now

    def _start_event(self, name: str, position: int) -> None:
        target = self.targets[name]
        event = target.events[position]
        ref = EventRef(self.deployment.id, name, position, event.name)
        self._set_event(ref, EventStatus.IN_PROGRESS, started_at=self._chained_start(target, ref))

    @staticmethod
    def _chained_start(target: Target, ref: EventRef) -> datetime | None:
        """When the event started on its host if its agent holds it after the one before
        (it ran on as that one ended there); None if it waits for this decision."""
        names = [e.name for e in target.events]
        if not chained(names, ref.position, target.label is TargetLabel.GREEN):
            return None
        return target.events[ref.position - 1].ended_at

    def _set_event(
        self,
        ref: EventRef,
        status: EventStatus,
        diagnostics: Diagnostics | None = None,
        started_at: datetime | None = None,
    ) -> None:
        target = self.targets[ref.instance_name]
        event = target.events[ref.position]
        started = started_at or self.now
        changed = dataclasses.replace(
            event,
            status=status,
            started_at=started if status is EventStatus.IN_PROGRESS else event.started_at,
            ended_at=None if status is EventStatus.IN_PROGRESS else self.now,
            diagnostics=diagnostics or event.diagnostics,
        )
        events = (*target.events[: ref.position], changed, *target.events[ref.position + 1 :])
        self.targets[ref.instance_name] = dataclasses.replace(target, events=events)
        self.event_changes.append(
            EventChange(ref, status, diagnostics or Diagnostics(), started_at)
        )

    def _set_target(self, name: str, status: TargetStatus) -> None:
        target = self.targets[name]
        self.targets[name] = dataclasses.replace(target, status=status)
        self.target_changes.append(TargetChange(name, status))
