"""The alarm gate, pure: what a reading of Prometheus means for a deployment, and how the
alarms are read (against a source that answers as told)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deploy.v1 import orchestrator_pb2 as pb
from services.core.errors import InvalidArgument
from services.orchestrator.alarms import (
    POLL_FAILURES_ALLOWED,
    AlarmsUnreadable,
    Reading,
    judge,
    read,
)
from services.orchestrator.domain import DeploymentErrorCode
from services.orchestrator.group_convert import alarms_from_proto
from services.orchestrator.groups import AlarmConfig
from services.orchestrator.happenings import ActFailed, AlarmFired, AlarmsClear

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WATCHED = AlarmConfig(enabled=True, alarms=("HighErrorRate", "Latency"))


class Answers:
    """An alarm source that answers as it is told (or cannot be reached)."""

    def __init__(self, fired: set[str], rules: set[str], down: bool = False) -> None:
        self._fired, self._rules, self._down = fired, rules, down
        self.windows: list[int] = []

    async def fired(self, window_seconds: int) -> set[str]:
        self.windows.append(window_seconds)
        if self._down:
            raise AlarmsUnreadable("connection refused")
        return self._fired

    async def rules(self) -> set[str]:
        if self._down:
            raise AlarmsUnreadable("connection refused")
        return self._rules


def test_a_fired_alarm_stops_and_a_clear_reading_says_until_when() -> None:
    assert judge(WATCHED, Reading(NOW, fired=("Latency",)), 0) == AlarmFired(("Latency",))
    assert judge(WATCHED, Reading(NOW), 0) == AlarmsClear(NOW)


def test_unreadable_alarms_fail_after_a_few_tries_unless_ignored() -> None:
    unreadable = Reading(NOW, problem="connection refused")
    assert judge(WATCHED, unreadable, POLL_FAILURES_ALLOWED - 1) is None
    failed = judge(WATCHED, unreadable, POLL_FAILURES_ALLOWED)
    assert isinstance(failed, ActFailed)
    assert failed.error.code is DeploymentErrorCode.ALARM_ACTIVE
    assert "connection refused" in failed.error.message
    ignoring = AlarmConfig(enabled=True, ignore_poll_failure=True, alarms=("Latency",))
    assert judge(ignoring, unreadable, POLL_FAILURES_ALLOWED) == AlarmsClear(NOW)


async def test_a_reading_covers_the_time_since_the_last_one_and_only_configured_alarms() -> None:
    source = Answers(fired={"Latency", "SomebodyElses"}, rules={"HighErrorRate", "Latency"})
    reading = await read(source, WATCHED, NOW - timedelta(seconds=7.2), NOW, check_rules=True)
    assert reading.fired == ("Latency",)
    assert source.windows == [9]  # the whole time since, rounded up, and a second more


async def test_an_alarm_that_is_no_alerting_rule_makes_the_reading_a_problem() -> None:
    source = Answers(fired=set(), rules={"Latency"})
    reading = await read(source, WATCHED, NOW, NOW, check_rules=True)
    assert reading.problem == "no alerting rule named HighErrorRate in Prometheus"
    down = await read(Answers(set(), set(), down=True), WATCHED, NOW, NOW, check_rules=False)
    assert down.problem == "connection refused"


@pytest.mark.parametrize(
    ("alarms", "enabled", "message"),
    [
        ([], True, "name at least one alarm when enabled"),
        (["a", "a"], True, r"alarms\[1\].name: 'a' is named twice"),
        ([""], False, r"alarms\[0\].name: 1 to 255 printable characters"),
        (["x" * 256], False, "1 to 255"),
        ([f"a{i}" for i in range(11)], True, "at most 10 alarms"),
    ],
)
def test_alarm_configurations_are_checked_naming_the_field(
    alarms: list[str], enabled: bool, message: str
) -> None:
    config = pb.AlarmConfiguration(enabled=enabled, alarms=[pb.Alarm(name=n) for n in alarms])
    with pytest.raises(InvalidArgument, match=message):
        alarms_from_proto(config, "alarmConfiguration")
