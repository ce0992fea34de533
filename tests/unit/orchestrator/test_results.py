"""Which agent results are recorded, and with which start and end (results.record_result): a
running event's, a held event's after the one before it passed (it started as that one
ended), a fleet verdict on a held event — never a re-sent report, nor a success after an event
that did not pass on its host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.core.diagnostics import Diagnostics, ErrorCode
from services.orchestrator.domain import EventRef
from services.orchestrator.results import EventEnded, EventKey, EventRecord, record_result
from services.orchestrator.states import EventStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=10)
NAMES = ("ApplicationStop", "DownloadBundle", "BeforeInstall")
RUNNING, HELD = EventStatus.IN_PROGRESS, EventStatus.PENDING


def events(*statuses: EventStatus, code: ErrorCode | None = None) -> dict[EventKey, EventRecord]:
    """web-1's events in these states; an ended one ended at T0 + its position + 1 s (with
    `code`, if it failed)."""
    records = {}
    for position, status in enumerate(statuses):
        ended = status in (EventStatus.SUCCEEDED, EventStatus.FAILED)
        records["web-1", position] = EventRecord(
            NAMES[position],
            status,
            T0 + timedelta(seconds=position) if status is not HELD else None,
            T0 + timedelta(seconds=position + 1) if ended else None,
            code if status is EventStatus.FAILED else None,
        )
    return records


def result(position: int, succeeded: bool = True, skipped: bool = False) -> EventEnded:
    ref = EventRef("d-1", "web-1", position, NAMES[position])
    code = None if succeeded or skipped else ErrorCode.SCRIPT_FAILED
    at = T0 + timedelta(seconds=5)
    return EventEnded(ref, succeeded, Diagnostics(error_code=code), skipped=skipped, at=at)


def test_a_running_events_result_is_recorded_with_how_long_it_ran() -> None:
    recorded = events(EventStatus.SUCCEEDED, RUNNING)
    assert record_result(recorded, result(1), False, NOW) == 4.0
    assert recorded["web-1", 1].status is EventStatus.SUCCEEDED
    assert recorded["web-1", 1].ended_at == T0 + timedelta(seconds=5)


def test_a_report_sent_again_changes_nothing() -> None:
    recorded = events(EventStatus.SUCCEEDED, RUNNING)
    record_result(recorded, result(1), False, NOW)
    assert record_result(recorded, result(1, succeeded=False), False, NOW) is None
    assert recorded["web-1", 1].status is EventStatus.SUCCEEDED


def test_a_held_event_started_as_the_one_before_it_ended() -> None:
    recorded = events(EventStatus.SUCCEEDED, HELD)
    assert record_result(recorded, result(1), False, NOW) == 4.0
    assert recorded["web-1", 1].started_at == T0 + timedelta(seconds=1)


def test_a_held_events_success_after_a_failure_on_its_host_is_not_recorded() -> None:
    recorded = events(EventStatus.FAILED, HELD, code=ErrorCode.SCRIPT_FAILED)
    assert record_result(recorded, result(1), False, NOW) is None
    assert recorded["web-1", 1].status is HELD


def test_an_ignored_application_stop_failure_lets_the_held_event_run_after_it() -> None:
    recorded = events(EventStatus.FAILED, HELD, code=ErrorCode.SCRIPT_FAILED)
    assert record_result(recorded, result(1), True, NOW) == 4.0
    assert recorded["web-1", 1].started_at == T0 + timedelta(seconds=1)


def test_a_held_event_is_recorded_after_the_fleet_failed_the_one_before() -> None:
    """The fleet failed the event before for an agent it lost; the host ran on (its reports,
    re-sent after a restart, say so)."""
    recorded = events(EventStatus.FAILED, HELD, code=ErrorCode.AGENT_ISSUE)
    assert record_result(recorded, result(1), False, NOW) == 0.0
    assert recorded["web-1", 1].status is EventStatus.SUCCEEDED


def test_the_fleets_failure_of_a_held_event_is_recorded_as_it_came() -> None:
    recorded = events(EventStatus.FAILED, HELD, code=ErrorCode.SCRIPT_FAILED)
    assert record_result(recorded, result(1, succeeded=False), False, NOW) == 0.0
    assert recorded["web-1", 1].status is EventStatus.FAILED
    assert recorded["web-1", 1].error_code is ErrorCode.SCRIPT_FAILED


def test_a_held_event_that_never_started_is_skipped() -> None:
    recorded = events(EventStatus.FAILED, HELD, code=ErrorCode.SCRIPT_FAILED)
    assert record_result(recorded, result(1, skipped=True), False, NOW) == 0.0
    assert recorded["web-1", 1].status is EventStatus.SKIPPED
    assert recorded["web-1", 1].started_at is None


def test_a_result_of_an_event_not_on_record_changes_nothing() -> None:
    recorded = events(RUNNING)
    assert record_result(recorded, result(2), False, NOW) is None
