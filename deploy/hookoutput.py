"""Hook output lines, as the agent streams them and the services keep and pass them on: one
type and one wire conversion for the agent, the fleet, the orchestrator and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from deploy.v1 import common_pb2

MAX_LINE_CHARACTERS = 1024
MAX_SCRIPT_CHARACTERS = 512
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OutputStream(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    AGENT = "agent"
    """A note of the agent's about the output itself (lines it did not stream)."""


@dataclass(frozen=True)
class OutputLine:
    time: datetime
    stream: OutputStream
    script: str
    """The hook's location in the appspec."""
    text: str
    """Without its line break, at most `MAX_LINE_CHARACTERS`."""


_STREAMS = {
    OutputStream.STDOUT: common_pb2.OUTPUT_STREAM_STDOUT,
    OutputStream.STDERR: common_pb2.OUTPUT_STREAM_STDERR,
    OutputStream.AGENT: common_pb2.OUTPUT_STREAM_AGENT,
}
_FROM_WIRE = {wire: stream for stream, wire in _STREAMS.items()}


def cut(text: str, limit: int = MAX_LINE_CHARACTERS) -> str:
    """At most `limit` characters, marked when cut; NUL replaced (databases refuse it)."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\x00", "\ufffd")


def line_to_proto(line: OutputLine) -> common_pb2.OutputLine:
    message = common_pb2.OutputLine(
        stream=_STREAMS[line.stream], script=line.script, text=line.text
    )
    message.time.FromDatetime(line.time)
    return message


def line_from_proto(message: common_pb2.OutputLine) -> OutputLine:
    """A line as received, bounded whoever sent it (a stream the sender did not name is
    stdout; a missing or impossible time is the epoch's, never "now")."""
    try:
        time = message.time.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        time = EPOCH
    return OutputLine(
        time=time,
        stream=_FROM_WIRE.get(message.stream, OutputStream.STDOUT),
        script=cut(message.script, MAX_SCRIPT_CHARACTERS),
        text=cut(message.text),
    )
