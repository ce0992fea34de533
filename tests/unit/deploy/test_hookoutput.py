"""Hook output lines on the wire: whatever a sender puts in one, what is received is bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from deploy.hookoutput import (
    EPOCH,
    MAX_LINE_CHARACTERS,
    MAX_SCRIPT_CHARACTERS,
    OutputLine,
    OutputStream,
    line_from_proto,
    line_to_proto,
)
from deploy.v1 import common_pb2


def test_a_line_survives_the_wire() -> None:
    line = OutputLine(datetime(2026, 11, 30, 12, tzinfo=UTC), OutputStream.STDERR, "s.sh", "hi")
    assert line_from_proto(line_to_proto(line)) == line


def test_what_is_received_is_bounded_whatever_was_sent() -> None:
    message = common_pb2.OutputLine(stream=99, script="s" * 5000, text="a\x00" + "b" * 5000)
    message.time.seconds = 10**15  # after the year 9999
    line = line_from_proto(message)
    assert line.time == EPOCH
    assert line.stream is OutputStream.STDOUT
    assert len(line.script) == MAX_SCRIPT_CHARACTERS
    assert len(line.text) == MAX_LINE_CHARACTERS and line.text.endswith("…")
    assert line.text.startswith("a\ufffdb")
