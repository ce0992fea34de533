"""The fleet's domain: instances, commands and the updates agents report about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.core.diagnostics import Diagnostics
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


class CommandState(StrEnum):
    """Where a dispatched command is: not yet started by the agent, running, or finished."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


COMMAND_TRANSITIONS: dict[CommandState, frozenset[CommandState]] = {
    # A report that is not a move in this table (a duplicate after a reconnect) is ignored.
    CommandState.PENDING: frozenset(
        {CommandState.IN_PROGRESS, CommandState.SUCCEEDED, CommandState.FAILED}
    ),
    CommandState.IN_PROGRESS: frozenset({CommandState.SUCCEEDED, CommandState.FAILED}),
    CommandState.SUCCEEDED: frozenset(),
    CommandState.FAILED: frozenset(),
}


class UpdateKind(StrEnum):
    STARTED = "Started"
    FINISHED = "Finished"


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
