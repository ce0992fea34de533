"""Live hook output on its way to the fleet: bounded rate, bounded count, cut lines, notes for
what was not streamed, batches sent soon and all of it before the event's result."""

from __future__ import annotations

import asyncio

from agent.output import BATCH_LINES, BURST_LINES, LINES_PER_COMMAND, LINES_PER_SECOND, LiveOutput
from deploy.hookoutput import MAX_LINE_CHARACTERS, OutputLine, OutputStream


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def live() -> tuple[LiveOutput, list[list[OutputLine]], Clock]:
    sent: list[list[OutputLine]] = []
    clock = Clock()
    return LiveOutput(sent.append, clock), sent, clock


def flat(sent: list[list[OutputLine]]) -> list[OutputLine]:
    return [line for batch in sent for line in batch]


async def test_a_burst_beyond_the_rate_is_counted_in_a_note_and_later_lines_flow_again() -> None:
    output, sent, clock = live()
    for i in range(int(BURST_LINES) + 30):
        output.line(OutputStream.STDOUT, "scripts/a.sh", str(i))
    clock.now += 1.0  # a second later the bucket holds LINES_PER_SECOND lines again
    output.line(OutputStream.STDERR, "scripts/a.sh", "later")
    output.close()
    lines = flat(sent)
    assert [line.text for line in lines[: int(BURST_LINES)]] == [
        str(i) for i in range(int(BURST_LINES))
    ]
    note, later = lines[int(BURST_LINES) :]
    assert note.stream is OutputStream.AGENT
    assert note.text == (
        f"30 lines not streamed (more than {LINES_PER_SECOND:g} a second); the host's "
        "scripts.log has them"
    )
    assert (later.stream, later.text, later.script) == (
        OutputStream.STDERR,
        "later",
        "scripts/a.sh",
    )


async def test_at_most_the_cap_of_lines_per_event_then_one_note() -> None:
    output, sent, clock = live()
    for i in range(LINES_PER_COMMAND + 500):
        clock.now += 1.0  # never over the rate
        output.line(OutputStream.STDOUT, "s.sh", str(i))
    output.close()
    lines = flat(sent)
    assert len(lines) == LINES_PER_COMMAND + 1
    assert lines[-1].stream is OutputStream.AGENT
    assert "beyond 1000 lines" in lines[-1].text


async def test_a_long_line_is_cut_and_marked() -> None:
    output, sent, _ = live()
    output.line(OutputStream.STDOUT, "s.sh", "x" * 5000)
    output.close()
    (line,) = flat(sent)
    assert len(line.text) == MAX_LINE_CHARACTERS
    assert line.text.endswith("…")


async def test_lines_leave_in_full_batches_or_soon_after_the_first() -> None:
    output, sent, _ = live()
    for i in range(BATCH_LINES + 1):
        output.line(OutputStream.STDOUT, "s.sh", str(i))
    assert [len(batch) for batch in sent] == [BATCH_LINES]  # a full batch goes at once
    await asyncio.wait_for(_until(lambda: len(sent) == 2), 5)  # the rest within a moment
    assert [len(batch) for batch in sent] == [BATCH_LINES, 1]
    output.close()
    assert len(sent) == 2  # nothing left to send


async def _until(condition: object) -> None:
    assert callable(condition)
    while not condition():
        await asyncio.sleep(0.01)
