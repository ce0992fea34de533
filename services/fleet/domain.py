"""The fleet's domain: instances, commands and the updates agents report about them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from deploy.hookoutput import OutputLine
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.tags import Tag


class Health(StrEnum):
    ONLINE = "Online"
    OFFLINE = "Offline"


@dataclass(frozen=True)
class Instance:
    name: str
    tags: tuple[Tag, ...]
    registered_at: datetime
    deregistered_at: datetime | None = None
    last_seen_at: datetime | None = None
    address: str = ""
    """The host the agent last connected from."""

    @property
    def registered(self) -> bool:
        return self.deregistered_at is None


@dataclass(frozen=True)
class Sighting:
    """An agent heard from at `at`: connecting (from `address`) or leaving (address "")."""

    name: str
    at: datetime
    address: str = ""


class CommandState(StrEnum):
    """Where a dispatched command is: not yet started by the agent, running, or finished."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    """The agent never started it: the command it was to run after did not pass, or it was
    cancelled while it waited."""


COMMAND_TRANSITIONS: dict[CommandState, frozenset[CommandState]] = {
    # A report that is not a move in this table (a duplicate after a reconnect) is ignored.
    CommandState.PENDING: frozenset(
        {
            CommandState.IN_PROGRESS,
            CommandState.SUCCEEDED,
            CommandState.FAILED,
            CommandState.SKIPPED,
        }
    ),
    CommandState.IN_PROGRESS: frozenset({CommandState.SUCCEEDED, CommandState.FAILED}),
    CommandState.SUCCEEDED: frozenset(),
    CommandState.FAILED: frozenset(),
    CommandState.SKIPPED: frozenset(),
}
FINISHED_COMMAND = frozenset(s for s, after in COMMAND_TRANSITIONS.items() if not after)


class UpdateKind(StrEnum):
    STARTED = "Started"
    FINISHED = "Finished"


class Stored(StrEnum):
    """What became of a command the fleet was given."""

    ADDED = "Added"
    KNOWN = "Known"
    """One with its id was stored already: nothing changed (dispatch is idempotent)."""
    UNREGISTERED = "Unregistered"
    """Its instance is not registered: not stored."""


@dataclass(frozen=True)
class NewCommand:
    """A command to store for an instance's agent."""

    id: str
    instance_name: str
    payload: bytes
    deadline: datetime
    """When its agent must have acknowledged it."""
    deployment_id: str | None = None


@dataclass(frozen=True)
class Report:
    """What an agent (or the fleet, for it) says about a command, to be stored."""

    instance_name: str
    command_id: str
    kind: UpdateKind
    state: CommandState
    diagnostics: Diagnostics
    deadline: datetime | None = None
    """The command's next deadline (None once it has finished)."""


OUTPUT_LINES_PER_MESSAGE = 100
"""Lines of hook output taken from one message of an agent (it sends at most 100)."""
OUTPUT_LINES_PER_COMMAND = 1100
"""Lines of hook output kept per command in all (the agent streams 1,000 and its notes)."""


@dataclass(frozen=True)
class Output:
    """Lines a running command's hooks wrote, as its agent sent them, to be stored with the
    agent's reports (in the order it sent them: never after the command's end)."""

    instance_name: str
    command_id: str
    lines: tuple[OutputLine, ...]


@dataclass(frozen=True)
class CommandUpdate:
    """One thing an agent reported about a command, numbered in the order the fleet stored it."""

    sequence: int
    command_id: str
    instance_name: str
    kind: UpdateKind
    state: CommandState
    at: datetime
    diagnostics: Diagnostics = field(default_factory=Diagnostics)


MAX_EVENT_SECONDS = 3600
"""CodeDeploy's limit on one lifecycle event: its scripts' timeouts together."""


MISSED_HEARTBEATS_OFFLINE = 3


@dataclass(frozen=True)
class HeartbeatPolicy:
    """How often an agent heartbeats, and how long its silence may last before its instance
    is offline: MISSED_HEARTBEATS_OFFLINE intervals. An agent is given the configured interval
    when it connects — longer, once the open streams would otherwise send more than
    `max_per_second` heartbeats a second between them (as Nomad stretches its heartbeat TTL
    with the cluster's size): each costs the server the same, whoever sends it, so 10,000
    agents cost what 1,250 do at the configured 5 s; their offline window grows with it."""

    interval_seconds: int = 5
    max_per_second: int = 250

    def interval_for(self, open_streams: int) -> int:
        """The interval an agent connecting beside `open_streams` others is given."""
        return max(self.interval_seconds, math.ceil((open_streams + 1) / self.max_per_second))

    @staticmethod
    def window(interval_seconds: int) -> int:
        """How long an agent given `interval_seconds` may be silent and still be online."""
        return interval_seconds * MISSED_HEARTBEATS_OFFLINE


@dataclass(frozen=True)
class DeadlinePolicy:
    """How long a command may wait for each move of its agent before the fleet fails it.

    An agent must acknowledge a command within `ack_seconds` of its dispatch (CodeDeploy
    allows five minutes); a started event must end within the time its scripts may take
    (as the agent reports it, at most an hour) plus `grace_seconds`; a cancelled one within
    `cancel_seconds`. An instance whose agent has been silent for its offline window
    (HeartbeatPolicy) fails its unfinished commands at once.
    """

    ack_seconds: int = 60
    grace_seconds: int = 60
    cancel_seconds: int = 10

    def start_deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.ack_seconds)

    def end_deadline(self, now: datetime, timeout_seconds: int) -> datetime:
        """`timeout_seconds` 0 (not known) or above the limit counts as the limit."""
        budget = min(timeout_seconds or MAX_EVENT_SECONDS, MAX_EVENT_SECONDS)
        return now + timedelta(seconds=budget + self.grace_seconds)

    def cancel_deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.cancel_seconds)


@dataclass(frozen=True)
class UnfinishedCommand:
    """A command its agent has not finished: not yet acknowledged (PENDING) or running."""

    id: str
    instance_name: str
    state: CommandState


def missed_deadline(command: UnfinishedCommand) -> Diagnostics:
    """Why the fleet failed a command whose deadline passed."""
    if command.state is CommandState.PENDING:
        what = "did not acknowledge the lifecycle event within its start deadline"
    else:
        what = "did not finish the lifecycle event within its end deadline"
    return Diagnostics(
        error_code=ErrorCode.TIMEOUT,
        message=f"Failed: the agent on {command.instance_name} {what}",
    )


def agent_offline(instance_name: str, silent_seconds: int) -> Diagnostics:
    """Why the fleet failed the commands of an instance whose agent went silent."""
    return Diagnostics(
        error_code=ErrorCode.AGENT_ISSUE,
        message=(
            f"Failed: the agent on {instance_name} went offline (no stream or heartbeat for "
            f"{silent_seconds} s) while the lifecycle event was in flight"
        ),
    )


def agent_lost(instance_name: str) -> Diagnostics:
    """Why a started command failed that the instance's agent no longer holds."""
    return Diagnostics(
        error_code=ErrorCode.AGENT_ISSUE,
        message=(
            f"Failed: the agent on {instance_name} no longer runs the lifecycle event (it "
            "restarted, or its report was lost with it); its outcome is unknown"
        ),
    )


def stopped_offline(instance_name: str, reason: str) -> Diagnostics:
    """Why a cancelled command of an offline instance failed without its agent's answer."""
    return Diagnostics(
        error_code=ErrorCode.AGENT_ISSUE,
        message=f"Failed: {reason}; the agent on {instance_name} is offline",
    )


@dataclass(frozen=True)
class StoredOutput:
    """A line of hook output, numbered in the order the fleet stored it."""

    sequence: int
    command_id: str
    line: OutputLine
