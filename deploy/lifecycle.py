"""CodeDeploy's lifecycle vocabulary, shared by the services, the agent and the CLI: the events,
one table of what each one is (who runs it, whose scripts, its short label), the orders they
run in, and the closed set of reasons an event fails."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum


class LifecycleEvent(StrEnum):
    """An event of an EC2/on-premises deployment, by its AppSpec name."""

    APPLICATION_STOP = "ApplicationStop"
    DOWNLOAD_BUNDLE = "DownloadBundle"
    BEFORE_INSTALL = "BeforeInstall"
    INSTALL = "Install"
    AFTER_INSTALL = "AfterInstall"
    APPLICATION_START = "ApplicationStart"
    VALIDATE_SERVICE = "ValidateService"
    BEFORE_BLOCK_TRAFFIC = "BeforeBlockTraffic"
    BLOCK_TRAFFIC = "BlockTraffic"
    AFTER_BLOCK_TRAFFIC = "AfterBlockTraffic"
    BEFORE_ALLOW_TRAFFIC = "BeforeAllowTraffic"
    ALLOW_TRAFFIC = "AllowTraffic"
    AFTER_ALLOW_TRAFFIC = "AfterAllowTraffic"


class RunBy(Enum):
    """Who carries an event out."""

    SCRIPTS = "scripts"
    """The agent, running the appspec's hook scripts for it."""
    AGENT = "agent"
    """The agent itself (fetching the bundle, copying its files)."""
    SERVER = "server"
    """The orchestrator, through the traffic service: never sent to an agent."""


class ScriptSource(StrEnum):
    """Which revision a hook event's scripts come from."""

    CURRENT = "current"
    """The revision being deployed."""
    LAST_SUCCESSFUL = "last-successful"
    """The revision last installed successfully in the deployment group (none: a no-op)."""


@dataclass(frozen=True)
class EventTraits:
    """What an event is, wherever it is handled."""

    run_by: RunBy
    label: str
    """Short enough for a column of `deploy watch`."""
    scripts: ScriptSource | None = None
    """Whose scripts a hook event runs (None: it runs none)."""

    @property
    def ignorable_on_stop_failure(self) -> bool:
        """Whether --ignore-application-stop-failures lets the instance go on past its failure:
        the events that run the last successful revision's scripts, which may be the broken
        part a new revision comes to replace."""
        return self.scripts is ScriptSource.LAST_SUCCESSFUL


_E = LifecycleEvent
TRAITS: Mapping[LifecycleEvent, EventTraits] = {
    _E.APPLICATION_STOP: EventTraits(RunBy.SCRIPTS, "AppStop", ScriptSource.LAST_SUCCESSFUL),
    _E.DOWNLOAD_BUNDLE: EventTraits(RunBy.AGENT, "Download"),
    _E.BEFORE_INSTALL: EventTraits(RunBy.SCRIPTS, "BeforeInst", ScriptSource.CURRENT),
    _E.INSTALL: EventTraits(RunBy.AGENT, "Install"),
    _E.AFTER_INSTALL: EventTraits(RunBy.SCRIPTS, "AfterInst", ScriptSource.CURRENT),
    _E.APPLICATION_START: EventTraits(RunBy.SCRIPTS, "AppStart", ScriptSource.CURRENT),
    _E.VALIDATE_SERVICE: EventTraits(RunBy.SCRIPTS, "Validate", ScriptSource.CURRENT),
    _E.BEFORE_BLOCK_TRAFFIC: EventTraits(RunBy.SCRIPTS, "BeforeBlk", ScriptSource.LAST_SUCCESSFUL),
    _E.BLOCK_TRAFFIC: EventTraits(RunBy.SERVER, "Block"),
    _E.AFTER_BLOCK_TRAFFIC: EventTraits(RunBy.SCRIPTS, "AfterBlk", ScriptSource.LAST_SUCCESSFUL),
    _E.BEFORE_ALLOW_TRAFFIC: EventTraits(RunBy.SCRIPTS, "BeforeAlw", ScriptSource.CURRENT),
    _E.ALLOW_TRAFFIC: EventTraits(RunBy.SERVER, "Allow"),
    _E.AFTER_ALLOW_TRAFFIC: EventTraits(RunBy.SCRIPTS, "AfterAllow", ScriptSource.CURRENT),
}

IN_PLACE_EVENTS = (
    _E.APPLICATION_STOP,
    _E.DOWNLOAD_BUNDLE,
    _E.BEFORE_INSTALL,
    _E.INSTALL,
    _E.AFTER_INSTALL,
    _E.APPLICATION_START,
    _E.VALIDATE_SERVICE,
)
"""An in-place deployment without a load balancer, in order (DESIGN §4); a blue/green
replacement instance runs them too, then ALLOW_TRAFFIC_EVENTS."""
BLOCK_TRAFFIC_EVENTS = (_E.BEFORE_BLOCK_TRAFFIC, _E.BLOCK_TRAFFIC, _E.AFTER_BLOCK_TRAFFIC)
"""An instance leaving its load balancer: first in place, all a blue/green original runs."""
ALLOW_TRAFFIC_EVENTS = (_E.BEFORE_ALLOW_TRAFFIC, _E.ALLOW_TRAFFIC, _E.AFTER_ALLOW_TRAFFIC)
"""An instance joining its load balancer: last in place and on a blue/green replacement."""

SCRIPTED_EVENTS = tuple(event for event in LifecycleEvent if TRAITS[event].scripts)
"""The events an appspec may give hooks, in the order above."""
EVENT_NAMES: Mapping[str, LifecycleEvent] = {event.value: event for event in LifecycleEvent}
"""An event by its name, for names read from the wire or the database."""


def in_place_events(with_load_balancer: bool) -> tuple[LifecycleEvent, ...]:
    """An in-place deployment's events: with a load balancer the instance leaves it first and
    rejoins it last."""
    if not with_load_balancer:
        return IN_PLACE_EVENTS
    return BLOCK_TRAFFIC_EVENTS + IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS


CUSTOM_EVENT = EventTraits(RunBy.SCRIPTS, "", ScriptSource.CURRENT)
"""An event CodeDeploy does not define (codedeploy-local runs any event named in --events): a
hook event of the revision being deployed."""


def traits_of(name: str) -> EventTraits:
    """The traits of the event of this name (CUSTOM_EVENT for a name that is no event)."""
    event = EVENT_NAMES.get(name)
    return TRAITS[event] if event is not None else CUSTOM_EVENT


def label(name: str) -> str:
    """An event's short label; a name that is no event is shown as it is."""
    return traits_of(name).label or name


def passes(event: LifecycleEvent, succeeded: bool, ignore_stop_failures: bool) -> bool:
    """Whether the instance goes on after `event` ended so: the one rule by which the
    orchestrator starts an instance's next event and an agent runs the next one of a chain."""
    return succeeded or (ignore_stop_failures and TRAITS[event].ignorable_on_stop_failure)


class ErrorCode(StrEnum):
    """Why an event failed: CodeDeploy's LifecycleErrorCode names, plus the checks the agent
    makes before any script runs. Mirrors deploy.v1.LifecycleErrorCode."""

    SUCCESS = "Success"
    SCRIPT_MISSING = "ScriptMissing"
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
    SCRIPT_TIMED_OUT = "ScriptTimedOut"
    SCRIPT_FAILED = "ScriptFailed"
    UNKNOWN_ERROR = "UnknownError"
    INVALID_BUNDLE = "InvalidBundle"
    INVALID_APPSPEC = "InvalidAppSpec"
    INSTALL_FAILED = "InstallFailed"
    AGENT_ISSUE = "AgentIssue"
    """Set by the fleet: the agent went offline (or was told to stop) while the event was in
    flight."""
    TIMEOUT = "Timeout"
    """Set by the fleet: the agent did not acknowledge the event, or it did not end, in time."""
