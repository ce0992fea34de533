"""Blue/green deployments, pure: the configuration, how traffic moves in steps, and what a
deployment does next.

The stages, in order (each decided from stored state alone, so a restart resumes them):
provision the replacement (green) fleet when the group asks for it; install on green, rolling
like an in-place deployment; the ready wait (STOP_DEPLOYMENT: status Ready until
continue-deployment, Stopped when the wait expires); reroute (green joins the load balancer at
the first step's weight); further traffic steps after each interval (canary, linear); the
original (blue) fleet leaves the load balancer; the termination wait; blue is retired (TERMINATE)
or kept (KEEP_ALIVE).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from services.core.errors import InvalidArgument
from services.orchestrator.rollout import Outcome, RolloutSnapshot, decide
from services.orchestrator.states import DeploymentStatus, TargetStatus

FULL_WEIGHT = 100
ALARM_RECHECK = timedelta(seconds=30)
"""A step waiting for its alarms to be read decides again after this at the latest (the alarm
watch tells it sooner)."""
"""The weight of an instance that takes its whole share of traffic (HAProxy allows 0-256)."""
MAX_WAIT_SECONDS = 2880 * 60
"""CodeDeploy's longest ready and termination waits: two days."""


class ReadyAction(StrEnum):
    CONTINUE_DEPLOYMENT = "CONTINUE_DEPLOYMENT"
    STOP_DEPLOYMENT = "STOP_DEPLOYMENT"


class BlueInstanceAction(StrEnum):
    TERMINATE = "TERMINATE"
    KEEP_ALIVE = "KEEP_ALIVE"


class GreenFleetAction(StrEnum):
    DISCOVER_EXISTING = "DISCOVER_EXISTING"
    """The replacement fleet is chosen by tags at create-deployment (--target-instances)."""
    PROVISION = "PROVISION"
    """A provisioner starts the replacement fleet (CodeDeploy's COPY_AUTO_SCALING_GROUP)."""


@dataclass(frozen=True)
class BlueGreenConfig:
    ready_action: ReadyAction = ReadyAction.CONTINUE_DEPLOYMENT
    ready_wait_seconds: int = 0
    """With STOP_DEPLOYMENT: how long to wait for continue-deployment."""
    blue_action: BlueInstanceAction = BlueInstanceAction.KEEP_ALIVE
    termination_wait_seconds: int = 0
    green_fleet: GreenFleetAction = GreenFleetAction.DISCOVER_EXISTING
    provisioner: str = ""
    """With PROVISION: the name of a provisioner in the server's configuration."""
    provision_timeout_seconds: int = 600
    """How long the provisioned instances have to register and come online."""

    def check(self) -> BlueGreenConfig:
        for name, value in (
            ("deploymentReadyOption.waitTimeInSeconds", self.ready_wait_seconds),
            (
                "terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInSeconds",
                self.termination_wait_seconds,
            ),
        ):
            if not 0 <= value <= MAX_WAIT_SECONDS:
                raise InvalidArgument(f"{name}: {value} is not in 0-{MAX_WAIT_SECONDS} (2 days)")
        if self.green_fleet is GreenFleetAction.PROVISION and not self.provisioner:
            raise InvalidArgument(
                "greenFleetProvisioningOption.provisionerName is required with PROVISION"
            )
        if not 1 <= self.provision_timeout_seconds <= MAX_WAIT_SECONDS:
            raise InvalidArgument(
                "greenFleetProvisioningOption.timeoutInSeconds: "
                f"{self.provision_timeout_seconds} is not in 1-{MAX_WAIT_SECONDS}"
            )
        return self


def rollback_blue_green(config: BlueGreenConfig) -> BlueGreenConfig:
    """A blue/green rollback reroutes at once; a provisioned replacement fleet is retired (as
    CodeDeploy deletes a copied Auto Scaling group), one found by tags is kept."""
    provisioned = config.green_fleet is GreenFleetAction.PROVISION
    return dataclasses.replace(
        config,
        ready_action=ReadyAction.CONTINUE_DEPLOYMENT,
        blue_action=BlueInstanceAction.TERMINATE if provisioned else BlueInstanceAction.KEEP_ALIVE,
        termination_wait_seconds=0,
    )


class TrafficRoutingType(StrEnum):
    ALL_AT_ONCE = "AllAtOnce"
    CANARY = "TimeBasedCanary"
    LINEAR = "TimeBasedLinear"


@dataclass(frozen=True)
class TrafficRouting:
    """How a blue/green deployment moves traffic to the replacement fleet (a deployment
    config's trafficRoutingConfig; CodeDeploy offers it for Lambda and ECS only)."""

    type: TrafficRoutingType = TrafficRoutingType.ALL_AT_ONCE
    percentage: int = 0
    """Canary: the first step; linear: every step."""
    interval_seconds: int = 0

    def check(self) -> TrafficRouting:
        if self.type is TrafficRoutingType.ALL_AT_ONCE:
            return TrafficRouting()
        if not 1 <= self.percentage <= 99:
            raise InvalidArgument(f"trafficRoutingConfig percentage {self.percentage} is not 1-99")
        if not 0 <= self.interval_seconds <= MAX_WAIT_SECONDS:
            raise InvalidArgument(
                f"trafficRoutingConfig interval {self.interval_seconds}s is not in "
                f"0-{MAX_WAIT_SECONDS}"
            )
        return self

    def steps(self) -> tuple[int, ...]:
        """The percentages of traffic the replacement fleet gets, one per step, ending at 100."""
        if self.type is TrafficRoutingType.CANARY:
            return (self.percentage, 100)
        if self.type is TrafficRoutingType.LINEAR:
            return (*range(self.percentage, 100, self.percentage), 100)
        return (100,)


def step_weights(percent: int, green: int, blue: int) -> tuple[int, int]:
    """Per-instance weights (green, blue) that send `percent` of the requests to `green`
    instances and the rest to `blue` ones; each within 1..FULL_WEIGHT unless it gets none."""
    if percent >= 100 or blue == 0:
        return FULL_WEIGHT, 0
    if percent <= 0 or green == 0:
        return 0, FULL_WEIGHT
    green_share, blue_share = percent * blue, (100 - percent) * green
    scale = FULL_WEIGHT / max(green_share, blue_share)
    return max(1, round(green_share * scale)), max(1, round(blue_share * scale))


class Act(StrEnum):
    WAIT = "Wait"
    PROVISION = "Provision"
    START_GREEN = "StartGreen"
    READY = "Ready"
    REROUTE = "Reroute"
    STEP = "Step"
    BLOCK_BLUE = "BlockBlue"
    TERMINATION_WAIT = "TerminationWait"
    TERMINATE = "Terminate"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class BlueGreenSnapshot:
    green: tuple[tuple[str, TargetStatus], ...]
    blue: tuple[tuple[str, TargetStatus], ...]
    minimum_healthy: int
    """M of the replacement fleet (the deployment config applies to it)."""
    config: BlueGreenConfig
    steps: tuple[int, ...]
    step_interval_seconds: int
    status: DeploymentStatus
    now: datetime
    stopping: bool = False
    provision_requested_at: datetime | None = None
    continued: bool = False
    ready_until: datetime | None = None
    traffic_step: int = -1
    """Index into `steps` of the traffic now routed; -1 before the reroute."""
    step_started_at: datetime | None = None
    terminate_at: datetime | None = None
    retired: bool = False
    """The original instances were retired (TERMINATE done)."""
    alarm_gated: bool = False
    """The deployment watches alarms: a traffic step and the retirement of the originals wait
    until the alarms were read clear past the time they are due."""
    alarms_clear_at: datetime | None = None

    def alarms_clear(self, due: datetime) -> bool:
        """Whether nothing fired up to `due` (always, without alarms)."""
        return not self.alarm_gated or (
            self.alarms_clear_at is not None and self.alarms_clear_at >= due
        )


@dataclass(frozen=True)
class BlueGreenDecision:
    act: Act
    start: tuple[str, ...] = ()
    """Targets to start (START_GREEN, BLOCK_BLUE)."""
    wake_at: datetime | None = None
    """When to decide again (WAIT, READY, TERMINATION_WAIT)."""
    step: int = -1
    """The traffic step to move to (REROUTE: 0, STEP)."""
    reason: str = ""
    """Why it failed or stopped."""
    terminate: tuple[str, ...] = field(default=())
    """Original instances to retire (TERMINATE)."""


def decide_blue_green(s: BlueGreenSnapshot) -> BlueGreenDecision:
    """What a blue/green deployment does next, from its stored state alone."""
    in_flight = any(st is TargetStatus.IN_PROGRESS for _, st in (*s.green, *s.blue))
    if s.stopping:
        return BlueGreenDecision(Act.WAIT if in_flight else Act.STOPPED)
    if not s.green:
        return _without_green(s)
    if s.traffic_step < 0:
        return _before_reroute(s)
    if in_flight:
        return BlueGreenDecision(Act.WAIT)
    if not any(st is TargetStatus.SUCCEEDED for _, st in s.green):
        return BlueGreenDecision(
            Act.FAILED, reason="No replacement instance could be registered with the load balancer."
        )
    if s.traffic_step < len(s.steps) - 1:
        due = (s.step_started_at or s.now) + timedelta(seconds=s.step_interval_seconds)
        if s.now < due:
            return BlueGreenDecision(Act.WAIT, wake_at=due)
        if not s.alarms_clear(due):  # the alarm watch says so when it has read them
            return BlueGreenDecision(Act.WAIT, wake_at=s.now + ALARM_RECHECK)
        return BlueGreenDecision(Act.STEP, step=s.traffic_step + 1)
    return _after_reroute(s)


def _without_green(s: BlueGreenSnapshot) -> BlueGreenDecision:
    if s.config.green_fleet is not GreenFleetAction.PROVISION:
        return BlueGreenDecision(Act.FAILED, reason="The replacement fleet has no instances.")
    if s.provision_requested_at is None:
        return BlueGreenDecision(Act.PROVISION)
    deadline = s.provision_requested_at + timedelta(seconds=s.config.provision_timeout_seconds)
    if s.now >= deadline:
        return BlueGreenDecision(
            Act.FAILED,
            reason=(
                f"The provisioner {s.config.provisioner!r} did not bring the replacement fleet "
                f"online within {s.config.provision_timeout_seconds}s."
            ),
        )
    return BlueGreenDecision(Act.WAIT, wake_at=deadline)


def _before_reroute(s: BlueGreenSnapshot) -> BlueGreenDecision:
    """Install on green (READY there means installed), then the ready wait, then reroute."""
    installed = tuple(
        (name, TargetStatus.SUCCEEDED if st is TargetStatus.READY else st) for name, st in s.green
    )
    rollout = decide(RolloutSnapshot(targets=installed, minimum_healthy=s.minimum_healthy))
    if rollout.outcome is Outcome.CONTINUE:
        return BlueGreenDecision(Act.START_GREEN if rollout.start else Act.WAIT, rollout.start)
    if rollout.outcome is Outcome.FAILED:
        return BlueGreenDecision(Act.FAILED, reason=rollout.reason)
    if s.config.ready_action is ReadyAction.STOP_DEPLOYMENT and not s.continued:
        if s.status is not DeploymentStatus.READY:
            until = s.now + timedelta(seconds=s.config.ready_wait_seconds)
            return BlueGreenDecision(Act.READY, wake_at=until)
        if s.ready_until is not None and s.now >= s.ready_until:
            return BlueGreenDecision(
                Act.STOPPED,
                reason="Nobody continued the deployment before its ready wait time expired.",
            )
        return BlueGreenDecision(Act.WAIT, wake_at=s.ready_until)
    return BlueGreenDecision(Act.REROUTE, step=0)


def _after_reroute(s: BlueGreenSnapshot) -> BlueGreenDecision:
    """All traffic is on green: blue leaves the load balancer, then waits and is retired."""
    pending = tuple(name for name, st in s.blue if st is TargetStatus.PENDING)
    if pending:
        return BlueGreenDecision(Act.BLOCK_BLUE, start=pending)
    failed = sum(st is TargetStatus.FAILED for _, st in s.blue)
    if failed:
        return BlueGreenDecision(
            Act.FAILED,
            reason=(
                f"{failed} original instance(s) could not be deregistered from the load balancer."
            ),
        )
    if s.config.blue_action is BlueInstanceAction.TERMINATE and s.blue and not s.retired:
        if s.terminate_at is None and s.config.termination_wait_seconds:
            until = s.now + timedelta(seconds=s.config.termination_wait_seconds)
            return BlueGreenDecision(Act.TERMINATION_WAIT, wake_at=until)
        if s.terminate_at is not None and s.now < s.terminate_at:
            return BlueGreenDecision(Act.WAIT, wake_at=s.terminate_at)
        if s.terminate_at is not None and not s.alarms_clear(s.terminate_at):
            return BlueGreenDecision(Act.WAIT, wake_at=s.now + ALARM_RECHECK)
        return BlueGreenDecision(Act.TERMINATE, terminate=tuple(name for name, _ in s.blue))
    return BlueGreenDecision(Act.SUCCEEDED)
