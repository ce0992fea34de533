"""What an agent's result does to its event's record — pure, so the rules are tested without a
database and the store writes a burst of results (a thousand hosts at once) in one statement.

A result is recorded once, for an event that is running or that its agent held (sent after
another event of its chain, not started here yet). A held event started on the host as the one
before it ended there, if that one passed; a failure of a held event otherwise is the fleet's
(its agent went offline or missed a deadline holding it), recorded as it came; a success after
an event that did not pass is no run of this deployment's and is not recorded — unless the
fleet failed that one for an agent it lost, which may have run on (its reports re-sent after a
restart say so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deploy.lifecycle import LifecycleEvent, passes
from services.core.diagnostics import Diagnostics
from services.orchestrator.decision import FLEET_VERDICTS
from services.orchestrator.domain import EventRef
from services.orchestrator.states import EventStatus, event_transition


@dataclass(frozen=True)
class EventEnded:
    """An agent (or the traffic service, through the orchestrator) reported an event's end."""

    ref: EventRef
    succeeded: bool
    diagnostics: Diagnostics
    sequence: int = 0
    """The fleet's update sequence (0: not from the fleet)."""
    skipped: bool = False
    """It never started on the host (cancelled while held, or its chain was broken)."""
    at: datetime | None = None
    """When the fleet heard it (None: now) — a chain's results may be recorded together."""

    @property
    def status(self) -> str:
        return "Skipped" if self.skipped else "Succeeded" if self.succeeded else "Failed"


@dataclass
class EventRecord:
    """What the store keeps of an event that a result may change (changed in place)."""

    name: LifecycleEvent
    status: EventStatus
    started_at: datetime | None
    ended_at: datetime | None
    error_code: str | None
    diagnostics: Diagnostics | None = None
    """Set when a result was recorded."""


EventKey = tuple[str, int]
"""An event of the deployment: its instance's name and its position."""


def record_result(
    events: dict[EventKey, EventRecord],
    ended: EventEnded,
    ignore_stop_failures: bool,
    now: datetime,
) -> float | None:
    """Record `ended` in `events` (which must hold its event and the one before it); returns
    the seconds the event ran, or None when the result changes nothing (a report re-sent after
    a reconnect, or a held event's success after one that did not pass)."""
    ref = ended.ref
    event = events.get((ref.instance_name, ref.position))
    if event is None or event.status not in (EventStatus.IN_PROGRESS, EventStatus.PENDING):
        return None
    started = event.started_at
    if event.status is EventStatus.PENDING and not ended.skipped:
        previous = events.get((ref.instance_name, ref.position - 1))
        started = _held_start(previous, ended, ignore_stop_failures, now)
        if started is None:
            return None
    status = (
        EventStatus.SKIPPED
        if ended.skipped
        else EventStatus.SUCCEEDED
        if ended.succeeded
        else EventStatus.FAILED
    )
    event.status = event_transition(event.status, status)
    at = max(ended.at or now, started) if started else ended.at or now
    event.started_at, event.ended_at = started, at
    event.diagnostics = ended.diagnostics
    event.error_code = ended.diagnostics.error_code
    return (at - started).total_seconds() if started else 0.0


def _held_start(
    previous: EventRecord | None, ended: EventEnded, ignore_stop_failures: bool, now: datetime
) -> datetime | None:
    """When a held event started on its host (see the module's docstring); None: its result
    is not recorded."""
    if previous is not None and previous.status in (EventStatus.SUCCEEDED, EventStatus.FAILED):
        succeeded = previous.status is EventStatus.SUCCEEDED
        if passes(previous.name, succeeded, ignore_stop_failures):
            return previous.ended_at
        if previous.error_code in FLEET_VERDICTS:  # the fleet's, not the host's: it went on
            return ended.at or now
    if not ended.succeeded:
        return ended.at or now
    return None
