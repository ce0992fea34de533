"""The fleet's liveness rules, pure: deadlines of a command, why the fleet failed one, and how
long an instance has been silent."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from deploy.lifecycle import ErrorCode
from services.fleet.domain import (
    MAX_EVENT_SECONDS,
    CommandState,
    DeadlinePolicy,
    HeartbeatPolicy,
    UnfinishedCommand,
    agent_offline,
    missed_deadline,
    stopped_offline,
)
from services.fleet.sessions import SessionRegistry

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
POLICY = DeadlinePolicy(ack_seconds=60, grace_seconds=30, cancel_seconds=10)


@pytest.mark.parametrize(
    ("reported", "allowed"),
    [
        (0, MAX_EVENT_SECONDS + 30),  # not known: the longest an event may take
        (45, 45 + 30),
        (MAX_EVENT_SECONDS * 5, MAX_EVENT_SECONDS + 30),  # capped at an hour
    ],
)
def test_a_started_event_ends_within_its_scripts_time_plus_the_grace(
    reported: int, allowed: int
) -> None:
    assert POLICY.end_deadline(NOW, reported) == NOW + timedelta(seconds=allowed)


def test_start_and_cancel_deadlines_follow_the_policy() -> None:
    assert POLICY.start_deadline(NOW) == NOW + timedelta(seconds=60)
    assert POLICY.cancel_deadline(NOW) == NOW + timedelta(seconds=10)


@pytest.mark.parametrize(
    ("state", "says"),
    [
        (CommandState.PENDING, "did not acknowledge"),
        (CommandState.IN_PROGRESS, "did not finish"),
    ],
)
def test_a_missed_deadline_is_a_timeout_naming_the_agent_and_the_move_it_missed(
    state: CommandState, says: str
) -> None:
    diagnostics = missed_deadline(UnfinishedCommand("c", "web-1", state))
    assert diagnostics.error_code is ErrorCode.TIMEOUT
    assert "web-1" in diagnostics.message and says in diagnostics.message


def test_an_offline_agent_is_an_agent_issue_naming_the_instance() -> None:
    offline = agent_offline("web-2", 15)
    assert offline.error_code is ErrorCode.AGENT_ISSUE
    assert "web-2 went offline" in offline.message and "15 s" in offline.message
    stopped = stopped_offline("web-3", "the deployment was stopped")
    assert stopped.error_code is ErrorCode.AGENT_ISSUE
    assert stopped.message == ("Failed: the deployment was stopped; the agent on web-3 is offline")


def test_silence_counts_from_the_last_heartbeat_or_from_the_process_start() -> None:
    sessions = SessionRegistry()
    assert sessions.silent_seconds("never-seen") < 60  # this process only just started
    session = sessions.open("web-1")
    session.last_heartbeat = time.monotonic() - 100
    assert sessions.silent_seconds("web-1") >= 100  # open, but heartbeats stopped
    assert sessions.close(session)
    assert sessions.silent_seconds("web-1") >= 100  # closed: still from its last heartbeat
    newer = sessions.open("web-1")
    assert sessions.silent_seconds("web-1") < 60
    older = sessions.open("web-1")  # a reconnect replaces the stream
    assert not sessions.close(newer)  # the replaced stream's end changes nothing
    assert sessions.silent_seconds("web-1") < 60
    assert sessions.close(older)


def test_a_newly_registered_instance_is_silent_from_its_registration() -> None:
    sessions = SessionRegistry()
    sessions._started -= 100  # a fleet that has run for a while
    assert sessions.silent_seconds("late-1") >= 100
    sessions.registered("late-1")
    assert sessions.silent_seconds("late-1") < 60  # its agent gets the offline window
    session = sessions.open("late-1")
    session.last_heartbeat = time.monotonic() - 100
    sessions.registered("late-1")  # re-registered while connected: its stream decides
    assert sessions.silent_seconds("late-1") >= 100


@pytest.mark.parametrize(
    ("open_streams", "interval"),
    [(0, 5), (1249, 5), (1250, 6), (9999, 40)],
)
def test_the_heartbeat_interval_stretches_once_the_fleet_would_send_more_than_the_most(
    open_streams: int, interval: int
) -> None:
    heartbeats = HeartbeatPolicy(interval_seconds=5, max_per_second=250)
    assert heartbeats.interval_for(open_streams) == interval
    assert heartbeats.window(interval) == 3 * interval


def test_an_agent_given_a_longer_interval_gets_a_longer_offline_window() -> None:
    sessions = SessionRegistry(HeartbeatPolicy(interval_seconds=1, max_per_second=1))
    first, _, third = (sessions.open(name) for name in ("web-1", "web-2", "web-3"))
    assert (first.heartbeat_seconds, third.heartbeat_seconds) == (1, 3)
    now = time.monotonic()
    first.last_heartbeat = third.last_heartbeat = now - 5
    assert sessions.is_offline("web-1") and not sessions.is_online("web-1")  # 3 s window
    assert sessions.is_online("web-3") and sessions.offline_window("web-3") == 9
    assert sessions.close(third)  # closed: still judged by the interval it was given
    assert sessions.offline_window("web-3") == 9 and not sessions.is_offline("web-3")
    assert not sessions.is_online("web-3")  # no stream, so not online
    assert sessions.offline_window("never-seen") == 3
