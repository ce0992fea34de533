"""Which reports and output a burst may apply, pure (services/fleet/reports.py `applicable`):
moves along the command table in the order sent, nothing for another instance's command, a
duplicate after a reconnect ignored, output only while its deployment command runs."""

from __future__ import annotations

from datetime import UTC, datetime

from deploy.hookoutput import OutputLine, OutputStream
from services.core.diagnostics import Diagnostics
from services.fleet.domain import (
    COMMAND_TRANSITIONS,
    FINISHED_COMMAND,
    CommandState,
    Output,
    Report,
    UpdateKind,
)
from services.fleet.reports import applicable

S = CommandState
LINE = OutputLine(datetime(2026, 12, 1, tzinfo=UTC), OutputStream.STDOUT, "run.sh", "hello")


def started(command: str, instance: str = "web-1") -> Report:
    return Report(instance, command, UpdateKind.STARTED, S.IN_PROGRESS, Diagnostics())


def finished(command: str, state: CommandState = S.SUCCEEDED) -> Report:
    return Report("web-1", command, UpdateKind.FINISHED, state, Diagnostics())


def output(command: str) -> Output:
    return Output("web-1", command, (LINE,))


def test_finished_commands_move_no_more_and_a_pending_one_may_end_without_starting() -> None:
    assert {s for s in S if not COMMAND_TRANSITIONS[s]} == FINISHED_COMMAND
    assert {S.SUCCEEDED, S.FAILED, S.SKIPPED} == FINISHED_COMMAND
    assert COMMAND_TRANSITIONS[S.PENDING] >= FINISHED_COMMAND  # held, skipped or run unseen
    assert S.PENDING not in COMMAND_TRANSITIONS[S.IN_PROGRESS]


def test_a_burst_applies_in_order_and_ignores_a_repeated_report() -> None:
    items = [started("c1"), output("c1"), finished("c1"), finished("c1"), output("c1")]
    accepted = applicable(items, {"c1": ("web-1", S.PENDING)}, {"c1": "d-1"})
    assert accepted == [items[0], items[1], items[2], None, None]


def test_nothing_applies_to_another_instances_or_an_unknown_command() -> None:
    commands = {"c1": ("web-2", S.PENDING)}
    items = [started("c1"), output("c1"), started("c9")]
    assert applicable(items, commands, {"c1": "d-1"}) == [None, None, None]


def test_output_of_a_command_of_no_deployment_is_not_kept() -> None:
    items = [started("c1"), output("c1")]
    assert applicable(items, {"c1": ("web-1", S.PENDING)}, {"c1": None}) == [items[0], None]


def test_a_start_after_the_end_is_ignored() -> None:
    items = [finished("c1", S.SKIPPED), started("c1")]
    assert applicable(items, {"c1": ("web-1", S.PENDING)}, {"c1": "d-1"}) == [items[0], None]
