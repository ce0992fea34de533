"""Live hook logs, the orchestrator's part: each line the fleet holds gets its target and
lifecycle event from its command's id."""

from __future__ import annotations

from datetime import UTC, datetime

from deploy.hookoutput import OutputLine, OutputStream
from services.orchestrator.domain import EventRef, HookLine
from services.orchestrator.logs import hook_lines
from services.orchestrator.peers import CommandOutput

LINE = OutputLine(datetime(2026, 11, 30, tzinfo=UTC), OutputStream.STDOUT, "s.sh", "hello")


def test_lines_carry_the_target_and_event_of_their_command() -> None:
    command = EventRef("d-ABCDEFGHJ", "web-1", 4, "AfterInstall").command_id
    assert hook_lines([CommandOutput(7, command, LINE), CommandOutput(8, "not-ours", LINE)]) == [
        HookLine("web-1", "AfterInstall", LINE)
    ]
